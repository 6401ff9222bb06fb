/**
 * The balancer configurations in `deploy/` (haproxy.cfg, nginx.conf), run
 * for real with the shipped file (helpers/http-balancer.ts puts local ports
 * in place of its example addresses and nothing else):
 *
 * - the file passes `haproxy -c` / `nginx -t` without a warning;
 * - through it a node sees `X-Forwarded-For`, the client's `Host`, and a
 *   WebSocket upgrade; the health check reaches `/health`;
 * - a request held 30.5 s (a /meta/connect held for the server's default
 *   `timeout`) comes back through it;
 * - two package nodes on one `redis-server` behind it, WebSocket and
 *   long-polling subscribers and a publisher going through it: after
 *   `kill -9` of the node holding sockets, messages published without a
 *   pause keep arriving at every subscriber, and the longest gap between
 *   two arrivals (the stall) stays under 2 s.
 *
 * Skips, saying so, only when haproxy, nginx or redis-server is missing.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { performance } from 'node:perf_hooks';
import WebSocket, { WebSocketServer } from 'ws';
import { BayeuxClient } from '../lib/client/node.js';
import { findBinary, startHttpBalancer, type BalancerKind, type RunningBalancer } from './helpers/http-balancer.js';
import { killAllNodes, NodeProcess } from './helpers/node-process.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';
import { skipWithout } from './helpers/missing.js';

const KINDS: readonly BalancerKind[] = ['haproxy', 'nginx'];
/** The requirement: messages stall less than this after a node dies. */
const STALL_LIMIT_MS = 2000;
/** A publish every this many ms, before and after the kill. */
const PUBLISH_EVERY_MS = 50;

// ---------------------------------------------------------------- a node that echoes what reaches it

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** Two plain HTTP servers standing in for nodes: `/health` answers 200, anything else echoes its headers. */
async function echoNodes(): Promise<{ ports: [number, number]; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const servers: http.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < 2; i++) {
    const server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      // A held connect: answered after ?ms= milliseconds, as a node answers a /meta/connect it held.
      const hold = /^\/cometd\/hold\?ms=(\d+)$/.exec(req.url ?? '');
      if (hold) {
        const timer = setTimeout(() => res.end('[]'), Number(hold[1]));
        res.once('close', () => clearTimeout(timer));
        return;
      }
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(req.url === '/health' ? { status: 'ok' } : { headers: req.headers }));
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws, req) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      ws.send(JSON.stringify({ headers: req.headers }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.push((server.address() as AddressInfo).port);
  }
  return {
    ports: ports as [number, number],
    seen,
    async close() {
      for (const server of servers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };
}

// ---------------------------------------------------------------- the failover run

interface Arrival {
  seq: number;
  at: number;
}

interface Subscriber {
  name: string;
  client: BayeuxClient;
  arrivals: Arrival[];
}

/**
 * The longest time without an arrival from `from` on: between the last
 * arrival before `from` and the first after it, and between any two after.
 */
function longestGap(arrivals: readonly Arrival[], from: number, to: number): number {
  const times = arrivals.map((a) => a.at).filter((t) => t <= to).sort((x, y) => x - y);
  let gap = 0;
  for (let i = 1; i < times.length; i++) {
    const [before, at] = [times[i - 1] as number, times[i] as number];
    if (at > from) gap = Math.max(gap, at - before);
  }
  return gap;
}

const redisBinary = findRedisServer();
const redisSkip = redisBinary ? undefined : announceRedisSkip();
let redis: RedisServer | undefined;
const balancers: RunningBalancer[] = [];
const clients: BayeuxClient[] = [];

after(async () => {
  await Promise.all(clients.map((c) => within(c.disconnect(), 3000, 'client disconnect').catch(() => undefined)));
  await killAllNodes();
  for (const balancer of balancers) await balancer.close();
  await redis?.stop();
});

for (const kind of KINDS) {
  const binary = findBinary(kind);
  const file = kind === 'haproxy' ? 'deploy/haproxy.cfg' : 'deploy/nginx.conf';

  describe(`${file} run by ${kind}`, { skip: skipWithout(binary, kind, `apt-get install ${kind}; .ci/run does`) }, () => {
    it('passes its own check, checks /health, and passes on X-Forwarded-For, Host and WebSocket upgrades', async () => {
      const nodes = await echoNodes();
      try {
        const balancer = await startHttpBalancer(kind, nodes.ports);
        balancers.push(balancer);
        // Plain HTTP: the node sees the client's address and the Host it asked for.
        const host = new URL(balancer.origin).host;
        const res = await fetch(`${balancer.origin}/cometd/handshake`, { signal: AbortSignal.timeout(5000) });
        assert.equal(res.status, 200);
        const { headers } = (await res.json()) as { headers: http.IncomingHttpHeaders };
        assert.equal(headers['x-forwarded-for'], '127.0.0.1', JSON.stringify(headers));
        assert.equal(headers['host'], host);
        // A WebSocket upgrade on the Bayeux path goes through, Origin and Host intact.
        const ws = new WebSocket(`${balancer.origin.replace('http', 'ws')}/cometd`, { headers: { Origin: balancer.origin } });
        ws.on('error', () => undefined);
        const first = await within(
          new Promise<string>((resolve, reject) => {
            ws.once('message', (data) => resolve(String(data)));
            ws.once('error', reject);
          }),
          5000,
          'a frame through the balancer',
        );
        ws.terminate();
        const upgraded = (JSON.parse(first) as { headers: http.IncomingHttpHeaders }).headers;
        assert.equal(upgraded['upgrade']?.toLowerCase(), 'websocket');
        assert.equal(upgraded['host'], host);
        assert.equal(upgraded['origin'], balancer.origin);
        assert.equal(upgraded['x-forwarded-for'], '127.0.0.1');
        if (kind === 'haproxy') {
          // HAProxy checks actively: /health has been asked for.
          await waitFor(() => nodes.seen.some((s) => s.url === '/health'), { timeout: 5000, what: 'a health check' });
        }
      } finally {
        await nodes.close();
      }
    });

    it('kill -9 of a node: messages keep arriving at every WebSocket and long-polling subscriber, stalling under 2 s', { skip: redisSkip }, async (t) => {
      redis ??= await startRedisServer();
      const prefix = `lb-${kind}-${process.pid}:`;
      const [a, b] = await Promise.all([
        NodeProcess.start('A', { redisUrl: redis.url, prefix }),
        NodeProcess.start('B', { redisUrl: redis.url, prefix }),
      ]);
      const balancer = await startHttpBalancer(kind, [a.port, b.port]);
      balancers.push(balancer);
      const url = `${balancer.origin}/cometd`;
      const channel = `/failover/${kind}`;

      // Subscribers through the balancer: three on WebSocket (their sockets
      // spread over the nodes), two on long-polling (their connects alternate).
      const subscribers: Subscriber[] = [];
      for (const [i, transport] of (['websocket', 'websocket', 'websocket', 'long-polling', 'long-polling'] as const).entries()) {
        const client = new BayeuxClient(url, { transports: [transport] });
        clients.push(client);
        const sub: Subscriber = { name: `${transport}#${i}`, client, arrivals: [] };
        await within(
          client.subscribe<{ seq: number }>(channel, (data) => sub.arrivals.push({ seq: data.seq, at: performance.now() })),
          10_000,
          `${sub.name} subscribe`,
        );
        assert.equal(client.transport, transport, `${sub.name} is on ${transport} through ${kind}`);
        subscribers.push(sub);
      }

      // A publisher through the balancer too (long-polling: each publish a POST, spread over the nodes).
      const publisher = new BayeuxClient(url, { transports: ['long-polling'] });
      clients.push(publisher);
      await within(publisher.publish(channel, { seq: 0 }), 10_000, 'first publish');
      let seq = 0;
      let publishing = true;
      const published = new Set<number>();
      let failed = 0;
      const loop = (async () => {
        // Bounded: at most 60 s of publishing at one message per PUBLISH_EVERY_MS.
        for (let i = 0; publishing && i < 60_000 / PUBLISH_EVERY_MS; i++) {
          const n = ++seq;
          publisher.publish(channel, { seq: n }).then(
            () => published.add(n),
            () => failed++,
          );
          await sleep(PUBLISH_EVERY_MS);
        }
      })();

      try {
        // Steady state first: every subscriber gets the flow.
        await waitFor(() => subscribers.every((s) => s.arrivals.length >= 40), { timeout: 20_000, what: '40 messages at every subscriber' }).catch((err: Error) => {
          const counts = subscribers.map((s) => `${s.name} ${s.arrivals.length}`).join(', ');
          throw new Error(`${err.message} (${counts}; published ${published.size} of ${seq}, ${failed} failed)`);
        });
        const steadyFrom = performance.now();
        await sleep(3000);
        // The node holding more sockets dies.
        const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
        const victim = sa.sockets >= sb.sockets ? a : b;
        const survivor = victim === a ? b : a;
        assert.ok(Math.max(sa.sockets, sb.sockets) >= 1, `a node holds a WebSocket (A ${sa.sockets}, B ${sb.sockets})`);
        const killedAt = performance.now();
        await victim.kill();
        const counts = subscribers.map((s) => s.arrivals.length);
        // Five seconds of traffic on the survivor alone.
        await sleep(5000);
        const endAt = performance.now();
        for (const [i, s] of subscribers.entries()) {
          assert.ok(s.arrivals.length - (counts[i] as number) >= 20, `${s.name} kept receiving after the kill (${s.arrivals.length - (counts[i] as number)} messages)`);
        }
        assert.equal(survivor.alive, true);
        await sleep(2000);
        const calmEnd = performance.now();

        const report = subscribers.map((s) => {
          const stall = longestGap(s.arrivals, killedAt, endAt);
          // The same measure with no failure going on: how slow the machine is right now. Over the
          // steady run before the kill, and over 2 s after the window the stall is measured in
          // (the survivor alone): a load that came after the kill shows there.
          const calm = Math.max(
            longestGap(s.arrivals.filter((x) => x.at >= steadyFrom), steadyFrom, killedAt),
            longestGap(s.arrivals.filter((x) => x.at >= endAt), endAt, calmEnd),
          );
          const got = new Set(s.arrivals.map((x) => x.seq));
          const missing = [...published].filter((n) => !got.has(n) && n < seq - 40).length;
          return { name: s.name, stall: Math.round(stall), calm: Math.round(calm), missing };
        });
        t.diagnostic(`${kind}: killed ${victim.name} (sockets A ${sa.sockets}, B ${sb.sockets}); publishes failed: ${failed}`);
        for (const r of report) t.diagnostic(`${kind} ${r.name}: stall ${r.stall} ms after the kill (calm ${r.calm} ms before and after), missing ${r.missing}`);
        for (const r of report) {
          // A loaded machine delays every arrival, failure or not: the limit
          // grows by whatever the calm window showed beyond its usual spacing
          // (a few publish intervals), and by nothing on a quiet machine.
          const limit = STALL_LIMIT_MS + Math.max(0, r.calm - 4 * PUBLISH_EVERY_MS);
          assert.ok(r.stall < limit, `${kind} ${r.name}: messages stalled ${r.stall} ms after the kill (limit ${limit} ms; calm ${r.calm} ms)`);
        }
      } finally {
        publishing = false;
        await loop;
        // This run's clients, nodes and balancer go now, not at the end of
        // the file: the next balancer's run is measured on a quiet machine.
        const mine = [...subscribers.map((s) => s.client), publisher];
        await Promise.all(mine.map((c) => within(c.disconnect(), 3000, 'client disconnect').catch(() => undefined)));
        await Promise.all([a.stop(), b.stop()]);
        await balancer.close();
      }
    });
  });
}

// The proxies' read timeouts must let a /meta/connect held for the server's
// whole `timeout` (30 s by default) come back. Both balancers at once, so
// the wait is paid once.
describe('a connect held for the server\'s default timeout (30 s) comes back through each balancer', () => {
  const kinds = KINDS.filter((kind) => findBinary(kind));
  it(`through ${kinds.join(' and ') || 'no balancer'}`, { skip: skipWithout(kinds.length > 0, 'haproxy and nginx', 'apt-get install haproxy nginx; .ci/run does') }, async () => {
    const nodes = await echoNodes();
    try {
      const running = await Promise.all(kinds.map((kind) => startHttpBalancer(kind, nodes.ports)));
      balancers.push(...running);
      const held = 30_500;
      const results = await Promise.all(running.map(async (balancer) => {
        const started = performance.now();
        const res = await fetch(`${balancer.origin}/cometd/hold?ms=${held}`, { signal: AbortSignal.timeout(60_000) });
        return { kind: balancer.kind, status: res.status, body: await res.text(), ms: performance.now() - started };
      }));
      for (const r of results) {
        assert.equal(r.status, 200, `${r.kind}: a connect held ${held} ms got HTTP ${r.status}`);
        assert.equal(r.body, '[]');
        assert.ok(r.ms >= held, `${r.kind} answered after ${Math.round(r.ms)} ms`);
      }
    } finally {
      await nodes.close();
    }
  });
});
