/**
 * Rolling deploys (issue #22): `cometd.close({ drain })` takes a node out
 * of service over a window: health says `draining` at once, handshakes are
 * refused with advice to come back, and the node's sessions are handed
 * off in slices spread over the window (retry advice jittered over what is
 * left of it, sockets closed once answered). On Redis the sessions go on
 * on the other node with nothing lost and nothing twice; on the memory
 * engine the clients handshake again on the other node, spread out.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { BayeuxClient } from '../lib/client/node.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { get, nextEvent, startServer, type TestServer } from './helpers/http-server.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { startBalancer, type TcpBalancer } from './helpers/tcp-balancer.js';
import { openWire, wireSession, type Msg, type Wire } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';
import { testChannelLogs } from './helpers/channel-logs.js';

/**
 * The most of `times` (ms) that fall in one `slice`-ms slice. Everything
 * at once (a plain `close()`) puts them all in one; the tests allow half,
 * as an event loop stalled by a loaded machine bunches a few.
 */
function densest(times: readonly number[], slice = 100): number {
  const bins = new Map<number, number>();
  for (const t of times) bins.set(Math.floor(t / slice), (bins.get(Math.floor(t / slice)) ?? 0) + 1);
  return Math.max(0, ...bins.values());
}

describe('close({ drain }) on one node', () => {
  const servers: TestServer[] = [];
  const wires: Wire[] = [];
  after(async () => {
    for (const w of wires) w.close();
    for (const s of servers) await s.close();
  });

  it('health says draining at once; handshakes are refused with retry advice; held connects are handed off spread over the window', async () => {
    const server = await startServer({ timeout: 20_000 });
    servers.push(server);
    server.app.get('/health', server.cometd.health());
    const metrics = server.cometd.metrics();
    server.app.get('/metrics', metrics);
    assert.equal((await get(server.origin + '/health')).status, 200);

    // 20 long-polling sessions, each with a connect held.
    const sessions: Array<{ wire: Wire; clientId: string }> = [];
    for (let i = 0; i < 20; i++) {
      const wire = await openWire('long-polling', server.url);
      wires.push(wire);
      sessions.push({ wire, clientId: await wireSession(wire) });
    }
    const answered: Array<{ at: number; reply: Msg | undefined }> = [];
    const held = sessions.map(({ wire, clientId }) =>
      wire.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling' }, 15_000).then((replies) => {
        answered.push({ at: performance.now(), reply: replies[0] });
      }));
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 20, { what: '20 held connects' });
    const drainedIds: string[] = [];
    server.cometd.on('disconnect', (clientId, reason) => {
      if (reason === 'drain') drainedIds.push(clientId);
    });

    const window = 3000;
    const started = performance.now();
    const closing = server.cometd.close({ drain: window });
    // From the first moment: health 503 draining, handshakes refused with advice to come back.
    const health = await get(server.origin + '/health');
    assert.equal(health.status, 503);
    assert.deepEqual(health.json, { status: 'draining' });
    const newcomer = await openWire('long-polling', server.url);
    const [refused] = await newcomer.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
    assert.equal(refused?.['successful'], false);
    assert.equal(refused?.['error'], '503::server_draining');
    assert.equal(refused?.['advice']?.reconnect, 'handshake');
    assert.ok(refused?.['advice']?.interval >= 0 && refused?.['advice']?.interval <= window);

    // Mid-drain (the metrics go with the server once it closes): the hand-offs so far are counted.
    await waitFor(() => answered.length >= 5, { timeout: 10_000, what: '5 hand-offs' });
    const text = await metrics.registry.metrics();
    const counted = Number(/^bayeux_drained_sessions_total (\d+)$/m.exec(text)?.[1]);
    assert.ok(counted >= 5 && counted <= 20, `${counted} drained sessions counted: ${text}`);
    assert.match(text, /^bayeux_handshakes_refused_total\{reason="draining"\} 1$/m);

    await within(Promise.all(held), 15_000, 'the held connects');
    for (const { reply } of answered) {
      assert.equal(reply?.['successful'], true);
      assert.equal(reply?.['advice']?.reconnect, 'retry');
      const interval = reply?.['advice']?.interval as number;
      assert.ok(Number.isInteger(interval) && interval >= 0 && interval <= window, `interval ${interval}`);
    }
    // Spread over the window, not all at once (relative: a stall compresses, it cannot fake a spread).
    const times = answered.map((a) => a.at - started);
    const spread = Math.max(...times) - Math.min(...times);
    assert.ok(spread > window / 4, `hand-offs spread over ${Math.round(spread)} ms of a ${window} ms window`);
    // All at once (a plain close()) puts all 20 in one slice; a loaded machine's stall may bunch a few.
    assert.ok(densest(times) <= 20 / 2, `${densest(times)} of 20 hand-offs in one 100 ms slice`);
    const intervals = answered.map((a) => a.reply?.['advice']?.interval as number);
    assert.ok(new Set(intervals).size > 10, 'the intervals are jittered');
    assert.deepEqual(new Set(drainedIds), new Set(sessions.map((s) => s.clientId)), 'disconnect reason drain, once per session');
    assert.equal(drainedIds.length, 20);

    await within(closing, 10_000, 'close({ drain })');
    assert.deepEqual((await get(server.origin + '/health')).json, { status: 'closing' });
  });

  it('a WebSocket session gets its hand-off advice, then its socket closes', async () => {
    const server = await startServer({ timeout: 20_000 });
    servers.push(server);
    const wire = await openWire('websocket', server.url);
    wires.push(wire);
    const clientId = await wireSession(wire);
    const reply = wire.send({ channel: '/meta/connect', clientId, connectionType: 'websocket' }, 10_000);
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { what: 'a held connect' });
    const event = nextEvent<[string, string]>(server, 'disconnect', (id, reason) => id === clientId && reason === 'drain');
    const closing = server.cometd.close({ drain: 500 });
    const [answered] = await reply;
    assert.equal(answered?.['successful'], true);
    assert.equal(answered?.['advice']?.reconnect, 'retry');
    await event;
    await waitFor(async () => (await server.cometd.stats()).sockets === 0, { what: 'the socket to close' });
    await within(closing, 10_000, 'close({ drain })');
  });

  it('once closed, a request on a kept-alive connection is refused and its connection closed, so the retry can go to another node', async () => {
    // A long-polling client keeps idle connections to a node (one per request it had under way at once); the
    // hand-off closes only the one its connect came on. Its next connect may reuse another: if a closed node
    // kept that one open, every retry came back to it (behind a balancer) while its session expired.
    const server = await startServer({ timeout: 20_000 });
    servers.push(server);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const send = (message: Msg) => new Promise<{ headers: http.IncomingHttpHeaders; body: Msg[]; reused: boolean }>((resolve, reject) => {
      const req = http.request(server.url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ headers: res.headers, body: JSON.parse(text) as Msg[], reused: req.reusedSocket }));
        res.on('error', reject);
      });
      req.on('socket', (socket) => sockets.add(socket));
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
      req.end(JSON.stringify([message]));
    });
    try {
      const shook = await send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
      const clientId = shook.body[0]?.['clientId'] as string;
      assert.equal(typeof clientId, 'string');
      assert.notEqual(shook.headers.connection, 'close', 'kept alive while the server serves');
      await within(server.cometd.close({ drain: 200 }), 10_000, 'close({ drain })');
      // The same connection, after the drain: refused with retry advice, and closed.
      const late = await send({ channel: '/meta/connect', clientId, connectionType: 'long-polling' });
      assert.equal(late.reused, true, 'the request went on the kept-alive connection');
      assert.equal(late.body[0]?.['error'], '503::server_closing');
      assert.equal(late.body[0]?.['advice']?.reconnect, 'retry');
      assert.equal(late.headers.connection, 'close');
      // So the next request opens a new connection.
      const again = await send({ channel: '/meta/connect', clientId, connectionType: 'long-polling' });
      assert.equal(again.reused, false, 'the retry opened a new connection');
      assert.equal(sockets.size, 2);
    } finally {
      agent.destroy();
    }
  });

  it('bad close options throw a TypeError', async () => {
    const server = await startServer();
    servers.push(server);
    await assert.rejects(server.cometd.close({ drain: -1 }), /drain/);
    await assert.rejects(server.cometd.close({ drain: 1.5 }), /drain/);
    await assert.rejects(server.cometd.close({ nope: 1 } as never), /unknown close option nope/);
    assert.equal((await get(server.url.replace('/cometd', '/nothing'))).status, 404, 'the server still serves');
  });
});

describe('close({ drain }) behind a balancer, memory engine', () => {
  const servers: TestServer[] = [];
  const clients: BayeuxClient[] = [];
  let balancer: TcpBalancer | undefined;
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect()));
    await balancer?.close();
    for (const s of servers) await s.close();
  });

  it('clients handshake again on the other node, spread over the window', async () => {
    const a = await startServer({ timeout: 20_000 });
    const b = await startServer({ timeout: 20_000 });
    servers.push(a, b);
    balancer = await startBalancer([a.port]);
    for (let i = 0; i < 20; i++) {
      const client = new BayeuxClient(`${balancer.origin}/cometd`, { transports: i % 2 === 0 ? ['websocket'] : ['long-polling'] });
      client.on('error', () => undefined);
      clients.push(client);
    }
    await Promise.all(clients.map((c) => c.subscribe('/room', () => undefined)));
    const handshakesOnB: number[] = [];
    b.cometd.on('handshake', () => handshakesOnB.push(performance.now()));
    // The balancer sees the health check fail and sends new connections to b only.
    balancer.setBackends([b.port]);
    const window = 2000;
    const started = performance.now();
    await within(a.cometd.close({ drain: window }), 10_000, 'the drain');
    // Every client handshook again on b and subscribed there.
    await waitFor(async () => (await b.cometd.subscribers('/room')).length === 20, { timeout: 15_000, what: 'the 20 subscriptions on b' });
    await waitFor(() => clients.every((c) => c.state === 'connected'), { timeout: 10_000, what: 'every client connected' });
    assert.ok(handshakesOnB.length >= 20, `${handshakesOnB.length} handshakes on b`);
    const times = handshakesOnB.map((t) => t - started);
    const spread = Math.max(...times) - Math.min(...times);
    assert.ok(spread > window / 4, `handshakes on b spread over ${Math.round(spread)} ms`);
    assert.ok(densest(times) <= times.length / 2, `${densest(times)} of ${times.length} handshakes on b in one 100 ms slice`);
  });
});

describe('close({ drain }) on Redis: sessions go on on the other node', { skip: findRedisServer() ? false : announceRedisSkip() }, () => {
  const servers: TestServer[] = [];
  const clients: BayeuxClient[] = [];
  let balancer: TcpBalancer | undefined;
  let redis: Awaited<ReturnType<typeof startRedisServer>> | undefined;
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect()));
    await balancer?.close();
    for (const s of servers) await s.close();
    await redis?.stop();
  });

  it('a session handed off outlives the advised interval, even past maxInterval', async () => {
    redis ??= await startRedisServer();
    const prefix = `drain-ttl-${process.pid}:`;
    const engine = (): RedisEngine => new RedisEngine({ url: (redis as { url: string }).url }, { prefix, reconnectMaxDelay: 100, ...testChannelLogs() });
    const one = await startServer({ engine: engine(), timeout: 20_000, maxInterval: 1000 });
    const two = await startServer({ engine: engine(), timeout: 20_000, maxInterval: 1000 });
    servers.push(one, two);
    const wire = await openWire('long-polling', one.url);
    const clientId = await wireSession(wire);
    const reply = wire.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling' }, 10_000);
    await waitFor(async () => (await one.cometd.stats()).heldConnections === 1, { what: 'a held connect' });
    const closing = one.cometd.close({ drain: 4000 });
    const [answered] = await reply;
    const interval = answered?.['advice']?.interval as number;
    // Come back, to the other node, within the advised interval plus less than maxInterval: the session goes on there.
    await sleep(interval + 300);
    const other = await openWire('long-polling', two.url);
    const [again] = await other.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } });
    assert.equal(again?.['successful'], true, `after ${interval} + 300 ms: ${JSON.stringify(again)}`);
    await within(closing, 10_000, 'close({ drain })');
  });

  it('200 clients with acks, half WebSocket, half long-polling: every message once, in order, through a roll (node 1 drains over 3 s and is replaced, then node 2)', async () => {
    redis ??= await startRedisServer();
    const prefix = `drain-${process.pid}:`;
    const engine = (): RedisEngine => new RedisEngine({ url: (redis as { url: string }).url }, { prefix, reconnectMaxDelay: 100, ...testChannelLogs() });
    const one = await startServer({ engine: engine(), timeout: 20_000 });
    const two = await startServer({ engine: engine(), timeout: 20_000 });
    servers.push(one, two);
    balancer = await startBalancer([one.port, two.port]);

    const received: number[][] = [];
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(Array.from({ length: 20 }, async (_, k) => {
        const got: number[] = [];
        received[i + k] = got;
        const client = new BayeuxClient(`${balancer?.origin}/cometd`, { transports: (i + k) % 2 === 0 ? ['websocket'] : ['long-polling'] });
        client.on('error', () => undefined);
        clients.push(client);
        await client.subscribe('/feed', (data) => void got.push(data as number));
      }));
    }
    const handedOff: string[] = [];
    const arrivals: number[] = [];
    // A session's first connect on a node is its arrival there (a long-poll's later connects are not).
    const watch = (node: TestServer, since: () => number) => {
      const seen = new Set<string>();
      node.cometd.on('disconnect', (clientId, reason) => {
        if (reason === 'drain') handedOff.push(clientId);
      });
      node.cometd.on('connect', (clientId) => {
        if (seen.has(clientId)) return;
        seen.add(clientId);
        arrivals.push(performance.now() - since());
      });
    };
    let drainStarted = Infinity;
    watch(one, () => drainStarted);
    watch(two, () => drainStarted);
    const onOne = (await one.cometd.stats()).heldConnections;
    assert.ok(onOne >= 50, `${onOne} sessions held on node 1 before the roll`);

    // A steady publisher through the roll, on a node that is not draining.
    let via = two;
    let sent = 0;
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; i < 1000 && publishing; i++) {
        await via.cometd.publish('/feed', sent++);
        await sleep(20);
      }
    })();
    const window = 2000;
    // Node 1 leaves the balancer and drains over the window, then a new node 1 takes its place.
    balancer.setBackends([two.port]);
    drainStarted = performance.now();
    await within(one.cometd.close({ drain: window }), 15_000, 'the drain of node 1');
    const three = await startServer({ engine: engine(), timeout: 20_000 });
    servers.push(three);
    watch(three, () => drainStarted);
    balancer.setBackends([two.port, three.port]);
    via = three;
    const onTwo = (await two.cometd.stats()).heldConnections;
    // Then node 2 does the same.
    balancer.setBackends([three.port]);
    drainStarted = performance.now();
    await within(two.cometd.close({ drain: window }), 15_000, 'the drain of node 2');
    await sleep(300);
    publishing = false;
    await publisher;

    const expected = Array.from({ length: sent }, (_, i) => i);
    // Longer than a held connect (20 s): a wake lost on the way would show as a delay here, a lost message as a failure.
    await waitFor(() => received.every((got) => got.length >= sent), { timeout: 30_000, what: `every client to get ${sent} messages` })
      .catch((err: Error) => {
        throw new Error(`${err.message}; missing: ${received.map((got, i) => `${i}:[${expected.filter((x) => !got.includes(x)).join(',')}]`).join(' ')}`);
      });
    await sleep(200); // a duplicate would arrive by now
    received.forEach((got, i) => assert.deepEqual(got, expected, `client ${i} (${i % 2 === 0 ? 'websocket' : 'long-polling'})`));
    // Handed off once each per drain (a long-poll that opened a new connection meanwhile may have moved by itself).
    assert.ok(handedOff.length >= (onOne + onTwo) / 2, `${handedOff.length} of ${onOne} + ${onTwo} sessions handed off`);
    // The hand-offs reached the surviving node spread over each window, not in one burst: no 100 ms slice holds more than a third.
    const times = arrivals.filter((t) => t >= 0);
    assert.ok(times.length >= 10, `${times.length} sessions taken over during the roll`);
    assert.ok(densest(times) <= times.length / 3, `${densest(times)} of ${times.length} connects on the surviving nodes in one 100 ms slice`);
    assert.ok(clients.every((c) => c.state === 'connected'));
  });
});
