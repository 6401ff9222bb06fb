/**
 * Channel history on the wire and in the server API (issue #20), on the
 * memory engine: `ext.position` on copies, `ext.recover` on
 * `/meta/subscribe` over long-polling and WebSocket, the middleware's say,
 * hostile values, `cometd.history()`, the options.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { bayeux, BayeuxError, type Engine, MemoryEngine } from '../lib/index.js';
import { serverOf } from '../lib/internal.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { type Kind, type Msg, openWire, type Wire, wireSession } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';

const HISTORY = { '/chat/**': { size: 20, ttl: 60_000 }, '/chat/small/*': { size: 3 } };

let server: TestServer;
const wires: Wire[] = [];
after(async () => {
  for (const w of wires) w.close();
  await server?.close();
});
server = await startServer({ history: HISTORY });

async function wire(kind: Kind): Promise<{ w: Wire; id: string }> {
  const w = await openWire(kind, server.url);
  wires.push(w);
  return { w, id: await wireSession(w) };
}

/** Long-polling: one connect answered at once with what is queued; WebSocket: pushed by itself. */
async function deliveries(w: Wire, id: string, n: number): Promise<Msg[]> {
  if (w.kind === 'long-polling') {
    for (let i = 0; i < 50 && w.delivered.length < n; i++) {
      await w.send({ channel: '/meta/connect', clientId: id, connectionType: w.kind, advice: { timeout: 0 } });
      if (w.delivered.length < n) await sleep(20);
    }
  }
  return w.waitDelivered(n);
}

const subscribe = (w: Wire, id: string, subscription: unknown, recover?: unknown) =>
  w.send({ channel: '/meta/subscribe', clientId: id, subscription, ...(recover === undefined ? {} : { ext: { recover } }) }).then((r) => r[0] as Msg);

let channels = 0;
const fresh = () => `/chat/c${++channels}`;

for (const kind of ['long-polling', 'websocket'] as const) {
  describe(`recover on /meta/subscribe over ${kind}`, () => {
    it('ext.recover { last: 5 } replays the last 5, in order, with their positions, then live messages', async () => {
      const channel = fresh();
      for (let i = 1; i <= 8; i++) await server.cometd.publish(channel, i);
      const { w, id } = await wire(kind);
      const reply = await subscribe(w, id, channel, { last: 5 });
      assert.equal(reply['successful'], true);
      const { epoch } = reply['ext'].recover;
      assert.deepEqual(reply['ext'], { recover: { recovered: true, epoch, offset: 8, missed: 5 } });
      await server.cometd.publish(channel, 9);
      const got = await deliveries(w, id, 6);
      assert.deepEqual(got.map((m) => m['data']), [4, 5, 6, 7, 8, 9]);
      assert.deepEqual(got.map((m) => m['ext'].position), [4, 5, 6, 7, 8, 9].map((offset) => ({ epoch, offset })));
      await sleep(50);
      assert.equal(w.delivered.length, 6, 'each once');
    });

    it('ext.recover from a position replays what came after it; from a trimmed one nothing (recovered: false)', async () => {
      const channel = fresh();
      const { w: first, id: firstId } = await wire(kind);
      await subscribe(first, firstId, channel);
      for (let i = 1; i <= 3; i++) await server.cometd.publish(channel, i);
      const seen = await deliveries(first, firstId, 3);
      const position = seen[2]?.['ext'].position as { epoch: string; offset: number };
      assert.equal(position.offset, 3);
      for (let i = 4; i <= 10; i++) await server.cometd.publish(channel, i);
      const { w, id } = await wire(kind);
      const reply = await subscribe(w, id, channel, position);
      assert.deepEqual(reply['ext'].recover, { recovered: true, epoch: position.epoch, offset: 10, missed: 7 });
      assert.deepEqual((await deliveries(w, id, 7)).map((m) => m['data']), [4, 5, 6, 7, 8, 9, 10]);

      const small = '/chat/small/' + kind;
      for (let i = 1; i <= 5; i++) await server.cometd.publish(small, i);
      const { epoch } = await server.cometd.history(small);
      const { w: late, id: lateId } = await wire(kind);
      const refused = await subscribe(late, lateId, small, { epoch, offset: 1 });
      assert.deepEqual(refused['ext'].recover, { recovered: false, epoch, offset: 5, missed: 0 });
      await server.cometd.publish(small, 'live');
      assert.deepEqual((await deliveries(late, lateId, 1)).map((m) => m['data']), ['live'], 'nothing replayed, then live messages');
    });

    it('a subscription the middleware refuses gets no history', async () => {
      const channel = fresh();
      for (let i = 1; i <= 3; i++) await server.cometd.publish(channel, i);
      const denied = new Set<string>();
      server.cometd.use(channel, (message, _ctx, next) => {
        if (message.channel === '/meta/subscribe') {
          denied.add(channel);
          next(new BayeuxError(403, 'denied', [channel]));
        } else next();
      });
      const { w, id } = await wire(kind);
      const reply = await subscribe(w, id, channel, { last: 3 });
      assert.equal(reply['successful'], false);
      assert.equal(reply['error'], `403:${channel}:denied`);
      assert.equal(reply['ext'], undefined);
      assert.ok(denied.has(channel));
      await server.cometd.publish(channel, 'after');
      await w.send({ channel: '/meta/connect', clientId: id, connectionType: w.kind, advice: { timeout: 0 } });
      await sleep(50);
      assert.deepEqual(w.delivered, []);
      assert.deepEqual(await server.cometd.subscribers(channel), []);
    });

    it('hostile ext.recover values get a clear error, and the server goes on serving', async () => {
      const channel = fresh();
      await server.cometd.publish(channel, 'x');
      const { w, id } = await wire(kind);
      const invalid: Array<[unknown, string]> = [
        [{ epoch: 'e', offset: -1 }, 'offset'],
        [{ epoch: 'e', offset: 2 ** 60 }, 'offset'],
        [{ epoch: 'e', offset: 1.5 }, 'offset'],
        [{ epoch: 'e', offset: '3' }, 'offset'],
        [{ epoch: 'e', offset: { $gt: 0 } }, 'offset'],
        [{ epoch: 'e' }, 'offset'],
        [{ epoch: '', offset: 1 }, 'epoch'],
        [{ epoch: 'x'.repeat(65), offset: 1 }, 'epoch'],
        [{ epoch: 'a"b', offset: 1 }, 'epoch'],
        [{ epoch: { toString: 'x' }, offset: 1 }, 'epoch'],
        [{ epoch: ['e'], offset: 1 }, 'epoch'],
        [{ offset: 1 }, 'epoch'],
        [{ last: -1 }, 'last'],
        [{ last: 1e12 }, 'last'],
        [{ last: 2.5 }, 'last'],
        [{ last: '5' }, 'last'],
        [{ last: null }, 'last'],
        [{ last: 5, epoch: 'e', offset: 1 }, 'recover'],
        [true, 'recover'],
        ['from the start', 'recover'],
        [5, 'recover'],
        [[1, 2], 'recover'],
        [null, 'recover'],
      ];
      for (const [recover, field] of invalid) {
        const reply = await subscribe(w, id, channel, recover);
        assert.equal(reply['successful'], false, JSON.stringify(recover));
        assert.equal(reply['error'], `400:${field}:recover_invalid`, JSON.stringify(recover));
      }
      assert.equal((await subscribe(w, id, '/chat/**', { last: 1 }))['error'], '400:/chat/**:recover_needs_one_channel');
      assert.equal((await subscribe(w, id, [channel, fresh()], { last: 1 }))['error'].split(':').pop(), 'recover_needs_one_channel');
      assert.equal((await subscribe(w, id, '/elsewhere', { last: 1 }))['error'], '404:/elsewhere:no_history');
      assert.equal((await subscribe(w, id, '/service/x', { last: 1 }))['error'], '404:/service/x:no_history');
      assert.deepEqual(await server.cometd.subscribers(channel), [], 'no refused recovery subscribed');
      const ok = await subscribe(w, id, channel, { last: 1 });
      assert.equal(ok['successful'], true);
      assert.deepEqual((await deliveries(w, id, 1)).map((m) => m['data']), ['x']);
    });
  });
}

describe('positions on copies', () => {
  it('every copy on a history channel carries ext.position; a publisher cannot choose it; other channels carry none', async () => {
    const channel = fresh();
    const { w, id } = await wire('long-polling');
    await subscribe(w, id, channel);
    await subscribe(w, id, '/other');
    const [published] = await w.send({ channel, clientId: id, data: 'from a client', id: 'c1', ext: { position: { epoch: 'mine', offset: 99 } } });
    assert.equal(published?.['successful'], true);
    await server.cometd.publish(channel, 'from the server', { ext: { position: 'x' }, id: 'p1' });
    await server.cometd.publish('/other', 'plain');
    const got = await deliveries(w, id, 3);
    const epoch = got[0]?.['ext'].position.epoch as string;
    assert.notEqual(epoch, 'mine');
    assert.deepEqual(got[0], { channel, data: 'from a client', id: 'c1', ext: { position: { epoch, offset: 1 } } });
    assert.deepEqual(got[1], { channel, data: 'from the server', id: 'p1', ext: { position: { epoch, offset: 2 } } });
    assert.deepEqual(got[2], { channel: '/other', data: 'plain' });
  });

  it('outgoing hooks run once per publish, before the position: a recovered copy is the live copy, byte for byte', async () => {
    const local = await startServer({ history: HISTORY });
    after(() => local.close());
    let calls = 0;
    local.cometd.outgoing((message) => {
      if (message.channel === '/chat/hooked') message.ext = { ...message.ext, stamp: ++calls, position: 'hook' };
    });
    const live = await openWire('websocket', local.url);
    wires.push(live);
    const liveId = await wireSession(live);
    await live.send({ channel: '/meta/subscribe', clientId: liveId, subscription: '/chat/hooked' });
    await local.cometd.publish('/chat/hooked', 1);
    await local.cometd.publish('/chat/hooked', 2);
    await live.waitDelivered(2);
    const before = calls;
    const late = await openWire('websocket', local.url);
    wires.push(late);
    const lateId = await wireSession(late);
    await late.send({ channel: '/meta/subscribe', clientId: lateId, subscription: '/chat/hooked', ext: { recover: { last: 2 } } });
    await late.waitDelivered(2);
    assert.deepEqual(late.delivered, live.delivered);
    assert.equal(late.delivered[1]?.['ext'].stamp, 2);
    assert.equal(typeof late.delivered[1]?.['ext'].position, 'object');
    assert.equal(calls, before, 'the hook is not run again on replayed copies');
  });

  it('in-process subscribers get history copies with the publisher as info.client', async () => {
    const channel = fresh();
    const seen: Array<{ data: unknown; client: string | undefined; position: unknown }> = [];
    const sub = server.cometd.subscribe(channel, (data, message, info) => {
      seen.push({ data, client: info.client, position: message.ext?.['position'] });
    });
    await sub.ready;
    const { w, id } = await wire('long-polling');
    await w.send({ channel, clientId: id, data: 'hi' });
    await waitFor(() => seen.length === 1, { timeout: 5000, what: 'the local subscriber' });
    assert.equal(seen[0]?.client, id);
    assert.equal((seen[0]?.position as { offset: number }).offset, 1);
    await sub();
  });

  it('delivery latencies are measured on history channels too (observers time the text as published)', async () => {
    const local = await startServer({ history: HISTORY });
    after(() => local.close());
    const latencies: number[] = [];
    serverOf(local.cometd).observe({ delivered: (_count, latency) => latencies.push(latency) });
    const w = await openWire('websocket', local.url);
    wires.push(w);
    const id = await wireSession(w);
    await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/chat/timed' });
    // One delivered copy in 16 is timed.
    for (let i = 0; i < 64; i++) await local.cometd.publish('/chat/timed', i);
    await w.waitDelivered(64);
    assert.ok(latencies.length > 0, 'no latency was measured');
  });

  it('maxMessageBytes counts the position the engine adds', async () => {
    const local = await startServer({ history: HISTORY, maxMessageBytes: 200 });
    after(() => local.close());
    await assert.rejects(local.cometd.publish('/chat/big', 'x'.repeat(150)), /message_too_large/);
    await local.cometd.publish('/plain/big', 'x'.repeat(150));
  });
});

describe('cometd.history()', () => {
  it('resolves to the kept messages with channel, data, id, ext and position; since and limit', async () => {
    const channel = fresh();
    for (let i = 1; i <= 4; i++) await server.cometd.publish(channel, { n: i }, { id: `m${i}`, ext: { tag: i } });
    const all = await server.cometd.history(channel);
    assert.equal(all.offset, 4);
    assert.equal(all.messages.length, 4);
    const first = all.messages[0];
    assert.deepEqual(first, { channel, data: { n: 1 }, id: 'm1', ext: { tag: 1, position: { epoch: all.epoch, offset: 1 } }, position: { epoch: all.epoch, offset: 1 } });
    const since = await server.cometd.history(channel, { since: { epoch: all.epoch, offset: 2 } });
    assert.deepEqual(since.messages.map((m) => m.position.offset), [3, 4]);
    const limited = await server.cometd.history(channel, { limit: 1 });
    assert.deepEqual(limited.messages.map((m) => m.data), [{ n: 4 }]);
    const empty = await server.cometd.history(fresh());
    assert.deepEqual({ offset: empty.offset, messages: empty.messages }, { offset: 0, messages: [] });
  });

  it('a channel without history rejects with a clear error; bad arguments with TypeErrors', async () => {
    await assert.rejects(server.cometd.history('/elsewhere'), (err: unknown) => err instanceof BayeuxError && String(err) === '404:/elsewhere:no_history');
    await assert.rejects(server.cometd.history('/chat/**'), (err: unknown) => err instanceof BayeuxError && err.code === 405);
    await assert.rejects(server.cometd.history('/meta/connect'), BayeuxError);
    await assert.rejects(server.cometd.history('/chat/a', { since: { epoch: 'e', offset: -1 } }), TypeError);
    await assert.rejects(server.cometd.history('/chat/a', { limit: -1 }), TypeError);
    await assert.rejects(server.cometd.history('/chat/a', { sort: 'desc' } as never), /unknown history option sort/);
  });
});

describe('history options', () => {
  it('an engine without history fails at startup, naming the option', () => {
    const memory = new MemoryEngine();
    const bare = {
      open: memory.open.bind(memory), close: memory.close.bind(memory), createSession: memory.createSession.bind(memory),
      publish: memory.publish.bind(memory), take: memory.take.bind(memory),
    } as unknown as Engine;
    assert.throws(() => bayeux({ engine: bare, history: HISTORY }), /option history needs an engine that keeps channel history/);
    bayeux({ engine: bare, logLevel: 'error' });
  });

  it('bad patterns and settings throw TypeErrors naming them', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ 'chat/**': {} }, /chat\/\*\* is not a channel pattern/],
      [{ '/meta/**': {} }, /\/meta\/\*\* is not a channel pattern/],
      [{ '/service/x': {} }, /\/service\/x is not a channel pattern/],
      [{ '/a': { size: 0 } }, /history\['\/a'\]\.size must be an integer/],
      [{ '/a': { size: 1e9 } }, /size must be an integer from 1 to 1000000/],
      [{ '/a': { ttl: -5 } }, /ttl must be an integer/],
      [{ '/a': { ttl: '5m' } }, /ttl must be an integer/],
      [{ '/a': { length: 5 } }, /unknown option history\['\/a'\]\.length/],
      [{ '/a': 5 }, /must be an object/],
      ['/chat/**', /option history must be an object/],
    ];
    for (const [history, pattern] of cases) assert.throws(() => bayeux({ history: history as never, logLevel: 'error' }), pattern, JSON.stringify(history));
    assert.throws(() => bayeux({ maxHistoryBytes: 10, logLevel: 'error' }), /option maxHistoryBytes must be an integer/);
  });
});

describe('a restart of a memory-engine server', () => {
  it('is a new epoch: a position from before is not recovered', async () => {
    const first = await startServer({ history: HISTORY });
    await first.cometd.publish('/chat/r', 1);
    const before = await first.cometd.history('/chat/r');
    const port = first.port;
    await first.close();
    const second = await startServer({ history: HISTORY }, { port });
    after(() => second.close());
    await second.cometd.publish('/chat/r', 2);
    const w = await openWire('long-polling', second.url);
    const id = await wireSession(w);
    const reply = await subscribe(w, id, '/chat/r', { epoch: before.epoch, offset: before.offset });
    const { recover } = reply['ext'];
    assert.notEqual(recover.epoch, before.epoch);
    assert.deepEqual(recover, { recovered: false, epoch: recover.epoch, offset: 1, missed: 0 });
  });
});
