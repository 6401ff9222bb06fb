/**
 * The protocol rules of Bayeux 1.0 (https://docs.cometd.org/current/reference/#_bayeux)
 * as README.md states them under "Protocol notes" and "Errors", each case
 * run over long-polling and over WebSocket against a real HTTP server on
 * 127.0.0.1; then malformed fields, and an engine that is down at start.
 * test/protocol.test.ts checks the same rules on the server core, without sockets.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BayeuxError, EngineUnavailableError, MemoryEngine } from '../lib/index.js';
import type { EngineConfig, EngineHost } from '../lib/index.js';
import { post, startServer, type TestServer } from './helpers/http-server.js';
import { openWire, rawSocket, wireHandshake, wireSession, type Kind, type Msg, type Wire } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';

const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'] };

/** JSON text of an array nested `n` deep (too deep for JSON.stringify to write back). */
function deep(n: number): string {
  return '['.repeat(n) + '1' + ']'.repeat(n);
}

const deepSubscribe = `[{"channel":"/meta/subscribe","id":${deep(5000)},"subscription":${deep(5000)}}]`;

/** Get `n` deliveries for a session: long-polling asks with connects, WebSocket waits for pushes. */
async function collect(wire: Wire, clientId: string, n: number): Promise<Msg[]> {
  if (wire.kind === 'websocket') return wire.waitDelivered(n);
  for (let i = 0; i < 10 && wire.delivered.length < n; i++) {
    await wire.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling' });
  }
  assert.ok(wire.delivered.length >= n, `expected ${n} deliveries, got ${wire.delivered.length}`);
  return wire.delivered;
}

for (const kind of ['long-polling', 'websocket'] as Kind[]) {
  describe(`protocol over ${kind}`, () => {
    let s: TestServer;
    const wires: Wire[] = [];
    const open = async () => {
      const w = await openWire(kind, s.url);
      wires.push(w);
      return w;
    };
    before(async () => {
      s = await startServer({ timeout: 400, maxInterval: 1500 });
      s.cometd.service('/service/echo', (m) => ({ echo: m.data }));
      s.cometd.service('/service/boom', () => {
        throw new Error('handler crashed');
      });
      // Publishes to /private/** need a token; subscriptions to /private/... are refused.
      // (The layer also sees wildcard subscriptions like /**, which it lets through here.)
      s.cometd.use('/private/**', (m, _ctx, next) => {
        const subscribing = m.channel === '/meta/subscribe';
        const refused = subscribing ? String(m.subscription).startsWith('/private/') : (m.data as Msg | undefined)?.['token'] !== 'ok';
        next(refused ? new BayeuxError(403, 'Forbidden', ['/private']) : undefined);
      });
    });
    after(async () => {
      for (const w of wires) w.close();
      await s.close();
    });

    test('handshake reply carries clientId, version, connection types, advice and the request id', async () => {
      const w = await open();
      const [r] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [kind], id: 'hs1' });
      assert.equal(r?.['successful'], true);
      assert.equal(r?.['id'], 'hs1');
      assert.equal(r?.['version'], '1.0');
      assert.match(r?.['clientId'], /^[A-Za-z0-9_-]{20,}$/);
      assert.ok(r?.['supportedConnectionTypes'].includes('long-polling'));
      assert.ok(r?.['supportedConnectionTypes'].includes('websocket'));
      assert.deepEqual(r?.['advice'], { reconnect: 'retry', interval: 0, timeout: 400 });
    });

    test('handshake field errors: missing version 400, version 2 406, no common transport 406', async () => {
      const w = await open();
      const [a] = await w.send({ channel: '/meta/handshake', supportedConnectionTypes: [kind] });
      assert.match(a?.['error'], /^400:/);
      const [b] = await w.send({ channel: '/meta/handshake', version: '2.0', supportedConnectionTypes: [kind] });
      assert.match(b?.['error'], /^406:2\.0:/);
      const [c] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['carrier-pigeon'] });
      assert.match(c?.['error'], /^406:/);
      assert.equal(c?.['successful'], false);
    });

    test('a handshake batched with other messages is refused', async () => {
      const w = await open();
      const replies = await w.send([
        { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [kind] },
        { channel: '/chat/x', data: 1 },
      ]);
      assert.equal(replies[0]?.['successful'], false);
      assert.match(replies[0]?.['error'], /^400:/);
      assert.equal(replies[0]?.['clientId'], undefined);
    });

    test('unknown session: 402::session_unknown with reconnect handshake', async () => {
      const w = await open();
      for (const m of [
        { channel: '/meta/connect', clientId: 'nope', connectionType: kind },
        { channel: '/meta/subscribe', clientId: 'nope', subscription: '/a' },
        { channel: '/meta/unsubscribe', clientId: 'nope', subscription: '/a' },
        { channel: '/meta/disconnect', clientId: 'nope' },
        { channel: '/chat/a', clientId: 'nope', data: 1 },
      ]) {
        const [r] = await w.send(m);
        assert.equal(r?.['successful'], false, m.channel);
        assert.equal(r?.['error'], '402::session_unknown', m.channel);
        assert.deepEqual(r?.['advice'], { reconnect: 'handshake', interval: 0 }, m.channel);
      }
    });

    test('connect: first answered at once, later held for timeout, advice.timeout 0 and batches answered at once', async (t) => {
      // A server of its own with a 2 s hold: "at once" is anything under half of it, which a loaded machine still meets.
      const own = await startServer({ timeout: 2000, maxInterval: 5000 });
      t.after(() => own.close());
      const w = await openWire(kind, own.url);
      t.after(() => w.close());
      const atOnce = 1000;
      const clientId = await wireHandshake(w);
      let at = Date.now();
      const [first] = await w.send({ channel: '/meta/connect', clientId, connectionType: kind });
      assert.equal(first?.['successful'], true);
      assert.ok(Date.now() - at < atOnce, 'first connect answered at once');
      at = Date.now();
      const [held] = await w.send({ channel: '/meta/connect', clientId, connectionType: kind });
      assert.equal(held?.['successful'], true);
      assert.ok(Date.now() - at >= 1900, `held for the timeout (${Date.now() - at} ms)`);
      assert.deepEqual(held?.['advice'], { reconnect: 'retry', interval: 0, timeout: 2000 });
      at = Date.now();
      await w.send({ channel: '/meta/connect', clientId, connectionType: kind, advice: { timeout: 0 } });
      assert.ok(Date.now() - at < atOnce, 'advice.timeout 0 answered at once');
      at = Date.now();
      await w.send([
        { channel: '/meta/connect', clientId, connectionType: kind },
        { channel: '/meta/subscribe', clientId, subscription: '/x' },
      ]);
      assert.ok(Date.now() - at < atOnce, 'connect batched with another message answered at once');
    });


    test('a held connect is answered when a message arrives', async (t) => {
      // A server of its own with a 5 s hold: "before the timeout" then has seconds of room on a loaded machine (400 ms had not).
      const own = await startServer({ timeout: 5000 });
      t.after(() => own.close());
      const w = await openWire(kind, own.url);
      t.after(() => w.close());
      const clientId = await wireSession(w);
      await w.send({ channel: '/meta/subscribe', clientId, subscription: '/wake/up' });
      const at = Date.now();
      setTimeout(() => void own.cometd.publish('/wake/up', 'hello'), 50);
      const got = await collect(w, clientId, 1);
      assert.equal(got[0]?.['data'], 'hello');
      assert.ok(Date.now() - at < 2500, `delivered before the connect timeout (${Date.now() - at} ms)`);
    });

    test('publish: delivered to subscribers without clientId; publisher gets its reply with id', async () => {
      const sub = await open();
      const pub = await open();
      const subId = await wireSession(sub);
      const pubId = await wireSession(pub);
      await sub.send({ channel: '/meta/subscribe', clientId: subId, subscription: '/chat/room' });
      const [reply] = await pub.send({ channel: '/chat/room', clientId: pubId, data: { text: 'hi' }, id: 'p1' });
      assert.deepEqual(reply, { channel: '/chat/room', successful: true, id: 'p1' });
      const [msg] = await collect(sub, subId, 1);
      assert.deepEqual(msg, { channel: '/chat/room', data: { text: 'hi' }, id: 'p1' });
      assert.equal((msg as Msg | undefined)?.['clientId'], undefined);
    });

    test('one copy per session when several of its patterns match; order kept within a batch', async () => {
      const sub = await open();
      const id = await wireSession(sub);
      const [r] = await sub.send({ channel: '/meta/subscribe', clientId: id, subscription: ['/multi/a', '/multi/*', '/multi/**', '/**'] });
      assert.equal(r?.['successful'], true);
      const pub = await open();
      const pid = await wireSession(pub);
      await pub.send(Array.from({ length: 20 }, (_, i) => ({ channel: '/multi/a', clientId: pid, data: i })));
      const got = await collect(sub, id, 20);
      await sleep(100);
      assert.deepEqual(sub.delivered.filter((m) => m['channel'] === '/multi/a').map((m) => m['data']), Array.from({ length: 20 }, (_, i) => i));
      assert.equal(got.length, 20);
    });

    test('invalid channels 405; publishing to wildcards or /meta/* refused', async () => {
      const w = await open();
      const id = await wireSession(w);
      const [a] = await w.send({ channel: '/bad channel', clientId: id, data: 1 });
      assert.match(a?.['error'], /^405:/);
      const [b] = await w.send({ channel: '/chat/*', clientId: id, data: 1 });
      assert.match(b?.['error'], /^405:\/chat\/\*:/);
      const [c] = await w.send({ channel: '/meta/foo', clientId: id, data: 1 });
      assert.equal(c?.['successful'], false);
      const [d] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/a/**/b' });
      assert.match(d?.['error'], /^405:/);
      const [e] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/meta/connect' });
      assert.match(e?.['error'], /^403:/);
    });

    test('/service/*: subscribe succeeds and does nothing; never broadcast, not even to /**; reply to sender only', async () => {
      const watcher = await open();
      const wid = await wireSession(watcher);
      await watcher.send({ channel: '/meta/subscribe', clientId: wid, subscription: ['/**', '/service/echo'] });
      const w = await open();
      const id = await wireSession(w);
      const [sub] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/service/echo' });
      assert.equal(sub?.['successful'], true);
      const [r] = await w.send({ channel: '/service/echo', clientId: id, data: { n: 1 }, id: 'svc' });
      assert.deepEqual(r, { channel: '/service/echo', id: 'svc', successful: true, data: { echo: { n: 1 } } });
      await s.cometd.publish('/canary', 'c');
      const got = await collect(watcher, wid, 1);
      assert.deepEqual(got.map((m) => m['channel']), ['/canary']);
    });

    test('a crashing service handler gets an error reply and the server keeps serving', async () => {
      const w = await open();
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/service/boom', clientId: id, data: 1 });
      assert.equal(r?.['successful'], false);
      assert.match(r?.['error'], /^500:/);
      const [ok] = await w.send({ channel: '/service/echo', clientId: id, data: 2 });
      assert.equal(ok?.['successful'], true);
    });

    test('middleware refusal: 403 with args; allowed when it passes', async () => {
      const w = await open();
      const id = await wireSession(w);
      const [a] = await w.send({ channel: '/private/x', clientId: id, data: {} });
      assert.equal(a?.['error'], '403:/private:Forbidden');
      const [b] = await w.send({ channel: '/private/x', clientId: id, data: { token: 'ok' } });
      assert.equal(b?.['successful'], true);
      const [c] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/private/x' });
      assert.equal(c?.['error'], '403:/private:Forbidden');
    });

    test('a layer scoped to a pattern sees wildcard subscriptions that overlap it', async () => {
      const seen: string[] = [];
      s.cometd.use('/audit/secret/**', (m) => {
        if (m.channel === '/meta/subscribe') seen.push(String(m.subscription));
      });
      const w = await open();
      const id = await wireSession(w);
      for (const sub of ['/audit/**', '/**', '/audit/secret/*', '/audit/public/*']) {
        await w.send({ channel: '/meta/subscribe', clientId: id, subscription: sub });
      }
      assert.deepEqual(seen, ['/audit/**', '/**', '/audit/secret/*']);
    });

    test('publish needs a live session with its own clientId', async () => {
      const w = await open();
      const [a] = await w.send({ channel: '/chat/x', data: 1 });
      assert.equal(a?.['error'], '402::session_unknown');
      if (kind === 'websocket') {
        const other = await open();
        const otherId = await wireSession(other);
        await wireSession(w);
        const [b] = await w.send({ channel: '/chat/x', clientId: otherId, data: 1 });
        assert.match(b?.['error'], /^403:/);
      }
    });

    test('a session ended on the server side: its publishes are refused with 402, nothing is published, and middleware never sees them', async () => {
      const reader = await open();
      const readerId = await wireSession(reader);
      await reader.send({ channel: '/meta/subscribe', clientId: readerId, subscription: '/ended/x' });
      const w = await open();
      const id = await wireSession(w);
      assert.equal(await s.cometd.disconnect(id), true);
      // No middleware for /ended/x: the engine checks the session with the publish itself.
      const [plain] = await w.send({ channel: '/ended/x', clientId: id, data: 'lost' });
      assert.equal(plain?.['error'], '402::session_unknown');
      assert.deepEqual(plain?.['advice'], { reconnect: 'handshake', interval: 0 });
      // /private/** has middleware, which would refuse this with 403: the session is checked before it runs.
      const [guarded] = await w.send({ channel: '/private/x', clientId: id, data: { token: 'no' } });
      assert.equal(guarded?.['error'], '402::session_unknown');
      await s.cometd.publish('/ended/x', 'later');
      assert.deepEqual((await collect(reader, readerId, 1)).map((m) => m['data']), ['later'], 'the refused publish reached nobody');
    });

    test('unsubscribe stops deliveries', async () => {
      const w = await open();
      const id = await wireSession(w);
      await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/u/a' });
      const [r] = await w.send({ channel: '/meta/unsubscribe', clientId: id, subscription: '/u/a' });
      assert.equal(r?.['successful'], true);
      await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/u/b' });
      await s.cometd.publish('/u/a', 'no');
      await s.cometd.publish('/u/b', 'yes');
      const got = await collect(w, id, 1);
      assert.deepEqual(got.map((m) => m['data']), ['yes']);
    });

    test('disconnect ends the session with a disconnect event (client)', async () => {
      const w = await open();
      const id = await wireSession(w);
      const reasons: string[] = [];
      const onDisconnect = (clientId: string, reason: string) => clientId === id && reasons.push(reason);
      s.cometd.on('disconnect', onDisconnect);
      const [r] = await w.send({ channel: '/meta/disconnect', clientId: id });
      assert.equal(r?.['successful'], true);
      const [c] = await w.send({ channel: '/meta/connect', clientId: id, connectionType: kind });
      assert.equal(c?.['error'], '402::session_unknown');
      assert.deepEqual(reasons, ['client']);
      s.cometd.off('disconnect', onDisconnect);
    });

    test('a connect held when the client disconnects is answered with reconnect none', async (t) => {
      // A server of its own, holding for 20 s: the connect is seen held before the disconnect (50 ms of sleep
      // did not make sure of that), and a loaded machine cannot reach the end of a 400 ms hold first.
      const own = await startServer({ timeout: 20_000 });
      t.after(() => own.close());
      const w = await openWire(kind, own.url);
      t.after(() => w.close());
      const id = await wireSession(w);
      const held = w.send({ channel: '/meta/connect', clientId: id, connectionType: kind, id: 'held' });
      await waitFor(async () => (await own.cometd.stats()).heldConnections === 1, { what: 'the connect to be held' });
      const other = kind === 'websocket' ? w : await openWire(kind, own.url);
      const [d] = await other.send({ channel: '/meta/disconnect', clientId: id });
      assert.equal(d?.['successful'], true);
      const [c] = await held;
      assert.equal(c?.['successful'], true);
      assert.deepEqual(c?.['advice'], { reconnect: 'none', interval: 0 });
    });

    test('a session that does not reconnect within maxInterval expires (disconnect event: timeout)', async () => {
      const w = await open();
      const id = await wireSession(w);
      let reason: string | undefined;
      s.cometd.on('disconnect', (clientId, why) => {
        if (clientId === id) reason = why;
      });
      if (kind === 'websocket') w.close();
      await waitFor(() => reason !== undefined, { timeout: 4000, what: 'expiry' });
      assert.equal(reason, 'timeout');
      if (kind === 'long-polling') {
        const [c] = await w.send({ channel: '/meta/connect', clientId: id, connectionType: kind });
        assert.equal(c?.['error'], '402::session_unknown');
      }
    });

    test('bad messages in a batch get 400 replies; the rest are handled', async () => {
      const w = await open();
      const id = await wireSession(w);
      const replies = await w.send([
        { channel: '/service/echo', clientId: id, data: 'a', id: 'ok1' },
        { id: 'nochannel', data: 1 } as Msg,
      ]);
      assert.equal(replies[0]?.['successful'], true);
      assert.equal(replies[1]?.['successful'], false);
      assert.match(replies[1]?.['error'], /^400::channel missing/);
    });
  });
}

describe('server-side API and events', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ timeout: 300, maxInterval: 2000 });
  });
  after(() => s.close());

  test('events fire for handshake, connect, subscribe, publish, unsubscribe', async () => {
    const seen: string[] = [];
    s.cometd.on('handshake', (_id, ctx) => seen.push('handshake:' + ctx.transport));
    s.cometd.on('connect', () => seen.push('connect'));
    s.cometd.on('subscribe', (_id, ch) => seen.push('subscribe:' + ch));
    s.cometd.on('unsubscribe', (_id, ch) => seen.push('unsubscribe:' + ch));
    s.cometd.on('publish', (id, ch, data) => seen.push(`publish:${ch}:${JSON.stringify(data)}:${typeof id}`));
    const w = await openWire('long-polling', s.url);
    const id = await wireSession(w);
    await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/e' });
    await w.send({ channel: '/e', clientId: id, data: 1 });
    await w.send({ channel: '/meta/unsubscribe', clientId: id, subscription: '/e' });
    assert.deepEqual(seen, ['handshake:long-polling', 'connect', 'subscribe:/e', 'publish:/e:1:string', 'unsubscribe:/e']);
  });

  test('a throwing event listener is logged and does not break the request', async () => {
    const throwing = () => {
      throw new Error('listener bug');
    };
    s.cometd.on('subscribe', throwing);
    const w = await openWire('long-polling', s.url);
    const id = await wireSession(w);
    const [r] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/t' });
    assert.equal(r?.['successful'], true);
    s.cometd.off('subscribe', throwing);
  });

  test('local subscribers see remote and server publishes; unsubscribe stops them', async () => {
    const got: unknown[] = [];
    const sub = s.cometd.subscribe('/local/*', (data, message) => got.push([message.channel, data]));
    await sub.ready;
    const w = await openWire('long-polling', s.url);
    const id = await wireSession(w);
    await w.send({ channel: '/local/a', clientId: id, data: 'remote' });
    await s.cometd.publish('/local/b', 'server');
    await waitFor(() => got.length === 2, { timeout: 2000, what: 'local deliveries' });
    assert.deepEqual(got, [['/local/a', 'remote'], ['/local/b', 'server']]);
    await sub.unsubscribe();
    await s.cometd.publish('/local/c', 'after');
    await sleep(50);
    assert.equal(got.length, 2);
  });

  test('deliver pushes one message to one session', async () => {
    const w = await openWire('long-polling', s.url);
    const id = await wireSession(w);
    assert.equal(await s.cometd.deliver(id, '/direct', { x: 1 }), true);
    assert.equal(await s.cometd.deliver('unknown', '/direct', {}), false);
    await w.send({ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' });
    assert.deepEqual(w.delivered, [{ channel: '/direct', data: { x: 1 } }]);
  });

  test('server publish refuses wildcards, /meta and /service', async () => {
    await assert.rejects(s.cometd.publish('/a/*', 1), { code: 405 });
    await assert.rejects(s.cometd.publish('/meta/x', 1), { code: 405 });
    await assert.rejects(s.cometd.publish('/service/x', 1), { code: 405 });
    assert.throws(() => s.cometd.subscribe('bad', () => undefined), { code: 405 });
  });

  test('outgoing hook can add ext to replies and published messages', async () => {
    s.cometd.outgoing((m) => {
      if (m.channel === '/hooked' || m.channel === '/meta/handshake') m.ext = { ...m.ext, stamped: true };
    });
    const w = await openWire('long-polling', s.url);
    const [hs] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
    assert.equal(hs?.['ext']?.['stamped'], true);
    const id = hs?.['clientId'] as string;
    await w.send({ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' });
    await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/hooked' });
    await s.cometd.publish('/hooked', 1);
    await w.send({ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' });
    assert.deepEqual(w.delivered, [{ channel: '/hooked', data: 1, ext: { stamped: true } }]);
  });

  test('stats counts sessions, subscriptions and messages', async (t) => {
    // A server of its own: on the shared one, a session of an earlier test expiring (maxInterval 2 s) between
    // the two readings changed the counts.
    const own = await startServer({});
    t.after(() => own.close());
    const before = await own.cometd.stats();
    const w = await openWire('long-polling', own.url);
    const id = await wireSession(w);
    await w.send({ channel: '/meta/subscribe', clientId: id, subscription: ['/s1', '/s2'] });
    const st = await own.cometd.stats();
    assert.equal(st.sessions, before.sessions + 1);
    assert.equal(st.subscriptions, before.subscriptions + 2);
    assert.ok(st.messagesIn >= before.messagesIn + 3);
    assert.ok(st.messagesOut >= before.messagesOut + 3);
    assert.equal(typeof st.heldConnections, 'number');
  });
});

describe('handshake authentication and anonymous publish', () => {
  test('a refused handshake gets reconnect none; ext credentials let it through', async () => {
    const s = await startServer({});
    s.cometd.use('/meta/handshake', (m) => {
      if (m.ext?.['token'] !== 'secret') throw new BayeuxError(403, 'bad token');
    });
    try {
      const w = await openWire('long-polling', s.url);
      const [r] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
      assert.equal(r?.['error'], '403::bad token');
      assert.equal(r?.['advice']?.['reconnect'], 'none');
      assert.ok(await wireHandshake(w, { token: 'secret' }));
    } finally {
      await s.close();
    }
  });

  test('anonymousPublish lets a publish without clientId through', async () => {
    const s = await startServer({ anonymousPublish: true });
    try {
      const got: unknown[] = [];
      await s.cometd.subscribe('/anon', (d) => got.push(d)).ready;
      const w = await openWire('long-polling', s.url);
      const [r] = await w.send({ channel: '/anon', data: 'x' });
      assert.equal(r?.['successful'], true);
      await waitFor(() => got.length === 1, { timeout: 2000, what: 'the anonymous publish' });
    } finally {
      await s.close();
    }
  });
});

describe('limits and shutdown', () => {
  test('maxConnectionsPerIp: an extra held connect is answered at once with multiple-clients advice', async () => {
    // A 2 s hold: "at once" is anything under half of it, which a loaded machine still meets.
    const s = await startServer({ timeout: 2000, maxConnectionsPerIp: 1 });
    try {
      const a = await openWire('long-polling', s.url);
      const b = await openWire('long-polling', s.url);
      const ida = await wireSession(a);
      const idb = await wireSession(b);
      const held = a.send({ channel: '/meta/connect', clientId: ida, connectionType: 'long-polling' });
      await waitFor(async () => (await s.cometd.stats()).heldConnections === 1, { what: "a's connect to be held" });
      const t = Date.now();
      const [r] = await b.send({ channel: '/meta/connect', clientId: idb, connectionType: 'long-polling' });
      assert.ok(Date.now() - t < 1000, `answered after ${Date.now() - t} ms`);
      assert.equal(r?.['advice']?.['multiple-clients'], true);
      assert.ok((r?.['advice']?.['interval'] as number) > 0);
      await held;
    } finally {
      await s.close();
    }
  });

  test('close() answers a connect held on a WebSocket before closing the socket', async () => {
    const s = await startServer({ timeout: 20_000 });
    const w = await openWire('websocket', s.url);
    const id = await wireSession(w);
    const held = w.send({ channel: '/meta/connect', clientId: id, connectionType: 'websocket' }, 5000);
    await waitFor(async () => (await s.cometd.stats()).heldConnections === 1, { what: 'the connect to be held' });
    await s.close();
    const [r] = await held;
    assert.equal(r?.['successful'], true);
  });

  test('close() answers held connects at once', async () => {
    const s = await startServer({ timeout: 20_000 });
    const w = await openWire('long-polling', s.url);
    const id = await wireSession(w);
    const t = Date.now();
    const held = w.send({ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' });
    await waitFor(async () => (await s.cometd.stats()).heldConnections === 1, { what: 'the connect to be held' });
    await s.close();
    const [r] = await held;
    assert.equal(r?.['successful'], true);
    assert.ok(Date.now() - t < 2000);
  });
});

describe('malformed fields never crash the server', () => {
  test('a deeply nested id or subscription gets a 400 without echoing it, over both transports', async () => {
    const s = await startServer({});
    try {
      const r = await post(s.url, deepSubscribe);
      assert.equal(r.status, 200);
      assert.match(r.json[0].error, /^400:/);
      assert.equal(r.json[0].id, undefined);
      const { ws, received } = await rawSocket(s.url);
      ws.send(deepSubscribe);
      await waitFor(() => received.length === 1, { timeout: 3000, what: 'a refusal' });
      assert.match(received[0]?.['error'], /^400:/);
      // The same socket and the server keep working.
      ws.send(JSON.stringify([{ ...hs, id: 'after' }]));
      await waitFor(() => received.length === 2, { timeout: 3000, what: 'a handshake reply' });
      assert.equal(received[1]?.['successful'], true);
      ws.close();
    } finally {
      await s.close();
    }
  });

  test('publishing to an unknown /meta channel: 405 invalid_channel', async () => {
    const s = await startServer({});
    try {
      const w = await openWire('long-polling', s.url);
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/meta/foo', clientId: id, data: 1 });
      assert.equal(r?.['error'], '405:/meta/foo:invalid_channel');
    } finally {
      await s.close();
    }
  });
});

/** A MemoryEngine whose store is out of reach the first time it is opened. */
class LateEngine extends MemoryEngine {
  opens = 0;
  override async open(host: EngineHost, config: EngineConfig): Promise<void> {
    if (++this.opens === 1) throw new EngineUnavailableError('store not up yet');
    return super.open(host, config);
  }
}

test('an engine that is down at start: 503 with retry advice, then service once it is up', async () => {
  const engine = new LateEngine();
  const s = await startServer({ engine });
  try {
    const r = await post(s.url, [hs]);
    assert.equal(r.status, 200);
    assert.equal(r.json[0].error, '503::engine_unavailable');
    assert.equal(r.json[0].advice.reconnect, 'retry');
    const again = await post(s.url, [hs]);
    assert.equal(again.json[0].successful, true);
    assert.equal(engine.opens, 2);
  } finally {
    await s.close();
  }
});
