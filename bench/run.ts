/**
 * Fan-out benchmark: express-bayeux against Faye 1.4, in one run.
 *
 * S subscribers on one channel; one publisher (in this process) sends
 * batches of 10 messages, each with its send time. Each server runs in a
 * child process of its own; subscribers run in load-client processes.
 * For every size and transport, both servers are measured, interleaved:
 *
 *   max:  publish as fast as deliveries keep up, with a bounded number of
 *         batches in flight (not yet received by every subscriber).
 *   rate: a fixed publish rate, the same for both servers. WebSocket: half
 *         the slower server's max. Long-polling: 20,000 deliveries/s (2,000
 *         responses/s): a long-poll at max throughput carries many batches
 *         per response, at a steady rate one, so a fraction of its max says
 *         little about what a server sustains at a steady rate.
 *
 * Reported: deliveries/s, p50/p99 latency (send → receive), server CPU
 * seconds per 100k deliveries (the server's own process.cpuUsage()), heap
 * KiB per subscriber (heapUsed after GC with subscribers, minus before),
 * and ratios to Faye. Numbers go to bench/results/latest.json.
 *
 * Then the long-polling scenarios of issue 10 (bench/scenarios.ts): a
 * burst of 200 messages to 500 and 2,000 subscribers, and 10,000 held
 * connects (heap per held connect, one publish to all), medians of three
 * interleaved rounds; and, on request, heap per WebSocket subscriber.
 *
 * Options (flag or environment variable):
 *   --scenarios=fanout,burst,held   BENCH_SCENARIOS (also: wsheap)
 *   --burst-sizes=500,2000   BENCH_BURST_SIZES
 *   --held=10000             BENCH_HELD      held connects
 *   --held-clients=2         BENCH_HELD_CLIENTS load-client processes for them
 *   --ws-size=2000           BENCH_WS_SIZE   WebSocket subscribers (wsheap)
 *   --rounds=3               BENCH_ROUNDS    rounds of burst/held/wsheap
 *   --snapshots=DIR          BENCH_SNAPSHOTS heap snapshots without/with subscribers, first round
 *                                            (compare: node dist/bench/heapsnapshot.js a b N)
 *   --profile-dir=DIR        with --profile and a burst/held scenario: one round, a CPU profile
 *                                            of each server's measured burst or broadcast only,
 *                                            written here (default /tmp/bench-profiles)
 *   --sizes=500,2000         BENCH_SIZES     (10000: the 10,000-subscriber WebSocket row; the open-file
 *                                            limit must hold a socket per subscriber in the server)
 *   --transports=websocket,long-polling   BENCH_TRANSPORTS
 *   --servers=bayeux,faye    BENCH_SERVERS   (also bayeux-http: no Express in front, a diagnostic; ws: the
 *                                            floor, a bare `ws` server writing the same frames to every
 *                                            subscriber, bench/ws-floor.ts; WebSocket only; bayeux-redis:
 *                                            a RedisEngine on a throw-away redis-server, burst, held and
 *                                            wsheap only; bayeux-redis-shard: the same with
 *                                            channelLogs: 'shard')
 *   --modes=max,rate         BENCH_MODES
 *   --seconds=8              BENCH_SECONDS   measured window per mode
 *   --warmup=2               BENCH_WARMUP    seconds before each window
 *   --clients=2              BENCH_CLIENTS   load-client processes
 *   --quiet-wait=60          BENCH_QUIET_WAIT seconds to wait for a quiet machine before each server
 *                                            (0: don't; for smoke runs on a busy machine)
 *   --rate=N                 BENCH_RATE      fixed deliveries/s, websocket (default: fraction × slower max)
 *   --rate-fraction=0.5      BENCH_RATE_FRACTION
 *   --lp-rate=20000          BENCH_LP_RATE   fixed deliveries/s, long-polling
 *   --window=100000          BENCH_WINDOW    deliveries in flight in max mode
 *   --payload=64             BENCH_PAYLOAD   bytes of padding per message
 *   --profile                BENCH_PROFILE=1 express-bayeux only, with --cpu-prof
 *                                            (default websocket, S=2000, max mode)
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  mergeHistograms, numberOption as number, option, quantile, runMain, sleep,
  type HistogramData, type ServerKind, type TransportKind,
  writeResults,
} from './common.js';
import { CONTENDED_CORES, backgroundLoad, fmt, label, machineBusy, openFileLimit, ratio, waitForQuiet } from './machine.js';
import { LoadClients, ServerProcess, type ClientReport } from './procs.js';
import { summarizeProfile } from './profile.js';
import { BATCH, Publisher } from './publisher.js';
import { printSummaries, runScenario, type Measured, type ScenarioConfig, type ScenarioName, type Summary } from './scenarios.js';

/** A batch not received by everyone this long after it was sent no longer holds the window. */
const STALL_MS = 3000;
/** The whole run may not take longer than this. */
const RUN_LIMIT_MS = 20 * 60_000;

// ---------------------------------------------------------------- options

type Mode = 'max' | 'rate';

interface Config {
  sizes: number[];
  transports: TransportKind[];
  servers: ServerKind[];
  modes: Mode[];
  seconds: number;
  warmup: number;
  clients: number;
  /** WebSocket fixed rate, deliveries/s; undefined: rateFraction × the slower server's max. */
  rate: number | undefined;
  rateFraction: number;
  /** Long-polling fixed rate, deliveries/s. */
  lpRate: number;
  window: number;
  payload: number;
  profile: boolean;
}

function list<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const raw = option(name);
  if (raw === undefined) return [...fallback];
  const values = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const v of values) if (!allowed.includes(v as T)) throw new TypeError(`${name}: ${v} is not one of ${allowed.join(', ')}`);
  return values as T[];
}

function readConfig(): Config {
  const profile = option('profile') !== undefined && option('profile') !== '0';
  const sizes = (option('sizes') ?? (profile ? '2000' : '500,2000')).split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > 20_000) throw new TypeError(`sizes: ${s} is not an integer in [1, 20000]`);
    return n;
  });
  const rate = option('rate');
  return {
    sizes,
    transports: list('transports', ['websocket', 'long-polling'] as const, profile ? ['websocket'] : ['websocket', 'long-polling']),
    servers: profile ? ['bayeux'] : list('servers', ['bayeux', 'faye', 'bayeux-http', 'ws', 'bayeux-redis', 'bayeux-redis-shard'] as const, ['bayeux', 'faye']),
    modes: list('modes', ['max', 'rate'] as const, profile ? ['max'] : ['max', 'rate']),
    seconds: number('seconds', 8, 1, 600),
    warmup: number('warmup', 2, 0, 60),
    clients: number('clients', 2, 1, 16),
    rate: rate === undefined ? undefined : number('rate', 0, 1, 1e8),
    rateFraction: number('rate-fraction', 0.5, 0.01, 1),
    lpRate: number('lp-rate', 20_000, 1, 1e8),
    window: number('window', 100_000, 10, 1e7),
    payload: number('payload', 64, 0, 100_000),
    profile,
  };
}

// ---------------------------------------------------------------- results

interface WindowResult {
  /** Deliveries received in the window, per second. */
  deliveriesPerSec: number;
  /** Publish rate asked for (rate mode), deliveries/s. */
  targetPerSec?: number;
  /** Deliveries received / deliveries expected from the batches sent in the window. */
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Server CPU seconds per 100k deliveries. */
  cpuPer100k: number;
  /** Server CPU use in the window, in cores. */
  serverCores: number;
  /** Load-client CPU use in the window, in cores (all client processes). */
  clientCores: number;
  /** This process (the publisher) in the window, in cores. */
  publisherCores: number;
  /** The whole machine's busy time in the window, in cores (processes plus kernel). */
  machineCores: number;
  /** machineCores minus server, clients and publisher: the kernel's share of loopback, and anything else running. */
  otherCores: number;
  /** otherCores was high: something else ran during the window; the numbers are suspect. */
  contended: boolean;
  stalls: number;
  clientErrors: number;
}

interface Result {
  server: ServerKind;
  transport: TransportKind;
  size: number;
  subscribers: number;
  heapKiBPerSub: number;
  rssKiBPerSub: number;
  max?: WindowResult;
  rate?: WindowResult;
}


// ---------------------------------------------------------------- one server, set up

interface Rig {
  server: ServerProcess;
  clients: LoadClients;
  publisher: Publisher;
  heapKiBPerSub: number;
  rssKiBPerSub: number;
  /** Batches not yet received by every load-client process. */
  inflight: Map<number, { sentAt: number; done: number }>;
  onComplete: (() => void) | undefined;
}

async function rigUp(kind: ServerKind, transport: TransportKind, size: number, config: Config, profileDir?: string): Promise<Rig> {
  await waitForQuiet();
  const server = await ServerProcess.start(kind, profileDir);
  try {
    const publisher = await Publisher.open({ transport, port: server.port, path: server.path }, config.payload);
    publisher.batch(); // warm the publish path with nobody subscribed
    await sleep(200);
    const before = await server.heap();
    const inflight: Rig['inflight'] = new Map();
    const rig: Partial<Rig> & { inflight: Rig['inflight'] } = { inflight, onComplete: undefined };
    const clients = await LoadClients.start(
      config.clients,
      {
        server: kind,
        transport,
        port: server.port,
        path: server.path,
        subscribers: size,
        // 10,000 WebSocket subscribers take longer than a minute to set up on a busy 2-core machine.
        setupTimeoutMs: Math.max(60_000, size * 20),
        lifetimeMs: 10 * 60_000,
      },
      (seq) => {
        const entry = inflight.get(seq);
        if (!entry) return;
        if (++entry.done >= clients.count) {
          inflight.delete(seq);
          rig.onComplete?.();
        }
      },
    );
    if (clients.failed > 0) console.error(`  ${clients.failed} of ${size} subscribers failed to set up`);
    await sleep(500);
    const after = await server.heap();
    return Object.assign(rig, {
      server,
      clients,
      publisher,
      heapKiBPerSub: (after.heapUsed - before.heapUsed) / 1024 / clients.subscribers,
      rssKiBPerSub: (after.rss - before.rss) / 1024 / clients.subscribers,
    }) as Rig;
  } catch (err) {
    server.kill();
    throw err;
  }
}

async function rigDown(rig: Rig): Promise<void> {
  rig.publisher.close();
  await rig.clients.exit();
  await rig.server.stop();
}

// ---------------------------------------------------------------- measuring

/** Publish until `stop()`: as fast as the window allows, or at a fixed rate. */
function drive(rig: Rig, size: number, mode: Mode, config: Config, rate: number): { stop(): void; stalls(): number } {
  let running = true;
  let stalls = 0;
  const timers: NodeJS.Timeout[] = [];
  const send = (): void => {
    const seq = rig.publisher.batch();
    rig.inflight.set(seq, { sentAt: Date.now(), done: 0 });
  };
  if (mode === 'max') {
    const window = Math.max(2, Math.ceil(config.window / (BATCH * size)));
    const pump = (): void => {
      // Bounded per call; completions call it again.
      for (let n = 0; running && rig.inflight.size < window && n < window; n++) send();
    };
    rig.onComplete = pump;
    timers.push(
      setInterval(() => {
        const now = Date.now();
        for (const [seq, entry] of rig.inflight) {
          if (now - entry.sentAt < STALL_MS) break;
          rig.inflight.delete(seq);
          stalls++;
        }
        pump();
      }, 250),
    );
    pump();
  } else {
    rig.onComplete = undefined;
    const intervalMs = (1000 * BATCH * size) / rate;
    const started = performance.now();
    let sent = 0;
    const tick = (): void => {
      if (!running) return;
      const due = Math.floor((performance.now() - started) / intervalMs) + 1;
      // Catch up at most a few batches at once if the timer was late.
      for (let n = 0; sent < due && n < 5; n++, sent++) send();
      if (sent < due - 5) sent = due - 5;
      const next = started + sent * intervalMs;
      timers.push(setTimeout(tick, Math.max(0, next - performance.now())));
      if (timers.length > 100) timers.splice(0, 50);
    };
    tick();
    // Forget completed bookkeeping for batches nobody will report (rate mode does not wait).
    timers.push(
      setInterval(() => {
        const now = Date.now();
        for (const [seq, entry] of rig.inflight) {
          if (now - entry.sentAt < STALL_MS) break;
          rig.inflight.delete(seq);
          stalls++;
        }
      }, 250),
    );
  }
  return {
    stop() {
      running = false;
      rig.onComplete = undefined;
      for (const t of timers) {
        clearTimeout(t);
        clearInterval(t);
      }
    },
    stalls: () => stalls,
  };
}

async function measure(rig: Rig, size: number, mode: Mode, config: Config, rate: number): Promise<WindowResult> {
  const driver = drive(rig, size, mode, config, rate);
  await sleep(config.warmup * 1000);
  const stallsBefore = driver.stalls();
  const cpu0 = await rig.server.cpu();
  const self0 = process.cpuUsage();
  const machine0 = machineBusy();
  const fromSeq = rig.publisher.sent + 1;
  rig.clients.start(fromSeq);
  const t0 = performance.now();
  await sleep(config.seconds * 1000);
  const toSeq = rig.publisher.sent;
  rig.clients.stop(toSeq);
  const t1 = performance.now();
  const machine1 = machineBusy();
  const self = process.cpuUsage(self0);
  const cpu1 = await rig.server.cpu();
  driver.stop();
  // Wait for the window's batches to arrive everywhere (bounded), then ask for the reports.
  const drained = (): boolean => ![...rig.inflight.keys()].some((seq) => seq <= toSeq);
  for (let i = 0; i < STALL_MS / 100 && !drained(); i++) await sleep(100);
  const reports: ClientReport[] = await rig.clients.report();
  rig.inflight.clear();
  await sleep(300);

  const seconds = (t1 - t0) / 1000;
  const inWindow = reports.reduce((a, r) => a + r.receivedInWindow, 0);
  const received = reports.reduce((a, r) => a + r.received, 0);
  const hist: HistogramData = mergeHistograms(reports.map((r) => r.hist));
  // The server reads its CPU time when its event loop gets to the request,
  // maybe late under load: its own timestamps give the rate.
  const serverCores = (cpu1.cpu - cpu0.cpu) / (cpu1.at - cpu0.at);
  const clientCpuSec = reports.reduce((a, r) => a + r.cpuUser + r.cpuSystem, 0) / 1e6;
  const expected = (toSeq - fromSeq + 1) * BATCH * rig.clients.subscribers;
  const deliveriesPerSec = inWindow / seconds;
  const otherCores = (machine1 - machine0) / seconds - serverCores - clientCpuSec / seconds - (self.user + self.system) / 1e6 / seconds;
  return {
    deliveriesPerSec,
    ...(mode === 'rate' ? { targetPerSec: rate } : {}),
    delivered: expected > 0 ? received / expected : NaN,
    p50Ms: quantile(hist, 0.5) / 1000,
    p99Ms: quantile(hist, 0.99) / 1000,
    p999Ms: quantile(hist, 0.999) / 1000,
    maxMs: hist.max / 1000,
    cpuPer100k: deliveriesPerSec > 0 ? (serverCores / deliveriesPerSec) * 100_000 : NaN,
    serverCores,
    clientCores: clientCpuSec / seconds,
    publisherCores: (self.user + self.system) / 1e6 / seconds,
    machineCores: (machine1 - machine0) / seconds,
    otherCores,
    contended: otherCores > CONTENDED_CORES,
    stalls: driver.stalls() - stallsBefore,
    clientErrors: reports.reduce((a, r) => a + r.errors, 0),
  };
}

// ---------------------------------------------------------------- one cell: a size and a transport

function describe(w: WindowResult): string {
  return (
    `${fmt(w.deliveriesPerSec, 0)} deliveries/s, p50 ${fmt(w.p50Ms, 2)} ms, p99 ${fmt(w.p99Ms, 2)} ms, ` +
    `cpu ${fmt(w.cpuPer100k, 3)} s/100k; cores: server ${fmt(w.serverCores, 2)}, clients ${fmt(w.clientCores, 2)}, ` +
    `publisher ${fmt(w.publisherCores, 2)}, machine ${fmt(w.machineCores, 2)}` +
    (w.contended ? ` — CONTENDED: ${fmt(w.otherCores, 2)} cores of other work, rerun on a quiet machine` : '') +
    (w.delivered < 0.999 ? `; only ${fmt(w.delivered * 100, 1)}% delivered` : '') +
    (w.stalls ? `, ${w.stalls} stalled batches` : '') +
    (w.clientErrors ? `, ${w.clientErrors} client errors` : '')
  );
}

async function cell(size: number, transport: TransportKind, order: ServerKind[], config: Config, profileDir?: string): Promise<Result[]> {
  const results = new Map<ServerKind, Result>();
  const wantMax = config.modes.includes('max');
  const wantRate = config.modes.includes('rate');
  const rateFor = (): number => {
    if (transport === 'long-polling') return config.lpRate;
    if (config.rate !== undefined) return config.rate;
    const maxes = [...results.values()].map((r) => r.max?.deliveriesPerSec ?? Infinity);
    const slowest = Math.min(...maxes);
    return Number.isFinite(slowest) ? Math.max(100, Math.round(slowest * config.rateFraction)) : 20_000;
  };
  const run = async (kind: ServerKind, modes: Mode[], first: boolean): Promise<void> => {
    const rig = await rigUp(kind, transport, size, config, profileDir);
    try {
      let result = results.get(kind);
      if (!result) {
        result = {
          server: kind,
          transport,
          size,
          subscribers: rig.clients.subscribers,
          heapKiBPerSub: rig.heapKiBPerSub,
          rssKiBPerSub: rig.rssKiBPerSub,
        };
        results.set(kind, result);
      }
      if (first) console.log(`  ${label(kind)}: heap ${fmt(rig.heapKiBPerSub, 2)} KiB/subscriber`);
      for (const mode of modes) {
        const w = await measure(rig, size, mode, config, rateFor());
        result[mode] = w;
        console.log(`  ${label(kind)} ${mode}${mode === 'rate' ? ` @${fmt(rateFor(), 0)}/s` : ''}: ${describe(w)}`);
      }
    } finally {
      await rigDown(rig);
    }
  };

  // Interleaved: every server's max runs before any rate run, since the
  // fixed rate comes from the slower max; the last server keeps its rig
  // for its rate run, the others are set up again.
  // The ws floor speaks WebSocket only.
  if (transport !== 'websocket') order = order.filter((k) => k !== 'ws');
  if (order.length === 0) return [];
  const [last, ...others] = [...order].reverse() as [ServerKind, ...ServerKind[]];
  const firsts = others.reverse();
  if (wantMax) for (const kind of firsts) await run(kind, ['max'], true);
  await run(last, wantMax && wantRate ? ['max', 'rate'] : wantMax ? ['max'] : ['rate'], true);
  if (wantRate) for (const kind of firsts) await run(kind, ['rate'], !wantMax);
  return order.map((k) => results.get(k)).filter((r): r is Result => r !== undefined);
}

// ---------------------------------------------------------------- output

interface Column {
  title: string;
  value: (r: Result) => number | undefined;
  digits: number;
}

const COLUMNS: Column[] = [
  { title: 'max deliv/s', value: (r) => r.max?.deliveriesPerSec, digits: 0 },
  { title: 'max cpu s/100k', value: (r) => r.max?.cpuPer100k, digits: 3 },
  { title: 'rate deliv/s', value: (r) => r.rate?.deliveriesPerSec, digits: 0 },
  { title: 'p50 ms', value: (r) => r.rate?.p50Ms, digits: 2 },
  { title: 'p99 ms', value: (r) => r.rate?.p99Ms, digits: 2 },
  { title: 'cpu s/100k', value: (r) => r.rate?.cpuPer100k, digits: 3 },
  { title: 'heap KiB/sub', value: (r) => r.heapKiBPerSub, digits: 2 },
];

interface Ratios {
  size: number;
  transport: TransportKind;
  maxDeliveries?: number;
  maxCpuPer100k?: number;
  p50?: number;
  p99?: number;
  cpuPer100k?: number;
  heapPerSub?: number;
  targets: Record<string, boolean>;
}

function ratiosFor(rows: Result[]): Ratios | undefined {
  const b = rows.find((r) => r.server === 'bayeux');
  const f = rows.find((r) => r.server === 'faye');
  if (!b || !f) return undefined;
  const r: Ratios = {
    size: b.size,
    transport: b.transport,
    maxDeliveries: ratio(b.max?.deliveriesPerSec, f.max?.deliveriesPerSec),
    maxCpuPer100k: ratio(b.max?.cpuPer100k, f.max?.cpuPer100k),
    p50: ratio(b.rate?.p50Ms, f.rate?.p50Ms),
    p99: ratio(b.rate?.p99Ms, f.rate?.p99Ms),
    cpuPer100k: ratio(b.rate?.cpuPer100k, f.rate?.cpuPer100k),
    heapPerSub: ratio(b.heapKiBPerSub, f.heapKiBPerSub),
    targets: {},
  };
  if (b.transport === 'websocket') {
    if (r.maxDeliveries !== undefined) r.targets['deliveries/s >= 3x'] = r.maxDeliveries >= 3;
    if (r.p99 !== undefined) r.targets['p99 <= 0.5x'] = r.p99 <= 0.5;
    if (r.cpuPer100k !== undefined) r.targets['cpu/delivery <= 0.5x'] = r.cpuPer100k <= 0.5;
  } else if (r.maxDeliveries !== undefined) {
    r.targets['deliveries/s >= 1x'] = r.maxDeliveries >= 1;
  }
  return r;
}

function printTable(results: Result[][], ratios: Array<Ratios | undefined>): void {
  const nameWidth = 24;
  const widths = COLUMNS.map((c) => Math.max(c.title.length, 12));
  const line = (name: string, cells: string[]): string =>
    name.padEnd(nameWidth) + cells.map((c, i) => c.padStart((widths[i] ?? 12) + 2)).join('');
  console.log('');
  console.log(line('', COLUMNS.map((c) => c.title)));
  results.forEach((rows, i) => {
    const first = rows[0];
    if (!first) return;
    console.log(`S=${first.size} ${first.transport}  (${first.subscribers} subscribers)`);
    for (const r of rows) {
      const star = r.max?.contended || r.rate?.contended ? ' *' : '';
      console.log(line('  ' + label(r.server) + star, COLUMNS.map((c) => fmt(c.value(r), c.digits))));
    }
    const b = rows.find((r) => r.server === 'bayeux');
    const f = rows.find((r) => r.server === 'faye');
    if (b && f) {
      console.log(line('  ratio bayeux/faye', COLUMNS.map((c) => {
        const v = ratio(c.value(b), c.value(f));
        return v === undefined ? '-' : fmt(v, 2) + 'x';
      })));
    }
    const w = rows.find((r) => r.server === 'ws');
    if (b && w) {
      console.log(line('  ratio bayeux/ws floor', COLUMNS.map((c) => {
        const v = ratio(c.value(b), c.value(w));
        return v === undefined ? '-' : fmt(v, 2) + 'x';
      })));
    }
    const t = ratios[i]?.targets;
    if (t && Object.keys(t).length) {
      console.log('  targets: ' + Object.entries(t).map(([k, ok]) => `${k} ${ok ? 'met' : 'MISSED'}`).join(', '));
    }
  });
  console.log('');
  console.log('max = publish as fast as all subscribers keep up (bounded window); rate = fixed publish rate, the same for both');
  console.log('servers; p50/p99 and cpu s/100k without "max" are from the rate run. heap = heapUsed after GC, subscribers');
  console.log(`minus none, per subscriber. Server, load clients and publisher share ${os.cpus().length} cores, nothing pinned.`);
  if (results.flat().some((r) => r.max?.contended || r.rate?.contended)) {
    console.log('* other work used the CPU during a window of this row: its numbers are suspect; rerun on a quiet machine.');
  }
}

// ---------------------------------------------------------------- main

async function fanout(config: Config): Promise<void> {
  const started = Date.now();
  const profileDir = config.profile ? resultsDir + 'profiles' : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  console.log(
    `fan-out benchmark: sizes ${config.sizes.join(', ')}; ${config.transports.join(', ')}; ` +
      `${config.servers.map(label).join(' vs ')}; modes ${config.modes.join(', ')}; ` +
      `${config.seconds}s windows after ${config.warmup}s warm-up; ${config.clients} load-client processes; ` +
      `node ${process.version}, ${os.cpus().length} cores`,
  );
  const background = await backgroundLoad();
  if (background > 0.15) {
    console.log(`warning: ${fmt(background, 2)} cores busy before the benchmark started; other work skews the numbers`);
  }
  const all: Result[][] = [];
  let flip = false;
  for (const size of config.sizes) {
    for (const transport of config.transports) {
      // Alternate which server goes first, so neither always runs on a warmer machine.
      const order = flip ? [...config.servers].reverse() : [...config.servers];
      flip = !flip;
      console.log(`S=${size} ${transport}`);
      all.push(await cell(size, transport, order, config, profileDir));
    }
  }
  const ratios = all.map(ratiosFor);
  printTable(all, ratios);

  writeResults(resultsDir, config.profile ? 'profile-run.json' : 'latest.json', config.profile ? 'run-profile' : 'run', started, background, {
    config,
    results: all.flat(),
    ratios: ratios.filter((r) => r !== undefined),
  });

  if (profileDir) {
    const profiles = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).sort();
    const latest = profiles[profiles.length - 1];
    if (latest) {
      console.log(`\nprofile ${profileDir}/${latest}`);
      console.log(summarizeProfile(`${profileDir}/${latest}`, 25));
    }
  }
}


type Scenario = 'fanout' | ScenarioName;

const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));

async function main(): Promise<void> {
  const profiling = option('profile') !== undefined && option('profile') !== '0';
  const scenarios = list<Scenario>('scenarios', ['fanout', 'burst', 'held', 'wsheap'], profiling ? ['fanout'] : ['fanout', 'burst', 'held']);
  mkdirSync(resultsDir, { recursive: true });
  const config = readConfig();
  const limit = openFileLimit();
  if (scenarios.includes('fanout') && Number.isFinite(limit) && limit < Math.max(...config.sizes) + 500) {
    console.log(`warning: open-file limit ${limit} < ${Math.max(...config.sizes) + 500}: raise it (ulimit -n) or some subscribers will fail`);
  }
  const redisKind = config.servers.find((k) => k === 'bayeux-redis' || k === 'bayeux-redis-shard');
  if (scenarios.includes('fanout') && redisKind) throw new TypeError(`servers: ${redisKind} runs in the burst, held and wsheap scenarios only`);
  if (scenarios.includes('fanout')) await fanout(config);
  const wanted = scenarios.filter((s): s is ScenarioName => s !== 'fanout');
  if (wanted.length === 0) return;

  const profileDir = config.profile ? (option('profile-dir') ?? '/tmp/bench-profiles') : undefined;
  // Profiling the scenarios compares both servers' profiles unless --servers says otherwise.
  if (profileDir) config.servers = list('servers', ['bayeux', 'faye', 'bayeux-http'] as const, ['bayeux', 'faye']);
  // The scenarios are long-polling ones: the ws floor has no part in them.
  config.servers = config.servers.filter((k) => k !== 'ws');
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const snapshotDir = option('snapshots');
  if (snapshotDir) mkdirSync(snapshotDir, { recursive: true });
  const sc: ScenarioConfig = {
    servers: config.servers,
    burstSizes: (option('burst-sizes') ?? '500,2000').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n <= 20_000),
    held: number('held', 10_000, 1, 20_000),
    rounds: profileDir ? 1 : number('rounds', 3, 1, 9),
    clients: config.clients,
    heldClients: number('held-clients', 2, 1, 16),
    payload: config.payload,
    ...(profileDir ? { profileDir } : {}),
    ...(snapshotDir ? { snapshotDir } : {}),
  };
  checkFileLimit(sc);
  const started = Date.now();
  const summaries: Summary[] = [];
  const runs: Measured[] = [];
  for (const scenario of wanted) {
    for (const size of scenario === 'burst' ? sc.burstSizes : scenario === 'held' ? [sc.held] : [number('ws-size', 2000, 1, 20_000)]) {
      const r = await runScenario(scenario, size, sc);
      summaries.push(r.summary);
      runs.push(...r.runs);
    }
  }
  printSummaries(summaries);
  const out = {
    date: new Date().toISOString(), node: process.version, cpus: os.cpus().length,
    seconds: (Date.now() - started) / 1000, config: sc, summaries, runs,
  };
  const file = resultsDir + `scenarios-${out.date.replace(/[:.]/g, '-')}${profileDir ? '-profile' : ''}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  if (!profileDir) writeFileSync(resultsDir + 'scenarios-latest.json', JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file}`);
  if (profileDir) {
    const fresh = (f: string): boolean => statSync(`${profileDir}/${f}`).mtimeMs >= started;
    for (const f of readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile') && fresh(f)).sort()) {
      console.log(`\nprofile ${profileDir}/${f}`);
      console.log(summarizeProfile(`${profileDir}/${f}`, 25));
    }
  }
}

/**
 * Each held connect is a socket in the server and one in a load client:
 * say so up front when the file-descriptor limit (inherited by the
 * children) cannot hold them.
 */
function checkFileLimit(sc: ScenarioConfig): void {
  const limit = openFileLimit();
  const need = Math.max(sc.held, ...sc.burstSizes) + 500;
  if (Number.isFinite(limit) && limit < need) {
    console.log(`warning: open-file limit ${limit} < ${need}: raise it (ulimit -n ${need * 2}) or some connects will fail`);
  }
}

runMain(main, RUN_LIMIT_MS);
