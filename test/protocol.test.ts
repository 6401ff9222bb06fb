/**
 * The Bayeux rules a client relies on, checked on the server core itself:
 * a `Server` on a MemoryEngine is handed message arrays with a fake
 * long-polling connection (test/helpers/fake-connection.ts), as Faye's specs
 * drive its server, and the JSON it answers with is parsed and compared. No
 * socket is opened, so each rule costs milliseconds; server.test.ts checks
 * the same rules over real HTTP and WebSocket.
 */
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { BayeuxError, type BayeuxOptions, type Logger } from '../lib/index.js';
import { resolveOptions } from '../lib/options.js';
import { Server } from '../lib/server/server.js';
import type { Connection } from '../lib/server/types.js';
import { FakeConnection } from './helpers/fake-connection.js';
import { sleep } from './helpers/wait.js';
import { within } from './helpers/within.js';

type Msg = Record<string, any>;

const QUIET: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

/** What a handshake and a connect advise when the options are left alone (`timeout` is set per test). */
const advice = (timeout: number, interval = 0) => ({ reconnect: 'retry', interval, timeout });
const HANDSHAKE_AGAIN = { reconnect: 'handshake', interval: 0 };
const SESSION_UNKNOWN = '402::session_unknown';

/** An opened server core, closed when the test ends. */
async function core(t: TestContext, options: BayeuxOptions = {}): Promise<Server> {
  const server = new Server(resolveOptions({ logger: QUIET, timeout: 5000, ...options }));
  await server.open();
  t.after(() => server.close());
  return server;
}

/** One request: its messages in, the messages it is answered with out (deliveries first, then replies). */
async function request(server: Server, messages: Msg | Msg[], conn: Connection = new FakeConnection()): Promise<Msg[]> {
  const list = Array.isArray(messages) ? messages : [messages];
  const texts = await within(server.process(list, conn), 5000, `the answer to ${list.map((m) => m['channel']).join(', ')}`);
  return texts.map((text) => JSON.parse(text) as Msg);
}

/** The one reply to a request of one message. */
async function reply(server: Server, message: Msg, conn?: Connection): Promise<Msg> {
  const replies = await request(server, message, conn);
  assert.equal(replies.length, 1, JSON.stringify(replies));
  return replies[0] as Msg;
}

/** A request that may be held (a connect): whether it was answered yet, and its answer. */
function pending(server: Server, message: Msg, conn: Connection = new FakeConnection()): { answered(): boolean; answer(ms?: number): Promise<Msg[]> } {
  let answered = false;
  const answer = new Promise<Msg[]>((resolve) => {
    server.handle([message], conn, (texts) => {
      answered = true;
      resolve(texts.map((text) => JSON.parse(text) as Msg));
    });
  });
  return { answered: () => answered, answer: (ms = 5000) => within(answer, ms, `the answer to ${message['channel']}`) };
}

const handshakeMessage = (fields: Msg = {}): Msg => ({
  channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ...fields,
});

/** Handshake; returns the clientId. */
async function handshake(server: Server, fields: Msg = {}): Promise<string> {
  const r = await reply(server, handshakeMessage(fields));
  assert.equal(r['successful'], true, JSON.stringify(r));
  return r['clientId'] as string;
}

const connect = (clientId: string, fields: Msg = {}): Msg => ({ channel: '/meta/connect', clientId, connectionType: 'long-polling', ...fields });

/** Handshake, the first connect (answered at once), and subscriptions: a session that waits for messages. */
async function session(server: Server, subscriptions: string[] = []): Promise<string> {
  const clientId = await handshake(server);
  assert.equal((await reply(server, connect(clientId)))['successful'], true);
  if (subscriptions.length > 0) {
    const r = await reply(server, { channel: '/meta/subscribe', clientId, subscription: subscriptions });
    assert.equal(r['successful'], true, JSON.stringify(r));
  }
  return clientId;
}

after(() => {
  // Nothing here listens or dials: the rules are checked without a socket, and none is left open.
  const sockets = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP'));
  assert.deepEqual(sockets, [], 'no socket was opened');
});

describe('/meta/handshake', () => {
  test('a handshake gets a clientId, the version, the connection types, advice and its id back', async (t) => {
    const server = await core(t, { timeout: 4000 });
    const r = await reply(server, handshakeMessage({ id: 'h1' }));
    assert.match(r['clientId'], /^[A-Za-z0-9_-]{20,}$/);
    assert.deepEqual(r, {
      channel: '/meta/handshake',
      version: '1.0',
      supportedConnectionTypes: ['long-polling', 'callback-polling'],
      clientId: r['clientId'],
      successful: true,
      advice: advice(4000),
      id: 'h1',
    });
  });

  test('each handshake starts a new session', async (t) => {
    const server = await core(t);
    assert.notEqual(await handshake(server), await handshake(server));
  });

  test('minimumVersion is accepted beside a 1.x version', async (t) => {
    const server = await core(t);
    const r = await reply(server, handshakeMessage({ version: '1.0', minimumVersion: '1.0' }));
    assert.equal(r['successful'], true);
    assert.equal(r['version'], '1.0');
  });

  test('version 2.0: 406 version_unsupported, and advice not to retry', async (t) => {
    const server = await core(t);
    const r = await reply(server, handshakeMessage({ version: '2.0', id: 'v2' }));
    assert.deepEqual(r, {
      channel: '/meta/handshake', successful: false, error: '406:2.0:version_unsupported', id: 'v2', advice: { reconnect: 'none', interval: 0 },
    });
  });

  test('no connection type in common: 406 connection_type_unsupported', async (t) => {
    const server = await core(t);
    const r = await reply(server, handshakeMessage({ supportedConnectionTypes: ['carrier-pigeon'] }));
    assert.equal(r['successful'], false);
    assert.equal(r['error'], '406:carrier-pigeon:connection_type_unsupported');
    assert.deepEqual(r['advice'], { reconnect: 'none', interval: 0 });
  });

  test('no version or no supportedConnectionTypes: 400', async (t) => {
    const server = await core(t);
    const noVersion = await reply(server, { channel: '/meta/handshake', supportedConnectionTypes: ['long-polling'] });
    assert.match(noVersion['error'], /^400::/);
    const noTypes = await reply(server, { channel: '/meta/handshake', version: '1.0' });
    assert.match(noTypes['error'], /^400::/);
    assert.equal(noTypes['clientId'], undefined);
  });

  test('a handshake batched with other messages is refused with 400', async (t) => {
    const server = await core(t);
    const [r] = await request(server, [handshakeMessage({ id: 'h' }), { channel: '/chat', data: 1, id: 'p' }]);
    assert.equal(r?.['successful'], false);
    assert.match(r?.['error'], /^400::/);
    assert.equal(r?.['clientId'], undefined);
  });
});

describe('/meta/connect', () => {
  test('a connect before any handshake: 402 with advice to handshake', async (t) => {
    const server = await core(t);
    const r = await reply(server, { channel: '/meta/connect', connectionType: 'long-polling', id: 'c0' });
    assert.deepEqual(r, { channel: '/meta/connect', successful: false, error: SESSION_UNKNOWN, id: 'c0', advice: HANDSHAKE_AGAIN });
  });

  test('an unknown clientId: 402 on every channel, with advice to handshake and the clientId echoed', async (t) => {
    const server = await core(t);
    const clientId = 'no-such-session';
    for (const message of [
      connect(clientId),
      { channel: '/meta/subscribe', clientId, subscription: '/a' },
      { channel: '/meta/unsubscribe', clientId, subscription: '/a' },
      { channel: '/chat', clientId, data: 1 },
      { channel: '/service/echo', clientId, data: 1 },
      { channel: '/meta/disconnect', clientId },
    ]) {
      const r = await reply(server, message);
      assert.equal(r['successful'], false, message['channel']);
      assert.equal(r['error'], SESSION_UNKNOWN, message['channel']);
      assert.deepEqual(r['advice'], HANDSHAKE_AGAIN, message['channel']);
      assert.equal(r['clientId'], clientId);
    }
  });

  test('the first connect of a session is answered at once, with advice', async (t) => {
    const server = await core(t, { timeout: 5000, interval: 250 });
    const clientId = await handshake(server);
    const started = Date.now();
    const r = await reply(server, connect(clientId, { id: 'c1' }));
    assert.ok(Date.now() - started < 1000);
    assert.deepEqual(r, { channel: '/meta/connect', clientId, successful: true, advice: advice(5000, 250), id: 'c1' });
  });

  test('a later connect with nothing to deliver is held for timeout, then answered empty with the same advice', async (t) => {
    // 1 s: a loaded machine may stall the check below past a 150 ms hold, then "held" would fail.
    const server = await core(t, { timeout: 1000 });
    const clientId = await session(server);
    const started = Date.now();
    const held = pending(server, connect(clientId, { id: 'c2' }));
    await sleep(50);
    assert.equal(held.answered(), false, 'held');
    const replies = await held.answer();
    assert.ok(Date.now() - started >= 990, `held ${Date.now() - started} ms`);
    assert.deepEqual(replies, [{ channel: '/meta/connect', clientId, successful: true, advice: advice(1000), id: 'c2' }]);
  });

  test('a connect asking advice.timeout 0 is answered at once; a shorter timeout shortens the hold', async (t) => {
    const server = await core(t, { timeout: 5000 });
    const clientId = await session(server);
    const now = await reply(server, connect(clientId, { advice: { timeout: 0 } }));
    assert.equal(now['successful'], true);
    const started = Date.now();
    const [short] = await pending(server, connect(clientId, { advice: { timeout: 100 } })).answer(2000);
    assert.equal(short?.['successful'], true);
    assert.ok(Date.now() - started < 2000);
  });

  test('a connect in a batch with other messages is answered at once', async (t) => {
    const server = await core(t, { timeout: 5000 });
    const clientId = await session(server);
    const replies = await request(server, [connect(clientId, { id: 'c' }), { channel: '/meta/subscribe', clientId, subscription: '/b', id: 's' }]);
    assert.deepEqual(replies.map((r) => r['id']), ['c', 's']);
  });

  test('a held connect is answered by a publish from another session, with the message before the reply', async (t) => {
    const server = await core(t);
    const subscriber = await session(server, ['/chat/*']);
    const held = pending(server, connect(subscriber, { id: 'held' }));
    await sleep(30);
    assert.equal(held.answered(), false, 'held until something arrives');
    const publisher = await handshake(server);
    const published = await reply(server, { channel: '/chat/room', clientId: publisher, data: { text: 'hi' }, id: 'p1' });
    assert.deepEqual(published, { channel: '/chat/room', successful: true, id: 'p1' });
    assert.deepEqual(await held.answer(), [
      { channel: '/chat/room', data: { text: 'hi' }, id: 'p1' },
      { channel: '/meta/connect', clientId: subscriber, successful: true, advice: advice(5000), id: 'held' },
    ]);
  });

  test('messages that wait for a session are answered to its next connect at once', async (t) => {
    const server = await core(t);
    const subscriber = await session(server, ['/news']);
    const publisher = await handshake(server);
    await request(server, [1, 2].map((n) => ({ channel: '/news', clientId: publisher, data: n })));
    const replies = await request(server, connect(subscriber));
    assert.deepEqual(replies.slice(0, 2), [{ channel: '/news', data: 1 }, { channel: '/news', data: 2 }]);
    assert.equal(replies[2]?.['channel'], '/meta/connect');
  });

  test('a client that goes away during a held connect is taken nothing: the message waits for its next connect', async (t) => {
    const server = await core(t);
    const clientId = await session(server, ['/kept']);
    const conn = new FakeConnection();
    const held = pending(server, connect(clientId), conn);
    await sleep(30);
    conn.abort();
    await held.answer();
    const publisher = await handshake(server);
    await request(server, { channel: '/kept', clientId: publisher, data: 'late' });
    const replies = await request(server, connect(clientId));
    assert.deepEqual(replies[0], { channel: '/kept', data: 'late' });
  });
});

describe('/meta/subscribe and /meta/unsubscribe', () => {
  test('subscribe and unsubscribe echo clientId, subscription and id', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    for (const channel of ['/meta/subscribe', '/meta/unsubscribe']) {
      assert.deepEqual(await reply(server, { channel, clientId, subscription: '/a/b', id: 'one' }), {
        channel, clientId, subscription: '/a/b', successful: true, id: 'one',
      });
      assert.deepEqual(await reply(server, { channel, clientId, subscription: ['/x', '/y/**'], id: 'list' }), {
        channel, clientId, subscription: ['/x', '/y/**'], successful: true, id: 'list',
      });
    }
  });

  test('a subscription receives what is published to the channels it matches, and nothing after unsubscribe', async (t) => {
    const server = await core(t);
    const clientId = await session(server, ['/a/*', '/deep/**']);
    const publisher = await handshake(server);
    for (const channel of ['/a/b', '/a/b/c', '/deep/x/y', '/other']) await request(server, { channel, clientId: publisher, data: channel });
    const got = await request(server, connect(clientId));
    assert.deepEqual(got.filter((m) => !('successful' in m)).map((m) => m['data']), ['/a/b', '/deep/x/y']);
    await request(server, { channel: '/meta/unsubscribe', clientId, subscription: ['/a/*', '/deep/**'] });
    await request(server, { channel: '/a/b', clientId: publisher, data: 'after' });
    const none = await request(server, connect(clientId, { advice: { timeout: 0 } }));
    assert.deepEqual(none.map((m) => m['channel']), ['/meta/connect']);
  });

  test('an invalid channel: 405 invalid_channel naming it, the subscription echoed', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    for (const channel of ['/meta/subscribe', '/meta/unsubscribe']) {
      for (const bad of ['/a b', 'no-slash', '/a/**/b', '/']) {
        const r = await reply(server, { channel, clientId, subscription: bad, id: 'bad' });
        assert.deepEqual(r, { channel, successful: false, error: `405:${bad}:invalid_channel`, id: 'bad', clientId, subscription: bad });
      }
    }
  });

  test('/meta/ subscriptions are refused with 403; /service/ ones succeed and do nothing', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    const meta = await reply(server, { channel: '/meta/subscribe', clientId, subscription: '/meta/connect' });
    assert.equal(meta['successful'], false);
    assert.equal(meta['error'], '403:/meta/connect:meta_channel');
    const service = await reply(server, { channel: '/meta/subscribe', clientId, subscription: '/service/echo' });
    assert.equal(service['successful'], true);
  });

  test('a subscribe without a subscription: 400', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    assert.match((await reply(server, { channel: '/meta/subscribe', clientId }))['error'], /^400::/);
    assert.match((await reply(server, { channel: '/meta/subscribe', clientId, subscription: [] }))['error'], /^400::/);
  });
});

describe('publish', () => {
  test('the reply echoes the channel and the id, a string or a number as sent; the copy carries data and id, never clientId or ext', async (t) => {
    const server = await core(t);
    const subscriber = await session(server, ['/echo']);
    const publisher = await handshake(server);
    for (const id of ['text-id', 7]) {
      const r = await reply(server, { channel: '/echo', clientId: publisher, data: { id }, id, ext: { secret: 1 } });
      assert.deepEqual(r, { channel: '/echo', successful: true, id });
    }
    const noId = await reply(server, { channel: '/echo', clientId: publisher, data: 'plain' });
    assert.deepEqual(noId, { channel: '/echo', successful: true });
    const got = await request(server, connect(subscriber));
    assert.deepEqual(got.slice(0, 3), [
      { channel: '/echo', data: { id: 'text-id' }, id: 'text-id' },
      { channel: '/echo', data: { id: 7 }, id: 7 },
      { channel: '/echo', data: 'plain' },
    ]);
  });

  test('a publisher subscribed to its channel gets its own message', async (t) => {
    const server = await core(t);
    const clientId = await session(server, ['/self']);
    await request(server, { channel: '/self', clientId, data: 'mine' });
    assert.deepEqual((await request(server, connect(clientId)))[0], { channel: '/self', data: 'mine' });
  });

  test('publishing to a wildcard or to /meta/: 405; without data: 400; an id that is neither string nor number: 400', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    assert.equal((await reply(server, { channel: '/a/*', clientId, data: 1 }))['error'], '405:/a/*:invalid_channel');
    assert.equal((await reply(server, { channel: '/a/**', clientId, data: 1 }))['error'], '405:/a/**:invalid_channel');
    assert.equal((await reply(server, { channel: '/meta/foo', clientId, data: 1 }))['error'], '405:/meta/foo:invalid_channel');
    assert.match((await reply(server, { channel: '/a', clientId }))['error'], /^400::/);
    const badId = await reply(server, { channel: '/a', clientId, data: 1, id: { no: 1 } });
    assert.match(badId['error'], /^400::/);
    assert.equal(badId['id'], undefined, 'a malformed id is not echoed');
  });

  test('a publish without a session: 402 (anonymousPublish off)', async (t) => {
    const server = await core(t);
    const r = await reply(server, { channel: '/a', data: 1, id: 'anon' });
    assert.deepEqual(r, { channel: '/a', successful: false, error: SESSION_UNKNOWN, id: 'anon', advice: HANDSHAKE_AGAIN });
  });
});

describe('/service/', () => {
  const services = {
    echo: (m: Msg) => ({ echo: m['data'], ext: m['ext'] }),
    quiet: () => undefined,
    boom: () => {
      throw new Error('handler crashed');
    },
  };

  test('a service answers the sender only: its return value is the data of the reply', async (t) => {
    const server = await core(t, { services });
    const watcher = await session(server, ['/**']);
    const clientId = await session(server);
    const r = await reply(server, { channel: '/service/echo', clientId, data: 'ping', id: 'q1' });
    assert.deepEqual(r, { channel: '/service/echo', successful: true, id: 'q1', data: { echo: 'ping' } });
    // Never broadcast, not even to /** subscribers.
    const seen = await request(server, connect(watcher, { advice: { timeout: 0 } }));
    assert.deepEqual(seen.map((m) => m['channel']), ['/meta/connect']);
  });

  test('a service that returns nothing is answered without data; no handler, the same', async (t) => {
    const server = await core(t, { services });
    const clientId = await session(server);
    assert.deepEqual(await reply(server, { channel: '/service/quiet', clientId, data: 1, id: 'q' }), { channel: '/service/quiet', successful: true, id: 'q' });
    assert.deepEqual(await reply(server, { channel: '/service/none', clientId, data: 1, id: 'n' }), { channel: '/service/none', successful: true, id: 'n' });
  });

  test('a service that throws: 500 service_failed naming the channel', async (t) => {
    const server = await core(t, { services });
    const clientId = await session(server);
    const r = await reply(server, { channel: '/service/boom', clientId, data: 1 });
    assert.equal(r['successful'], false);
    assert.equal(r['error'], '500:/service/boom:service_failed');
    // The session lives on: the next request is served.
    assert.equal((await reply(server, { channel: '/service/quiet', clientId, data: 1 }))['successful'], true);
  });
});

describe('/meta/disconnect', () => {
  test('a disconnect ends the session: its reply echoes clientId and id, and the next connect gets 402', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    assert.deepEqual(await reply(server, { channel: '/meta/disconnect', clientId, id: 'bye' }), {
      channel: '/meta/disconnect', clientId, successful: true, id: 'bye',
    });
    const after = await reply(server, connect(clientId));
    assert.equal(after['error'], SESSION_UNKNOWN);
    assert.deepEqual(after['advice'], HANDSHAKE_AGAIN);
  });

  test('a connect held when its session disconnects is answered with advice not to reconnect', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    const held = pending(server, connect(clientId, { id: 'held' }));
    await sleep(30);
    await reply(server, { channel: '/meta/disconnect', clientId });
    assert.deepEqual(await held.answer(), [
      { channel: '/meta/connect', clientId, successful: true, advice: { reconnect: 'none', interval: 0 }, id: 'held' },
    ]);
  });
});

describe('requests and replies', () => {
  test('a batch of mixed messages is answered in order; deliveries come just before the connect reply that carries them', async (t) => {
    const server = await core(t, { services: { echo: (m: Msg) => m['data'] } });
    const clientId = await session(server);
    const replies = await request(server, [
      { channel: '/meta/subscribe', clientId, subscription: '/mix', id: '1' },
      { channel: '/mix', clientId, data: 'a', id: '2' },
      { channel: '/service/echo', clientId, data: 'b', id: '3' },
      { channel: '/mix/*', clientId, data: 'c', id: '4' },
      { channel: '/mix', clientId, data: 'd', id: '5' },
      { channel: '/meta/unsubscribe', clientId, subscription: '/mix', id: '6' },
      connect(clientId, { id: '7' }),
    ]);
    assert.deepEqual(
      replies.map((m) => [m['channel'], m['id'], m['successful'] ?? 'delivery']),
      [
        ['/meta/subscribe', '1', true],
        ['/mix', '2', true],
        ['/service/echo', '3', true],
        ['/mix/*', '4', false],
        ['/mix', '5', true],
        ['/meta/unsubscribe', '6', true],
        ['/mix', '2', 'delivery'],
        ['/mix', '5', 'delivery'],
        ['/meta/connect', '7', true],
      ],
    );
  });

  test('a message that is not an object, or has no channel, gets its own 400 and the rest are answered', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    const replies = await request(server, [42, { data: 1, id: 'x' }, { channel: '/meta/subscribe', clientId, subscription: '/ok', id: 'ok' }]);
    assert.equal(replies.length, 3);
    assert.deepEqual(replies.map((r) => r['successful']), [false, false, true]);
    assert.match(replies[0]?.['error'], /^400::/);
    assert.equal(replies[1]?.['channel'], '/meta/unknown');
    assert.match(replies[1]?.['error'], /^400::/);
  });

  test('every refusal is code:args:message, which BayeuxError.parse reads back', async (t) => {
    const server = await core(t);
    const clientId = await session(server);
    const refusals = await request(server, [
      { channel: '/a/*', clientId, data: 1 },
      { channel: '/meta/subscribe', clientId, subscription: ['/meta/x'] },
      { channel: '/meta/subscribe', clientId },
      { channel: '/a', clientId: 'gone', data: 1 },
      { channel: '/meta/nope', clientId },
    ]);
    const errors = refusals.map((r) => r['error'] as string);
    assert.deepEqual(errors.map((e) => e.split(':')[0]), ['405', '403', '400', '402', '405']);
    for (const error of errors) {
      assert.match(error, /^\d{3}:[^:]*:.+$/);
      const parsed = BayeuxError.parse(error);
      assert.equal(parsed.toString(), error);
    }
    assert.deepEqual(BayeuxError.parse(errors[0] as string).args, ['/a/*']);
    assert.equal(BayeuxError.parse(errors[3] as string).message, 'session_unknown');
  });

  test('ext round trip: the handshake turns acks on, connect replies number their batches, a service sees the ext it was sent', async (t) => {
    const server = await core(t, { services: { echo: (m: Msg) => ({ ext: m['ext'] }) } });
    const hs = await reply(server, handshakeMessage({ ext: { ack: true } }));
    assert.deepEqual(hs['ext'], { ack: true });
    const clientId = hs['clientId'] as string;
    await reply(server, connect(clientId, { ext: { ack: -1 } }));
    await reply(server, { channel: '/meta/subscribe', clientId, subscription: '/acked' });
    await reply(server, { channel: '/acked', clientId, data: 'once' });
    const first = await request(server, connect(clientId, { ext: { ack: -1 }, advice: { timeout: 0 } }));
    assert.deepEqual(first.map((m) => m['data']).filter(Boolean), ['once']);
    const batch = first.at(-1)?.['ext']?.ack;
    assert.equal(typeof batch, 'number');
    // Not acknowledged: sent again. Acknowledged: gone.
    const again = await request(server, connect(clientId, { ext: { ack: batch - 1 }, advice: { timeout: 0 } }));
    assert.deepEqual(again.map((m) => m['data']).filter(Boolean), ['once']);
    const acked = again.at(-1)?.['ext']?.ack;
    const done = await request(server, connect(clientId, { ext: { ack: acked }, advice: { timeout: 0 } }));
    assert.deepEqual(done.map((m) => m['channel']), ['/meta/connect']);
    const echoed = await reply(server, { channel: '/service/echo', clientId, data: 1, ext: { trace: 'abc' } });
    assert.deepEqual(echoed['data'], { ext: { trace: 'abc' } });
  });

  test('ext.timesync on a handshake or connect is answered with { tc, ts, p, a }', async (t) => {
    const server = await core(t);
    const tc = Date.now() - 5000; // a client clock 5 s behind
    const hs = await reply(server, handshakeMessage({ ext: { timesync: { tc, l: 0, o: 0 } } }));
    const sync = hs['ext']?.timesync as Record<string, number>;
    assert.equal(sync['tc'], tc);
    assert.ok(Math.abs((sync['ts'] as number) - Date.now()) < 2000);
    assert.ok((sync['p'] as number) >= 0);
    assert.equal(sync['a'], tc - (sync['ts'] as number));
    const co = await reply(server, connect(hs['clientId'] as string, { ext: { timesync: { tc: 1, l: 2, o: 3 } } }));
    assert.equal(co['ext']?.timesync.tc, 1);
  });
});
