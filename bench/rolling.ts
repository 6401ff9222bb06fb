/**
 * Rolling restart on Redis (issue #22): N nodes (child processes,
 * test/helpers/redis-node.ts) on one throw-away `redis-server`, behind a
 * round-robin TCP balancer with no affinity; C package clients with acks
 * (half WebSocket, half long-polling) subscribed to one channel; a
 * publisher at a steady rate through a node that is not draining. Each
 * node in turn is taken out of the balancer (as a failing `/health`
 * would), drained with `close({ drain })`, and replaced by a fresh node.
 *
 * Reported: messages lost and handed twice to the application (both must
 * be 0 with acks), the most sessions a node took on in one second during
 * the roll (handshakes plus first connects: hand-offs arriving), and
 * publish-to-handler latency percentiles before the roll and during it.
 * Written to bench/results/rolling-latest.json.
 *
 *   npx tsc -p . && node scripts/copy-lua.mjs && node dist/bench/rolling.js
 *
 * Options (flag or environment variable):
 *   --clients=1000     BENCH_CLIENTS    package clients
 *   --client-procs=0   BENCH_CLIENT_PROCS child processes the clients are spread over (0: in this process)
 *   --nodes=2          BENCH_NODES
 *   --drain=5000       BENCH_DRAIN      each node's drain window, ms
 *   --rate=20          BENCH_RATE       messages a second
 *   --before=5         BENCH_BEFORE     seconds measured before the roll
 *   --max-interval=10000 BENCH_MAX_INTERVAL the nodes' maxInterval: how long a session outlives its last connect
 *   --recover=0        BENCH_RECOVER    1: the channel keeps history and clients subscribe with { recover: true },
 *                                       so a client whose session expired gets what it missed
 *
 * Losses are split by whether the client's session was lost during the
 * roll (it expired, or a node did not know it, and the client handshook
 * again): a message published while a client has no session is lost by
 * design unless it recovers; a loss in a session that stayed live is a bug.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killAllNodes, NodeProcess } from '../test/helpers/node-process.js';
import { findRedisServer, startRedisServer } from '../test/helpers/redis-server.js';
import { startBalancer } from '../test/helpers/tcp-balancer.js';
import { type HistogramData, mergeHistograms, nowUs, numberOption, quantile, runMain, sleep, writeResults } from './common.js';
import { backgroundLoad, fmt } from './machine.js';
import { CHANNEL, type ClientsReply, type ClientsRequest, type GroupReport, type Phase, RollingClients, type Tick } from './rolling-clients.js';

const CLIENTS = numberOption('clients', 1000, 2, 20_000);
const NODES = numberOption('nodes', 2, 2, 5);
const DRAIN_MS = numberOption('drain', 5000, 100, 600_000);
const RATE = numberOption('rate', 20, 1, 1000);
const BEFORE_S = numberOption('before', 5, 1, 600);
const MAX_INTERVAL = numberOption('max-interval', 10_000, 1000, 600_000);
const RECOVER = numberOption('recover', 0, 0, 1) === 1;
const CLIENT_PROCS = numberOption('client-procs', 0, 0, 16);

/** Some of the subscribers: in this process, or in a child process. */
interface ClientGroup {
  start(url: string, from: number, count: number): Promise<void>;
  phase(phase: Phase): void;
  complete(sent: number, failed: ReadonlySet<number>): Promise<boolean>;
  report(sent: number, failed: ReadonlySet<number>): Promise<GroupReport>;
  stop(): Promise<void>;
}

function localGroup(): ClientGroup {
  const clients = new RollingClients();
  return {
    start: (url, from, count) => clients.start(url, from, count, RECOVER),
    phase: (phase) => (clients.phase = phase),
    complete: async (sent, failed) => clients.complete(sent, failed),
    report: async (sent, failed) => clients.report(sent, failed),
    stop: () => clients.stop(),
  };
}

function childGroup(): ClientGroup {
  const child = fork(fileURLToPath(new URL('./rolling-clients.js', import.meta.url)), ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T extends ClientsReply['type']>(request: ClientsRequest, answer: T, ms: number): Promise<Extract<ClientsReply, { type: T }>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rolling clients: no ${answer} within ${ms} ms`)), ms);
      const listener = (reply: ClientsReply) => {
        if (reply.type !== answer) return;
        clearTimeout(timer);
        child.off('message', listener);
        resolve(reply as Extract<ClientsReply, { type: T }>);
      };
      child.on('message', listener);
      child.send(request);
    });
  return {
    start: async (url, from, count) => void (await ask({ type: 'start', url, from, count, recover: RECOVER }, 'ready', 300_000)),
    phase: (phase) => void child.send({ type: 'phase', phase } satisfies ClientsRequest),
    complete: async (sent, failed) => (await ask({ type: 'complete', sent, failed: [...failed] }, 'complete', 30_000)).complete,
    report: async (sent, failed) => (await ask({ type: 'report', sent, failed: [...failed] }, 'report', 60_000)).report,
    stop: async () => {
      await ask({ type: 'stop' }, 'stopped', 30_000).catch(() => undefined);
      child.kill();
    },
  };
}

async function main(): Promise<void> {
  if (!findRedisServer()) throw new Error('redis-server is not on PATH');
  const started = Date.now();
  const background = await backgroundLoad();
  const redis = await startRedisServer();
  const nodeOptions = {
    redisUrl: redis.url, timeout: 20_000, lifetime: 30 * 60_000, maxInterval: MAX_INTERVAL,
    ...(RECOVER ? { history: `${CHANNEL}:1000:600000` } : {}),
  };
  let nodes = await Promise.all(Array.from({ length: NODES }, (_, i) => NodeProcess.start(`node${i + 1}`, nodeOptions)));
  const retired: NodeProcess[] = [];
  const balancer = await startBalancer(nodes.map((n) => n.port));
  const groups: ClientGroup[] = CLIENT_PROCS === 0 ? [localGroup()] : Array.from({ length: CLIENT_PROCS }, childGroup);
  const setPhase = (phase: Phase) => {
    for (const group of groups) group.phase(phase);
  };
  try {
    console.log(`rolling restart: ${NODES} nodes, ${CLIENTS} clients, ${RATE} msg/s, drain ${DRAIN_MS} ms each, maxInterval ${MAX_INTERVAL} ms${RECOVER ? ', recover' : ''}`);
    const share = Math.ceil(CLIENTS / groups.length);
    await Promise.all(groups.map((group, g) => group.start(`${balancer.origin}/cometd`, g * share, Math.max(0, Math.min(share, CLIENTS - g * share)))));
    console.log(`${CLIENTS} clients subscribed`);

    // The publisher: through the first node not being drained.
    let sent = 0;
    const failed = new Set<number>();
    let publishing = true;
    let draining: NodeProcess | undefined;
    const publisher = (async () => {
      while (publishing) {
        const via = nodes.find((n) => n !== draining && n.alive);
        if (via) {
          const seq = sent++;
          // A failed publish (the node went away under it) would show as lost to everyone: counted apart.
          await via.publish(CHANNEL, { seq, at: nowUs() } satisfies Tick).catch(() => failed.add(seq));
        }
        await sleep(1000 / RATE);
      }
    })();

    setPhase('before');
    await sleep(BEFORE_S * 1000);
    setPhase('during');
    const rollStarted = Date.now();
    for (let i = 0; i < NODES; i++) {
      const old = nodes[i] as NodeProcess;
      draining = old;
      balancer.setBackends(nodes.filter((n) => n !== old).map((n) => n.port));
      await old.drain(DRAIN_MS);
      retired.push(old);
      const fresh = await NodeProcess.start(`node${i + 1}b`, nodeOptions);
      nodes = nodes.map((n) => (n === old ? fresh : n));
      draining = undefined;
      balancer.setBackends(nodes.map((n) => n.port));
      console.log(`${old.name} drained and replaced (${((Date.now() - rollStarted) / 1000).toFixed(1)} s into the roll)`);
    }
    const rollEnded = Date.now();
    await sleep(1000);
    setPhase('after');
    publishing = false;
    await publisher;

    // Everything published must arrive, once.
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !(await Promise.all(groups.map((group) => group.complete(sent, failed)))).every(Boolean)) await sleep(500);
    const reports = await Promise.all(groups.map((group) => group.report(sent, failed)));
    const sum = (field: 'lost' | 'lostInLostSessions' | 'duplicates' | 'sessionsLost' | 'clientsWhoseSessionWasLost' | 'incomplete') =>
      reports.reduce((total, report) => total + report[field], 0);
    const lost = sum('lost');
    const lostInLostSessions = sum('lostInLostSessions');
    const duplicates = sum('duplicates');
    const sessionsLost = sum('sessionsLost');
    const relost = sum('clientsWhoseSessionWasLost');
    const missing = reports.flatMap((report) => report.missing);
    if (missing.length > 0) console.log(`clients missing messages (first few per group): ${missing.join('; ')}`);
    const before: HistogramData = mergeHistograms(reports.map((report) => report.before));
    const during: HistogramData = mergeHistograms(reports.map((report) => report.during));

    // Sessions a node took on per second during the roll: handshakes and first connects (hand-offs arriving).
    let busiest = 0;
    for (const node of [...nodes, ...retired]) {
      const times = node.events
        .filter((e) => (e.event === 'handshake' || e.event === 'connect') && e.at >= rollStarted && e.at <= rollEnded + 5000)
        .map((e) => e.at)
        .sort((a, b) => a - b);
      let from = 0;
      for (let to = 0; to < times.length; to++) {
        while ((times[to] as number) - (times[from] as number) >= 1000) from++;
        busiest = Math.max(busiest, to - from + 1);
      }
    }
    const ms = (h: HistogramData, q: number): number => Math.round(quantile(h, q) / 100) / 10;
    const result = {
      config: { clients: CLIENTS, clientProcs: CLIENT_PROCS, nodes: NODES, drainMs: DRAIN_MS, rate: RATE, beforeSeconds: BEFORE_S, maxInterval: MAX_INTERVAL, recover: RECOVER },
      published: sent,
      failedPublishes: failed.size,
      lost,
      lostInLostSessions,
      lostInLiveSessions: lost - lostInLostSessions,
      clientsWhoseSessionWasLost: relost,
      duplicates,
      sessionsLost,
      rollSeconds: (rollEnded - rollStarted) / 1000,
      busiestNodeSessionsPerSecond: busiest,
      latencyMs: {
        before: { p50: ms(before, 0.5), p99: ms(before, 0.99), max: Math.round(before.max / 1000) },
        during: { p50: ms(during, 0.5), p99: ms(during, 0.99), max: Math.round(during.max / 1000) },
      },
    };
    console.log(`published ${sent} (${failed.size} failed), lost ${lost} (${lostInLostSessions} by the ${relost} clients whose session was lost, ${lost - lostInLostSessions} by clients whose session stayed live), duplicates ${duplicates}, sessions lost (handshook again) ${sessionsLost}`);
    console.log(`busiest node took on ${busiest} sessions in one second during a ${fmt(result.rollSeconds, 1)} s roll`);
    console.log(`latency p50/p99: before ${result.latencyMs.before.p50}/${result.latencyMs.before.p99} ms, during ${result.latencyMs.during.p50}/${result.latencyMs.during.p99} ms`);
    writeResults(fileURLToPath(new URL('../../bench/results/', import.meta.url)), 'rolling-latest.json', 'rolling', started, background, result);
  } finally {
    await Promise.all(groups.map((group) => group.stop()));
    await balancer.close();
    await killAllNodes();
    await redis.stop();
  }
}

runMain(main, 30 * 60_000);
