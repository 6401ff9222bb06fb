/**
 * Limits on what clients may send (issue #22): per-session rate limits
 * (`rateLimit`, `rateLimitPolicy`) and admission control for handshakes
 * (`maxHandshakeRate`, `handshakeRatePerIp`).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bayeux } from '../lib/index.js';
import { BayeuxClient, type BayeuxMessage } from '../lib/client/node.js';
import { get, nextEvent, startServer, type TestServer } from './helpers/http-server.js';
import { openWire, rawSocket, wireSession, type Msg, type Wire } from './helpers/wire.js';
import { waitFor } from './helpers/wait.js';

describe('rate limits per session', () => {
  const servers: TestServer[] = [];
  const wires: Wire[] = [];
  after(async () => {
    for (const w of wires) w.close();
    for (const s of servers) await s.close();
  });

  async function wire(server: TestServer, kind: 'websocket' | 'long-polling' = 'websocket'): Promise<{ wire: Wire; clientId: string }> {
    const w = await openWire(kind, server.url);
    wires.push(w);
    return { wire: w, clientId: await wireSession(w) };
  }

  it('a flooding client gets refusals; another client on the node publishes and receives as before', async () => {
    const server = await startServer({ rateLimit: { messages: { perSecond: 2, burst: 10 } } });
    servers.push(server);
    const subscriber = await wire(server);
    const [sub] = await subscriber.wire.send({ channel: '/meta/subscribe', clientId: subscriber.clientId, subscription: '/chat' });
    assert.equal(sub?.['successful'], true);
    const flooder = await wire(server);
    const other = await wire(server, 'long-polling');

    // 40 publishes in one frame: the burst passes, the rest is refused, none silently dropped.
    const flood: Msg[] = [];
    for (let i = 0; i < 40; i++) flood.push({ channel: '/chat', clientId: flooder.clientId, data: { from: 'flooder', i } });
    const replies = await flooder.wire.send(flood);
    assert.equal(replies.length, 40, 'every publish is answered');
    const accepted = replies.filter((r) => r['successful'] === true).length;
    const refused = replies.filter((r) => r['successful'] === false);
    assert.ok(accepted >= 10 && accepted <= 12, `${accepted} accepted (burst 10, 2/s)`);
    assert.equal(accepted + refused.length, 40);
    for (const r of refused) assert.equal(r['error'], '429:messages:rate_limited');

    // The other client, on the same node, is not affected.
    const mine: Msg[] = [];
    for (let i = 0; i < 5; i++) mine.push({ channel: '/chat', clientId: other.clientId, data: { from: 'other', i } });
    const otherReplies = await other.wire.send(mine);
    assert.deepEqual(otherReplies.map((r) => r['successful']), [true, true, true, true, true]);
    await subscriber.wire.waitDelivered(accepted + 5);
    const fromOther = subscriber.wire.delivered.filter((m) => m['data']?.from === 'other').map((m) => m['data'].i);
    assert.deepEqual(fromOther, [0, 1, 2, 3, 4]);
    const fromFlooder = subscriber.wire.delivered.filter((m) => m['data']?.from === 'flooder');
    assert.equal(fromFlooder.length, accepted, 'exactly the accepted publishes are delivered');
  });

  it('/meta/connect is not counted', async () => {
    const server = await startServer({ rateLimit: { messages: { perSecond: 1, burst: 1 } } });
    servers.push(server);
    const { wire: w, clientId } = await wire(server, 'long-polling');
    for (let i = 0; i < 5; i++) {
      const [reply] = await w.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } });
      assert.equal(reply?.['successful'], true, `connect ${i}`);
    }
    const replies = await w.send([
      { channel: '/meta/subscribe', clientId, subscription: '/a' },
      { channel: '/meta/subscribe', clientId, subscription: '/b' },
    ]);
    assert.deepEqual(replies.map((r) => r['successful']), [true, false]);
  });

  it('a bytes limit refuses a message over it', async () => {
    const server = await startServer({ rateLimit: { bytes: { perSecond: 100, burst: 2000 } } });
    servers.push(server);
    const { wire: w, clientId } = await wire(server);
    const [small] = await w.send({ channel: '/x', clientId, data: 'a'.repeat(100) });
    assert.equal(small?.['successful'], true);
    const [big] = await w.send({ channel: '/x', clientId, data: 'a'.repeat(2500) });
    assert.equal(big?.['successful'], false);
    assert.equal(big?.['error'], '429:bytes:rate_limited');
  });

  it("rateLimitPolicy 'disconnect' ends the flooding session; the metrics count the refusals", async () => {
    const server = await startServer({ rateLimit: { messages: { perSecond: 1, burst: 3 } }, rateLimitPolicy: 'disconnect' });
    servers.push(server);
    const metrics = server.cometd.metrics();
    server.app.get('/metrics', metrics);
    const { wire: w, clientId } = await wire(server);
    const ended = nextEvent<[string, string]>(server, 'disconnect', (id) => id === clientId);
    const flood: Msg[] = [];
    for (let i = 0; i < 6; i++) flood.push({ channel: '/x', clientId, data: i });
    const replies = await w.send(flood);
    assert.equal(replies[3]?.['successful'], false);
    assert.equal(replies[3]?.['error'], '429:messages:rate_limited');
    const [, reason] = await ended;
    assert.equal(reason, 'server');
    const [after] = await w.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', advice: { timeout: 0 } });
    assert.equal(after?.['successful'], false, 'the session is gone');
    assert.equal(after?.['advice']?.reconnect, 'handshake');
    const text = (await get(server.origin + '/metrics')).text;
    const counted = /^bayeux_rate_limited_total (\d+)/m.exec(text);
    assert.ok(counted && Number(counted[1]) >= 1, text);
  });

  it('bad rateLimit options throw a TypeError naming them', () => {
    assert.throws(() => bayeux({ rateLimit: { messages: { perSecond: 0, burst: 1 } } }), /rateLimit\.messages\.perSecond/);
    assert.throws(() => bayeux({ rateLimit: { messages: { perSecond: 1, burst: 0.5 } } }), /rateLimit\.messages\.burst/);
    assert.throws(() => bayeux({ rateLimit: { nope: 1 } as never }), /unknown option rateLimit\.nope/);
    assert.throws(() => bayeux({ rateLimitPolicy: 'drop' as never }), /rateLimitPolicy/);
    assert.throws(() => bayeux({ maxHandshakeRate: -1 }), /maxHandshakeRate/);
    assert.throws(() => bayeux({ handshakeRatePerIp: 1.5 }), /handshakeRatePerIp/);
  });
});

describe('admission control', () => {
  const servers: TestServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('2,000 handshakes against maxHandshakeRate 200: the excess is refused with spread back-off advice; sessions go on', async () => {
    const server = await startServer({ maxHandshakeRate: 200 });
    servers.push(server);
    const metrics = server.cometd.metrics();
    server.app.get('/metrics', metrics);
    // An existing session, made before the herd.
    const existing = await openWire('long-polling', server.url);
    const clientId = await wireSession(existing);
    await existing.send({ channel: '/meta/subscribe', clientId, subscription: '/news' });

    // The herd: 10 sockets, 200 handshakes each, every one its own frame (a handshake is never batched).
    const sockets = await Promise.all(Array.from({ length: 10 }, () => rawSocket(server.url)));
    const started = performance.now();
    for (const { ws } of sockets) {
      for (let i = 0; i < 200; i++) ws.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] }]));
    }
    const replies = (): Msg[] => sockets.flatMap((s) => s.received);
    await waitFor(() => replies().length >= 2000, { timeout: 60_000, what: '2000 handshake replies' });
    const elapsed = (performance.now() - started) / 1000;
    for (const { ws } of sockets) ws.close();

    // While the herd is refused, the existing session is served.
    await server.cometd.publish('/news', 'still here');
    const [connect] = await existing.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } });
    assert.equal(connect?.['successful'], true);
    assert.deepEqual(existing.delivered.map((m) => m['data']), ['still here']);

    const all = replies();
    const admitted = all.filter((r) => r['successful'] === true).length;
    const refused = all.filter((r) => r['successful'] === false);
    assert.equal(admitted + refused.length, 2000);
    // A token bucket of 200 a second, full at the start: at most 200 + 200 per second that passed (one token was the existing session's).
    assert.ok(admitted <= 200 + Math.ceil(200 * elapsed), `${admitted} admitted in ${elapsed.toFixed(2)} s`);
    assert.ok(admitted >= 199, `${admitted} admitted`);
    for (const r of refused) {
      assert.equal(r['error'], '429:node:handshake_rate_limited');
      assert.equal(r['advice']?.reconnect, 'handshake');
      assert.ok(Number.isInteger(r['advice']?.interval) && r['advice'].interval >= 1 && r['advice'].interval <= 60_000);
    }
    // Randomised, and spread over more than a second once the demand is many times the rate.
    const intervals = refused.map((r) => r['advice'].interval as number);
    assert.ok(new Set(intervals).size > intervals.length / 4, 'intervals are drawn at random');
    assert.ok(Math.max(...intervals.slice(-500)) > 2000, `the later refusals are spread wider (max ${Math.max(...intervals.slice(-500))} ms)`);

    const text = (await get(server.origin + '/metrics')).text;
    const counted = /^bayeux_handshakes_refused_total\{reason="node"\} (\d+)/m.exec(text);
    assert.equal(Number(counted?.[1]), refused.length, text);
    existing.close();
  });

  it('the package client retries refused handshakes spread out, never sooner than the advised interval', async () => {
    const server = await startServer({ maxHandshakeRate: 5 });
    servers.push(server);
    const clients: BayeuxClient[] = [];
    /** Per client: the intervals its refused handshakes advised, and the delays it chose, in order. */
    const advised: number[][] = [];
    const chosen: number[][] = [];
    try {
      for (let i = 0; i < 40; i++) {
        const mine: number[] = [];
        const delays: number[] = [];
        advised.push(mine);
        chosen.push(delays);
        const log = (text: string): void => {
          const m = /retrying in (\d+) ms/.exec(text);
          if (m) delays.push(Number(m[1]));
        };
        const client = new BayeuxClient(server.url, {
          transports: ['long-polling'],
          logger: { error: log, warn: log, info: log, debug: () => undefined },
          extensions: [{
            incoming(message: BayeuxMessage) {
              if (message.channel === '/meta/handshake' && message.successful === false) mine.push(Number(message.advice?.interval));
              return message;
            },
          }],
        });
        client.on('error', () => undefined);
        clients.push(client);
        client.connect().catch(() => undefined);
      }
      // Every refused client has chosen its first retry.
      // 40 at once against a bucket of 5: at least 30 are refused at first; each then chooses its first retry.
      await waitFor(() => advised.filter((a) => a.length > 0).length >= 30 && advised.every((a, i) => a.length === 0 || (chosen[i]?.length ?? 0) >= 1),
        { timeout: 20_000, what: 'the first retries' });
      const refusedClients = advised.filter((a) => a.length > 0).length;
      assert.ok(refusedClients >= 30, `${refusedClients} of 40 clients were refused (burst 5)`);
      const firsts: number[] = [];
      for (let i = 0; i < clients.length; i++) {
        const a = advised[i] as number[];
        const d = chosen[i] as number[];
        for (let k = 0; k < Math.min(a.length, d.length); k++) {
          assert.ok((d[k] as number) >= (a[k] as number) - 1, `client ${i} retry ${k}: ${d[k]} ms chosen, ${a[k]} ms advised`);
        }
        if (d.length > 0) firsts.push(d[0] as number);
      }
      // Spread out: over more than a second, and no 100 ms slice holds a third of them.
      const spread = Math.max(...firsts) - Math.min(...firsts);
      assert.ok(spread > 1000, `first retries spread over ${spread} ms`);
      const bins = new Map<number, number>();
      for (const d of firsts) bins.set(Math.floor(d / 100), (bins.get(Math.floor(d / 100)) ?? 0) + 1);
      const densest = Math.max(...bins.values());
      assert.ok(densest <= firsts.length / 3, `${densest} of ${firsts.length} first retries in one 100 ms slice`);
    } finally {
      await Promise.all(clients.map((c) => c.disconnect()));
    }
  });

  it('handshakeRatePerIp limits one address (req.ip, behind trust proxy) and leaves the others alone', async () => {
    const server = await startServer({ handshakeRatePerIp: 3 }, { configure: (app) => app.set('trust proxy', true) });
    servers.push(server);
    const handshakeFrom = async (ip: string): Promise<Msg> => {
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': ip },
        body: JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]),
        signal: AbortSignal.timeout(10_000),
      });
      return ((await res.json()) as Msg[])[0] as Msg;
    };
    const flood: Msg[] = [];
    for (let i = 0; i < 10; i++) flood.push(await handshakeFrom('10.0.0.1'));
    const admitted = flood.filter((r) => r['successful'] === true).length;
    assert.ok(admitted >= 3 && admitted <= 4, `${admitted} admitted`);
    const refused = flood.filter((r) => r['successful'] === false);
    for (const r of refused) {
      assert.equal(r['error'], '429:address:handshake_rate_limited');
      assert.equal(r['advice']?.reconnect, 'handshake');
      assert.ok(r['advice']?.interval >= 1);
    }
    const other = await handshakeFrom('10.0.0.2');
    assert.equal(other['successful'], true, 'another address is not limited');
  });
});
