/**
 * Rooms benchmark (issue #23): many channels with few subscribers each,
 * express-bayeux against Socket.IO 4.8, in memory and on Redis, in one run.
 *
 * Scenarios (C channels × S WebSocket subscribers each):
 *   2000x1    2,000 channels, one subscriber each
 *   500x4     500 rooms, four subscribers each
 *   15000x1   15,000 channels, one each (mainly for RSS per subscriber)
 *
 * Servers, each in a child process of its own (bench/server.ts):
 *   bayeux        express-bayeux, MemoryEngine, in Express 5
 *   sio           Socket.IO 4.8 on a bare http server; clients join a room
 *                 by an event (server-side `socket.join`), a message is one
 *                 `io.to(room).emit` (bench/sio.ts)
 *   bayeux-redis  express-bayeux on a RedisEngine, one node
 *   bayeux-redis-shard
 *                 the same with the engine's `channelLogs: 'shard'`: every
 *                 channel's publishes of a tick in one entry of one shared
 *                 stream (wildcard patterns keep their own logs)
 *   sio-redis     Socket.IO with @socket.io/redis-adapter, one node
 * The Redis servers each get a fresh throw-away redis-server (no persistence).
 *
 * Load: one publisher (in this process) sends batches of 10 messages,
 * round-robin over the channels, one batch at a time, each waited for
 * until the server answered it (Bayeux: the publish replies; Socket.IO: the
 * event's acknowledgement, sent after the server's 10 emits). Each message
 * carries its send time; the subscribers, in load-client processes
 * (bench/client.ts; Socket.IO subscribers speak Engine.IO over bare `ws`,
 * bench/sio-wire.ts), record send → receive latency.
 *
 * Reported per scenario and server, medians over the rounds (each round
 * runs every scenario on every server, the server order alternating):
 * publishes/s (messages), server CPU µs per publish (its own
 * process.cpuUsage()), Redis CPU µs per publish (`INFO cpu` deltas),
 * p50/p99 latency, RSS and heap per subscriber (the server's after GC with
 * the subscribers, minus before), Redis memory per subscriber (used_memory
 * with them minus before), and ratios express-bayeux ÷ Socket.IO
 * (memory ÷ plain; Redis ÷ redis-adapter, once for bayeux-redis and once
 * for bayeux-redis-shard, both against sio-redis). Written to
 * bench/results/rooms-latest.json (and a dated copy); a Markdown table is
 * printed.
 *
 *   npm run bench:rooms
 *   npm run bench:rooms -- --scenarios=2000x1 --servers=bayeux,sio --rounds=1 --seconds=3
 *   npm run bench:rooms -- --servers=bayeux-redis,bayeux-redis-shard,sio-redis
 *
 * Options (flag or environment variable):
 *   --scenarios=2000x1,500x4,15000x1   BENCH_SCENARIOS  channels x subscribers per channel
 *   --servers=bayeux,sio,bayeux-redis,bayeux-redis-shard,sio-redis   BENCH_SERVERS
 *   --rounds=2               BENCH_ROUNDS     medians over this many rounds
 *   --seconds=8              BENCH_SECONDS    measured window per server and scenario
 *   --warmup=2               BENCH_WARMUP     seconds of publishing before the window
 *   --clients=2              BENCH_CLIENTS    load-client processes
 *   --payload=64             BENCH_PAYLOAD    bytes of padding per message
 *   --publisher=websocket    BENCH_PUBLISHER  express-bayeux publisher transport (or long-polling)
 *   --quiet-wait=60          BENCH_QUIET_WAIT seconds to wait for a quiet machine before each server
 *   --profile=DIR            BENCH_PROFILE    a CPU profile of each server's measured window only, into
 *                                             DIR/<server>-<scenario>-r<round>.cpuprofile, summarized at the
 *                                             end (the profiler's cost is in that run's figures)
 *   --snapshots=DIR          BENCH_SNAPSHOTS  heap snapshots of each server without and with its subscribers
 *                                             (after the heap figures are read), first round only:
 *                                             DIR/<server>-<scenario>-without.heapsnapshot and -with
 */
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  mergeHistograms, numberOption as number, option, quantile, runMain, sleep, usesRedis, type ServerKind, type TransportKind,
  writeResults,
} from './common.js';
import { CONTENDED_CORES, backgroundLoad, fmt, label, machineBusy, median, openFileLimit, ratio, waitForQuiet } from './machine.js';
import { LoadClients, ServerProcess } from './procs.js';
import { BATCH } from './publisher.js';
import { commandStats, redisCpu, redisMemory, topCommands } from './redis-cpu.js';
import { openRoomsPublisher, type RoomsPublisher } from './rooms-publisher.js';
import { summarizeProfile } from './profile.js';
import { findRedisServer, startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';

/** The whole run may not take longer than this. */
const RUN_LIMIT_MS = 60 * 60_000;

type RoomsServer = 'bayeux' | 'sio' | 'bayeux-redis' | 'bayeux-redis-shard' | 'sio-redis';
const SERVERS: readonly RoomsServer[] = ['bayeux', 'sio', 'bayeux-redis', 'bayeux-redis-shard', 'sio-redis'];

interface Scenario {
  name: string;
  channels: number;
  perChannel: number;
}

interface Config {
  scenarios: Scenario[];
  servers: RoomsServer[];
  rounds: number;
  seconds: number;
  warmup: number;
  clients: number;
  payload: number;
  publisher: TransportKind;
  profile: string | undefined;
  snapshots: string | undefined;
}

function readConfig(): Config {
  const scenarios = (option('scenarios') ?? '2000x1,500x4,15000x1').split(',').map((s) => s.trim()).filter(Boolean).map((name) => {
    const m = /^(\d+)x(\d+)$/.exec(name);
    const channels = Number(m?.[1]);
    const perChannel = Number(m?.[2]);
    if (!m || channels < 1 || perChannel < 1 || channels * perChannel > 30_000) {
      throw new TypeError(`scenarios: ${name} is not CHANNELSxSUBSCRIBERS (at most 30,000 subscribers)`);
    }
    return { name, channels, perChannel };
  });
  const servers = (option('servers') ?? SERVERS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of servers) if (!SERVERS.includes(s as RoomsServer)) throw new TypeError(`servers: ${s} is not one of ${SERVERS.join(', ')}`);
  const publisher = option('publisher') ?? 'websocket';
  if (publisher !== 'websocket' && publisher !== 'long-polling') throw new TypeError('publisher: websocket or long-polling');
  return {
    scenarios,
    servers: servers as RoomsServer[],
    rounds: Math.floor(number('rounds', 2, 1, 9)),
    seconds: number('seconds', 8, 1, 600),
    warmup: number('warmup', 2, 0, 60),
    clients: Math.floor(number('clients', 2, 1, 16)),
    payload: Math.floor(number('payload', 64, 0, 100_000)),
    publisher,
    profile: option('profile'),
    snapshots: option('snapshots'),
  };
}

// ---------------------------------------------------------------- one server, one scenario

interface Measured {
  scenario: string;
  server: RoomsServer;
  round: number;
  subscribers: number;
  /** Messages the server answered in the window, per second. */
  publishesPerSec: number;
  /** Deliveries of the window's batches received / expected. */
  delivered: number;
  deliveriesPerSec: number;
  /** Server CPU µs per published message. */
  nodeUsPerPublish: number;
  /** redis-server CPU µs per published message (NaN without Redis). */
  redisUsPerPublish: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rssKiBPerSub: number;
  heapKiBPerSub: number;
  /** Redis used_memory with the subscribers minus before, per subscriber (NaN without Redis). */
  redisKiBPerSub: number;
  serverCores: number;
  redisCores: number;
  clientCores: number;
  publisherCores: number;
  /** The machine's busy cores beyond all of the above. */
  otherCores: number;
  contended: boolean;
  clientErrors: number;
  /** Redis's busiest commands in the window (scripts' inner commands included): calls and µs per published message. */
  redisCommands: Record<string, { calls: number; usec: number }>;
}

async function one(sc: Scenario, kind: RoomsServer, round: number, config: Config): Promise<Measured> {
  const subscribers = sc.channels * sc.perChannel;
  await waitForQuiet();
  let redis: RedisServer | undefined;
  let server: ServerProcess | undefined;
  let clients: LoadClients | undefined;
  let publisher: RoomsPublisher | undefined;
  try {
    // A fresh redis-server for every Redis rig: nothing left over from the last one.
    if (usesRedis(kind)) redis = await startRedisServer();
    server = await ServerProcess.start(kind, undefined, '', redis ? [redis.url] : []);
    const transport: TransportKind = kind === 'sio' || kind === 'sio-redis' ? 'websocket' : config.publisher;
    publisher = await openRoomsPublisher(kind, transport, server.port, server.path, sc.channels, config.payload);
    await publisher.batch(); // warm the publish path with nobody subscribed
    await sleep(300);
    const before = await server.heap();
    const redisBefore = await redisMemory(redis?.url);
    const snapshot = config.snapshots && round === 0 ? `${config.snapshots}/${kind}-${sc.name}` : undefined;
    if (snapshot) await server.snapshot(`${snapshot}-without.heapsnapshot`);
    clients = await LoadClients.start(
      config.clients,
      {
        server: kind,
        transport: 'websocket',
        port: server.port,
        path: server.path,
        subscribers,
        channels: sc.channels,
        setupTimeoutMs: Math.max(60_000, subscribers * 20),
        lifetimeMs: RUN_LIMIT_MS,
      },
      () => undefined,
    );
    if (clients.failed > 0) console.error(`  ${clients.failed} of ${subscribers} subscribers failed to set up`);
    await sleep(500);
    const after = await server.heap();
    const redisAfter = await redisMemory(redis?.url);
    if (snapshot) {
      await server.snapshot(`${snapshot}-with.heapsnapshot`);
      console.log(`  heap snapshots: ${snapshot}-without.heapsnapshot, ${snapshot}-with.heapsnapshot (${clients.subscribers} subscribers)`);
    }

    // Closed loop: the next batch when the last is answered. The window
    // opens and closes with the loop parked between batches, so the load
    // clients know the window's first batch before it is sent, and no batch
    // is half in the window.
    let running = true;
    const pub = publisher;
    let gate: Promise<void> | undefined;
    let reopen: () => void = () => undefined;
    let parked: (() => void) | undefined;
    const loop = (async () => {
      while (running) {
        if (gate) {
          parked?.();
          await gate;
          continue;
        }
        await pub.batch();
      }
    })();
    let loopError: Error | undefined;
    /** Stop the round with the publish loop's failure, if it failed. */
    const checkLoop = (): void => {
      if (loopError) throw loopError;
    };
    const failed = loop.catch((err: unknown) => {
      loopError = err instanceof Error ? err : new Error(String(err));
      running = false;
    });
    /** Park the loop; resolves when it is parked (or has failed). */
    const park = (): Promise<void> => {
      gate = new Promise((resolve) => (reopen = resolve));
      return Promise.race([new Promise<void>((resolve) => (parked = resolve)), failed]);
    };
    const unpark = (): void => {
      gate = undefined;
      parked = undefined;
      reopen();
    };

    await sleep(config.warmup * 1000);
    await park();
    checkLoop();
    const fromSeq = pub.sent + 1;
    clients.start(fromSeq);
    if (config.profile) await server.profileStart();
    const cpu0 = await server.cpu();
    const redis0 = redis ? await redisCpu(redis.url) : NaN;
    const stats0 = await commandStats(redis?.url);
    const self0 = process.cpuUsage();
    const machine0 = machineBusy();
    const acked0 = pub.acked;
    const t0 = performance.now();
    unpark();
    await sleep(config.seconds * 1000);
    await park();
    checkLoop();
    const t1 = performance.now();
    const acked1 = pub.acked;
    const toSeq = pub.sent;
    clients.stop(toSeq);
    const machine1 = machineBusy();
    const self = process.cpuUsage(self0);
    const cpu1 = await server.cpu();
    const redis1 = redis ? await redisCpu(redis.url) : NaN;
    const stats1 = await commandStats(redis?.url);
    if (config.profile) await server.profileStop(profileFile(config.profile, kind, sc, round));
    running = false;
    unpark();
    await failed;
    // Let the window's last batches arrive, then read the reports.
    await sleep(500);
    const reports = await clients.report();

    const seconds = (t1 - t0) / 1000;
    const published = (acked1 - acked0) * BATCH;
    const publishesPerSec = published / seconds;
    const hist = mergeHistograms(reports.map((r) => r.hist));
    const received = reports.reduce((a, r) => a + r.received, 0);
    const inWindow = reports.reduce((a, r) => a + r.receivedInWindow, 0);
    const expected = (toSeq - fromSeq + 1) * BATCH * sc.perChannel * (clients.subscribers / subscribers);
    // The publisher was parked while the CPU times were read: all of the window's work is between them.
    const serverUs = cpu1.cpu - cpu0.cpu;
    const redisUs = redis ? (redis1 - redis0) * 1e6 : NaN;
    const serverCores = serverUs / 1e6 / seconds;
    const redisCores = redis ? redisUs / 1e6 / seconds : 0;
    const clientCores = reports.reduce((a, r) => a + r.cpuUser + r.cpuSystem, 0) / 1e6 / seconds;
    const publisherCores = (self.user + self.system) / 1e6 / seconds;
    const otherCores = (machine1 - machine0) / seconds - serverCores - redisCores - clientCores - publisherCores;
    return {
      scenario: sc.name,
      server: kind,
      round,
      subscribers: clients.subscribers,
      publishesPerSec,
      delivered: expected > 0 ? received / expected : NaN,
      deliveriesPerSec: inWindow / seconds,
      nodeUsPerPublish: published > 0 ? serverUs / published : NaN,
      redisUsPerPublish: published > 0 ? redisUs / published : NaN,
      p50Ms: quantile(hist, 0.5) / 1000,
      p99Ms: quantile(hist, 0.99) / 1000,
      maxMs: hist.max / 1000,
      rssKiBPerSub: (after.rss - before.rss) / 1024 / clients.subscribers,
      heapKiBPerSub: (after.heapUsed - before.heapUsed) / 1024 / clients.subscribers,
      redisKiBPerSub: (redisAfter - redisBefore) / 1024 / clients.subscribers,
      serverCores,
      redisCores,
      clientCores,
      publisherCores,
      otherCores,
      contended: otherCores > CONTENDED_CORES,
      clientErrors: reports.reduce((a, r) => a + r.errors, 0),
      redisCommands: perPublish(topCommands(stats0, stats1, 8), published),
    };
  } catch (err) {
    server?.kill();
    throw err;
  } finally {
    publisher?.close();
    await clients?.exit();
    await server?.stop();
    await redis?.stop();
  }
}

function perPublish(commands: Record<string, { calls: number; usec: number }>, published: number): Record<string, { calls: number; usec: number }> {
  const n = Math.max(1, published);
  return Object.fromEntries(Object.entries(commands).map(([name, v]) => [name, { calls: v.calls / n, usec: v.usec / n }]));
}

function profileFile(dir: string, kind: RoomsServer, sc: Scenario, round: number): string {
  return `${dir}/${kind}-${sc.name}-r${round + 1}.cpuprofile`;
}

function describe(m: Measured): string {
  return (
    `${fmt(m.publishesPerSec, 0)} publishes/s, node ${fmt(m.nodeUsPerPublish, 1)} µs/publish` +
    (Number.isFinite(m.redisUsPerPublish) ? `, redis ${fmt(m.redisUsPerPublish, 1)} µs/publish` : '') +
    `, p50 ${fmt(m.p50Ms, 2)} ms, p99 ${fmt(m.p99Ms, 2)} ms, RSS ${fmt(m.rssKiBPerSub, 2)} KiB/sub, heap ${fmt(m.heapKiBPerSub, 2)} KiB/sub` +
    (Number.isFinite(m.redisKiBPerSub) ? `, Redis ${fmt(m.redisKiBPerSub, 2)} KiB/sub` : '') + '; ' +
    `cores: server ${fmt(m.serverCores, 2)}, redis ${fmt(m.redisCores, 2)}, clients ${fmt(m.clientCores, 2)}, publisher ${fmt(m.publisherCores, 2)}` +
    (m.contended ? ` — CONTENDED: ${fmt(m.otherCores, 2)} cores of other work` : '') +
    (m.delivered < 0.999 ? `; only ${fmt(m.delivered * 100, 1)}% delivered` : '') +
    (m.clientErrors ? `, ${m.clientErrors} client errors` : '') +
    (Object.keys(m.redisCommands).length
      ? '\n    Redis per publish: ' + Object.entries(m.redisCommands).map(([name, v]) => `${name} ${fmt(v.calls, 2)}× ${fmt(v.usec, 1)} µs`).join(', ')
      : '')
  );
}

// ---------------------------------------------------------------- summary

interface Row {
  scenario: string;
  server: RoomsServer;
  rounds: number;
  contendedRounds: number;
  subscribers: number;
  publishesPerSec: number;
  nodeUsPerPublish: number;
  redisUsPerPublish: number;
  p50Ms: number;
  p99Ms: number;
  rssKiBPerSub: number;
  heapKiBPerSub: number;
  redisKiBPerSub: number;
  delivered: number;
}

const METRICS = ['publishesPerSec', 'nodeUsPerPublish', 'redisUsPerPublish', 'p50Ms', 'p99Ms', 'rssKiBPerSub', 'heapKiBPerSub', 'redisKiBPerSub'] as const;
type Metric = (typeof METRICS)[number];

function summarize(all: Measured[], config: Config): Row[] {
  const rows: Row[] = [];
  for (const sc of config.scenarios) {
    for (const server of config.servers) {
      const runs = all.filter((m) => m.scenario === sc.name && m.server === server);
      if (runs.length === 0) continue;
      const row = {
        scenario: sc.name,
        server,
        rounds: runs.length,
        contendedRounds: runs.filter((m) => m.contended).length,
        subscribers: median(runs.map((m) => m.subscribers)),
        delivered: Math.min(...runs.map((m) => m.delivered)),
      } as Row;
      for (const k of METRICS) row[k] = median(runs.map((m) => m[k]));
      rows.push(row);
    }
  }
  return rows;
}

interface Ratios {
  scenario: string;
  /**
   * express-bayeux (memory) ÷ Socket.IO; express-bayeux on Redis ÷ Socket.IO with redis-adapter; and the same
   * with the engine's shard logs ÷ Socket.IO with redis-adapter.
   */
  pair: 'memory' | 'redis' | 'redis-shard';
  values: Partial<Record<Metric, number>>;
}

function ratiosOf(rows: Row[], config: Config): Ratios[] {
  const out: Ratios[] = [];
  for (const sc of config.scenarios) {
    const pairs = [['memory', 'bayeux', 'sio'], ['redis', 'bayeux-redis', 'sio-redis'], ['redis-shard', 'bayeux-redis-shard', 'sio-redis']] as const;
    for (const [pair, b, s] of pairs) {
      const rb = rows.find((r) => r.scenario === sc.name && r.server === b);
      const rs = rows.find((r) => r.scenario === sc.name && r.server === s);
      if (!rb || !rs) continue;
      const values: Partial<Record<Metric, number>> = {};
      for (const k of METRICS) {
        const v = ratio(rb[k], rs[k]);
        if (v !== undefined) values[k] = v;
      }
      out.push({ scenario: sc.name, pair, values });
    }
  }
  return out;
}

const PAIR_NAMES: Record<Ratios['pair'], string> = {
  memory: 'ratio express-bayeux ÷ Socket.IO',
  redis: 'ratio Redis: express-bayeux ÷ redis-adapter',
  'redis-shard': 'ratio Redis (shard logs): express-bayeux ÷ redis-adapter',
};

function printMarkdown(rows: Row[], ratios: Ratios[], config: Config): void {
  const head = ['scenario', 'server', 'publishes/s', 'node CPU µs/publish', 'Redis CPU µs/publish', 'p50 ms', 'p99 ms', 'RSS KiB/sub', 'heap KiB/sub', 'Redis KiB/sub'];
  const cells = (r: Row): string[] => [
    fmt(r.publishesPerSec, 0), fmt(r.nodeUsPerPublish, 1), fmt(r.redisUsPerPublish, 1),
    fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.rssKiBPerSub, 2), fmt(r.heapKiBPerSub, 2), fmt(r.redisKiBPerSub, 2),
  ];
  console.log('');
  console.log('| ' + head.join(' | ') + ' |');
  console.log('| ' + head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ') + ' |');
  for (const sc of config.scenarios) {
    const title = `${fmt(sc.channels, 0)} × ${sc.perChannel}`;
    for (const r of rows.filter((x) => x.scenario === sc.name)) {
      const star = r.contendedRounds > 0 ? ' *' : '';
      const lost = r.delivered < 0.999 ? ` (${fmt(r.delivered * 100, 1)}% delivered)` : '';
      console.log(`| ${title} | ${label(r.server)}${star}${lost} | ${cells(r).join(' | ')} |`);
    }
    for (const q of ratios.filter((x) => x.scenario === sc.name)) {
      const name = PAIR_NAMES[q.pair];
      const v = (k: Metric): string => (q.values[k] === undefined ? '-' : fmt(q.values[k], 2) + '×');
      console.log(`| ${title} | ${name} | ${METRICS.map(v).join(' | ')} |`);
    }
  }
  console.log('');
  console.log(
    `Medians of ${config.rounds} round(s), ${config.seconds} s windows after ${config.warmup} s of warm-up; one publisher, ` +
      `batches of ${BATCH} messages round-robin over the channels, one batch in flight (each waits for the server's answer). ` +
      'publishes/s counts messages; CPU per publish is the server process\'s (and redis-server\'s) CPU over the window ' +
      'divided by the messages published; RSS and heap per subscriber: the server\'s after GC with the subscribers minus before; ' +
      'Redis KiB/sub: redis-server\'s used_memory with them minus before (not in the server\'s RSS). ' +
      `Server, Redis, ${config.clients} load-client processes and the publisher share ${os.cpus().length} cores, nothing pinned. ` +
      'For publishes/s higher is better; for everything else lower.',
  );
  if (rows.some((r) => r.contendedRounds > 0)) {
    console.log('* other work used the CPU during at least one window of this row: its figures are suspect; rerun on a quiet machine.');
  }
}

// ---------------------------------------------------------------- main

const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));

async function main(): Promise<void> {
  const config = readConfig();
  const started = Date.now();
  if (config.profile) mkdirSync(config.profile, { recursive: true });
  if (config.snapshots) mkdirSync(config.snapshots, { recursive: true });
  const biggest = Math.max(...config.scenarios.map((s) => s.channels * s.perChannel));
  const limit = openFileLimit();
  if (Number.isFinite(limit) && limit < biggest + 500) {
    console.log(`warning: open-file limit ${limit} < ${biggest + 500}: raise it (ulimit -n ${2 * (biggest + 500)}) or some subscribers will fail`);
  }
  if (config.servers.some(usesRedis) && !findRedisServer()) {
    console.error('!!! redis-server not found on PATH: the Redis servers are SKIPPED !!!');
    config.servers = config.servers.filter((s) => !usesRedis(s));
  }
  console.log(
    `rooms benchmark: ${config.scenarios.map((s) => s.name).join(', ')} (channels x subscribers each); ` +
      `${config.servers.map((s) => label(s as ServerKind)).join(', ')}; ${config.rounds} round(s); ` +
      `${config.seconds}s windows after ${config.warmup}s warm-up; ${config.clients} load-client processes; ` +
      `express-bayeux publisher over ${config.publisher}; node ${process.version}, ${os.cpus().length} cores`,
  );
  const background = await backgroundLoad();
  if (background > 0.15) console.log(`warning: ${fmt(background, 2)} cores busy before the benchmark started; other work skews the numbers`);

  const all: Measured[] = [];
  for (let round = 0; round < config.rounds; round++) {
    // Alternate the order, so no server always runs first (or on a warmer machine).
    const order = round % 2 ? [...config.servers].reverse() : config.servers;
    for (const sc of config.scenarios) {
      console.log(`round ${round + 1}, ${sc.name} (${fmt(sc.channels, 0)} channels x ${sc.perChannel})`);
      for (const kind of order) {
        const m = await one(sc, kind, round, config);
        console.log(`  ${label(kind)}: ${describe(m)}`);
        all.push(m);
      }
    }
  }
  const rows = summarize(all, config);
  const ratios = ratiosOf(rows, config);
  printMarkdown(rows, ratios, config);

  writeResults(resultsDir, 'rooms-latest.json', 'rooms', started, background, { config, rows, ratios, runs: all });
  if (config.profile) {
    for (const sc of config.scenarios) {
      for (const kind of config.servers) {
        const f = profileFile(config.profile, kind, sc, 0);
        const published = all.find((m) => m.scenario === sc.name && m.server === kind && m.round === 0);
        console.log(`\nprofile ${f} (${label(kind)}, ${sc.name}, measured window)`);
        console.log(summarizeProfile(f, 25, published ? Math.round(published.publishesPerSec * config.seconds) : 0));
      }
    }
  }
}

runMain(main, RUN_LIMIT_MS);
