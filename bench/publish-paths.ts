/**
 * Publishing from other processes (issue #26): publishes/s through
 * `RedisPublisher` and through the HTTP endpoint (`cometd.publishHandler`),
 * against `cometd.publish` on a node, in one run.
 *
 * Set-up: a throw-away redis-server; one node (test/helpers/redis-node.ts:
 * Express, `bayeux()` on a RedisEngine, `POST /publish` with a token) in a
 * child process; S WebSocket subscribers (raw Bayeux peers in this
 * process) on one channel of the node. Paths, each publishing N messages
 * `{ i, pad }` to that channel:
 *
 *   cometd.publish   in the node, at most W publishes in flight
 *   RedisPublisher   in this process (no server), at most W in flight
 *   HTTP x1          POST /publish, one message per request, 16 requests in flight
 *   HTTP x100        POST /publish, 100 messages per request, 2 requests in flight
 *
 * Reported per path, medians over the rounds (the order of the paths
 * rotates each round): accepted/s (N ÷ the time until the last publish
 * resolved, or its request was answered) and delivered/s (N ÷ the time
 * until every subscriber had all N, each once; in order but for the
 * concurrent HTTP requests, which may arrive in any order), Redis CPU µs per
 * message, and each path's delivered/s ÷ cometd.publish's. Written to
 * bench/results/publish-paths-latest.json (and a dated copy); a Markdown
 * table is printed.
 *
 *   npm run bench:publish
 *   npm run bench:publish -- --messages=2000 --rounds=1
 *
 * Options (flag or environment variable):
 *   --messages=5000     BENCH_MESSAGES     N per path and round
 *   --rounds=3          BENCH_ROUNDS       medians over this many rounds
 *   --subscribers=1     BENCH_SUBSCRIBERS  WebSocket subscribers on the node
 *   --window=100        BENCH_WINDOW       W, publishes in flight (cometd.publish, RedisPublisher)
 *   --payload=64        BENCH_PAYLOAD      bytes of padding per message
 *   --quiet-wait=60     BENCH_QUIET_WAIT   seconds to wait for a quiet machine before each round
 */
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { numberOption as number, runMain, writeResults } from './common.js';
import { backgroundLoad, fmt, median, ratio, waitForQuiet } from './machine.js';
import { redisCpu } from './redis-cpu.js';
import { RedisPublisher } from '../lib/engines/redis/index.js';
import { killAllNodes, NodeProcess } from '../test/helpers/node-process.js';
import { connect, handshake, openPeer, subscribe, type Peer } from '../test/helpers/redis-multiprocess.js';
import { findRedisServer, startRedisServer } from '../test/helpers/redis-server.js';
import { waitFor } from '../test/helpers/wait.js';

const RUN_LIMIT_MS = 30 * 60_000;
const CHANNEL = '/bench/publish';
const TOKEN = 'bench-publish-token-0123456789abcdef';

type Path = 'cometd.publish' | 'RedisPublisher' | 'HTTP x1' | 'HTTP x100';
const PATHS: readonly Path[] = ['cometd.publish', 'RedisPublisher', 'HTTP x1', 'HTTP x100'];

interface Sample {
  acceptedPerSecond: number;
  deliveredPerSecond: number;
  redisCpuUsPerMessage: number;
}

/** Run `count` tasks, at most `window` at once, in order of start. */
async function windowed(count: number, window: number, task: (i: number) => Promise<unknown>): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 1; i <= count; i++) {
    const sent = task(i);
    inFlight.add(sent);
    const settled = () => inFlight.delete(sent);
    sent.then(settled, settled);
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

/** Keep-alive connections, as a service publishing steadily keeps them (node:http: less client CPU than fetch on this machine). */
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

function post(url: string, body: unknown): Promise<void> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent,
      timeout: 30_000,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), Authorization: `Bearer ${TOKEN}` },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST /publish: HTTP ${res.statusCode}: ${text}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('POST /publish: no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const messages = number('messages', 5000, 100, 1_000_000);
  const rounds = number('rounds', 3, 1, 20);
  const subscribers = number('subscribers', 1, 1, 500);
  const window = number('window', 100, 1, 10_000);
  const pad = 'x'.repeat(number('payload', 64, 0, 100_000));
  if (!findRedisServer()) throw new Error('redis-server is not on PATH: this benchmark needs it');

  const redis = await startRedisServer();
  const prefix = `bench-pub-${process.pid}:`;
  const peers: Peer[] = [];
  let stopped = false;
  let publisher: RedisPublisher | undefined;
  try {
    const node = await NodeProcess.start('node', { redisUrl: redis.url, prefix, publishToken: TOKEN, lifetime: RUN_LIMIT_MS, timeout: 30_000 });
    const endpoint = `http://127.0.0.1:${node.port}/publish`;
    for (let s = 0; s < subscribers; s++) {
      const peer = await openPeer('websocket', node.url);
      const id = await handshake(peer);
      await subscribe(peer, id, CHANNEL);
      await connect(peer, id, true);
      // A connect held at all times, as a client keeps one: pushes come on the socket, and the session stays alive.
      void (async () => {
        for (let k = 0; k < 10_000 && !stopped && !peer.closed; k++) await connect(peer, id, false, 60_000).catch(() => []);
      })();
      peers.push(peer);
    }
    publisher = new RedisPublisher({ url: redis.url }, { prefix });
    const rp = publisher;

    const run: Record<Path, (n: number) => Promise<void>> = {
      'cometd.publish': async (n) => {
        await node.publishMany(CHANNEL, n, window, pad);
      },
      'RedisPublisher': (n) => windowed(n, window, (i) => rp.publish(CHANNEL, { i, pad })),
      'HTTP x1': (n) => windowed(n, 16, (i) => post(endpoint, { channel: CHANNEL, data: { i, pad } })),
      'HTTP x100': (n) => windowed(Math.ceil(n / 100), 2, (k) => post(endpoint, Array.from(
        { length: Math.min(100, n - (k - 1) * 100) },
        (_, j) => ({ channel: CHANNEL, data: { i: (k - 1) * 100 + j + 1, pad } }),
      ))),
    };

    // Warm-up: every path once, a few hundred messages, not measured.
    for (const path of PATHS) {
      await run[path](200);
      await waitFor(() => peers.every((p) => p.delivered.length >= 200), { timeout: 30_000, what: `warm-up of ${path}` });
      for (const p of peers) p.delivered.length = 0;
    }

    const background = await backgroundLoad(1000);
    const samples = new Map<Path, Sample[]>(PATHS.map((p) => [p, []]));
    for (let round = 0; round < rounds; round++) {
      await waitForQuiet();
      const order = PATHS.map((_, k) => PATHS[(k + round) % PATHS.length] as Path);
      for (const path of order) {
        for (const p of peers) p.delivered.length = 0;
        const cpu0 = await redisCpu(redis.url);
        const t0 = performance.now();
        await run[path](messages);
        const accepted = performance.now() - t0;
        await waitFor(() => peers.every((p) => p.delivered.length >= messages), { timeout: 120_000, what: `${path}: ${messages} deliveries`, every: 2 });
        const delivered = performance.now() - t0;
        const cpu1 = await redisCpu(redis.url);
        for (const p of peers) {
          const got = p.delivered.map((m) => (m['data'] as { i: number }).i);
          // Concurrent HTTP requests may arrive in any order: there, each once is what holds.
          const inOrder = !path.startsWith('HTTP');
          const seen = inOrder ? got : [...got].sort((x, y) => x - y);
          if (seen.length !== messages || seen.some((i, k) => i !== k + 1)) {
            throw new Error(`${path}: a subscriber got ${got.length} messages, not 1..${messages}${inOrder ? ' in order' : ' each once'}`);
          }
        }
        samples.get(path)?.push({
          acceptedPerSecond: messages / (accepted / 1000),
          deliveredPerSecond: messages / (delivered / 1000),
          redisCpuUsPerMessage: ((cpu1 - cpu0) * 1e6) / messages,
        });
        console.log(`round ${round + 1} ${path}: accepted ${fmt(messages / (accepted / 1000), 0)}/s, delivered ${fmt(messages / (delivered / 1000), 0)}/s`);
      }
    }

    const results: Record<string, Sample & { deliveredVsCometdPublish: number | undefined }> = {};
    const base = median((samples.get('cometd.publish') ?? []).map((s) => s.deliveredPerSecond));
    for (const path of PATHS) {
      const list = samples.get(path) ?? [];
      const delivered = median(list.map((s) => s.deliveredPerSecond));
      results[path] = {
        acceptedPerSecond: median(list.map((s) => s.acceptedPerSecond)),
        deliveredPerSecond: delivered,
        redisCpuUsPerMessage: median(list.map((s) => s.redisCpuUsPerMessage)),
        deliveredVsCometdPublish: ratio(delivered, base),
      };
    }
    writeResults(fileURLToPath(new URL('../../bench/results/', import.meta.url)), 'publish-paths-latest.json', 'publish-paths', started, background, {
      messages, rounds, subscribers, window, payload: pad.length, results,
    });
    console.log('\n| path | accepted/s | delivered/s | Redis CPU µs/message | delivered ÷ cometd.publish |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const path of PATHS) {
      const r = results[path];
      console.log(`| ${path} | ${fmt(r?.acceptedPerSecond, 0)} | ${fmt(r?.deliveredPerSecond, 0)} | ${fmt(r?.redisCpuUsPerMessage, 1)} | ${fmt(r?.deliveredVsCometdPublish, 2)} |`);
    }
  } finally {
    stopped = true;
    for (const p of peers) p.close();
    await publisher?.close();
    agent.destroy();
    await killAllNodes();
    await redis.stop();
  }
}

runMain(main, RUN_LIMIT_MS);
