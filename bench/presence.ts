/**
 * Presence benchmark (issue #21): what presence costs, on the memory
 * engine and on a RedisEngine (one node, a fresh throw-away redis-server
 * per measurement), with presence on against off.
 *
 * Scenarios:
 *   subscribe  N WebSocket sessions (identified users, `ext.user` in the
 *              handshake) subscribe to channels of R rooms (N/R each), 64
 *              subscribes in flight. Modes: off (no `presence`, no
 *              `identify`), on (`presence: ['/bench/p/**']` and `identify`),
 *              ext (on, and every subscribe asks `ext.presence`: a snapshot
 *              in its reply, and the room's notices after). Server CPU µs
 *              per subscribe and per handshake, Redis CPU µs per subscribe,
 *              subscribes/s, heap per subscribe.
 *   notice     W watchers on one room, then J users join it (64 in flight).
 *              Modes: off (no presence; the watchers plain subscribers),
 *              watch (presence on; the watchers subscribed with
 *              `ext.presence`). Until every watcher had all J joins: notice
 *              events delivered/s, server CPU per join and per event
 *              delivered, notice messages per watcher (the batching: one per
 *              100 ms per channel).
 *   burst      K WebSocket subscribers (a load-client process) on another
 *              channel get a steady publish rate (an open-loop publisher in
 *              this process: a batch of 10 every 1/rate s, not waiting for
 *              replies); then B users join one room within about a second
 *              (B/100 subscribes sent every 10 ms, from a second process).
 *              Modes: off, on, ext (every joiner a watcher too: the
 *              2,000 × 2,000 case). The K subscribers' p50/p99 latency
 *              during the burst (from its first join to a second after its
 *              last reply) against a quiet window before it, the server's
 *              RSS and heap (after GC) before and after, notice messages
 *              per watcher.
 *
 * The sessions that join are in a process of their own
 * (bench/presence-load.ts), counting notices without parsing them.
 * Socket.IO has no presence: there is no peer to compare with.
 *
 * Medians over the rounds (modes interleaved, the order alternating).
 * Written to bench/results/presence-latest.json (and a dated copy); the
 * Markdown tables are printed.
 *
 *   npm run bench:presence
 *   npm run bench:presence -- --scenarios=burst --engines=memory --rounds=1
 *
 * Options (flag or environment variable BENCH_<NAME>):
 *   --scenarios=subscribe,notice,burst
 *   --engines=memory,redis
 *   --rounds=2
 *   --sessions=2000 --rooms=200          subscribe: N sessions over R rooms
 *   --watchers=200 --joins=1000          notice: W watchers, J joins
 *   --burst=2000 --burst-seconds=1       burst: B joins spread over this long
 *   --subscribers=200 --rate=10          burst: K latency subscribers, batches of 10 per second
 *   --quiet=3                            burst: seconds of the quiet window
 *   --presence-limit=N                   the server's presenceLimit (default: the option's default, 1,000)
 *   --modes=off,on,ext,watch             only these modes
 *   --quiet-wait=60                      seconds to wait for a quiet machine before each server
 *   --profile=DIR                        a CPU profile of the server over each burst window (first round),
 *                                        DIR/burst-<engine>-<mode>.cpuprofile, summarized at the end
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  mergeHistograms, nowUs, numberOption as number, option, quantile, runMain, SEQ_KEY, sleep, TIME_KEY, writeResults,
  type HistogramData,
} from './common.js';
import { CONTENDED_CORES, backgroundLoad, fmt, machineBusy, median, ratio, waitForQuiet } from './machine.js';
import { LoadClients, ServerProcess, type ClientReport } from './procs.js';
import type { FromLoad, ToLoad } from './presence-load.js';
import { summarizeProfile } from './profile.js';
import { BATCH } from './publisher.js';
import { commandStats, redisCpu, topCommands } from './redis-cpu.js';
import { openSession, type Session, type WireMessage } from './wire.js';
import { findRedisServer, startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';
import { within } from '../test/helpers/within.js';

const RUN_LIMIT_MS = 30 * 60_000;
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

type EngineKind = 'memory' | 'redis';
type Scenario = 'subscribe' | 'notice' | 'burst';
/** off: no presence; on: presence and identify; ext: on, each subscribe with ext.presence; watch: on, the watchers with ext.presence. */
type Mode = 'off' | 'on' | 'ext' | 'watch';

const PRESENCE_PATTERN = '/bench/p/**';
const ROOM = '/bench/p/room';
/** The burst's latency channel: a rooms-benchmark channel, so the load clients subscribe to it (channels: 1). */
const LATENCY_CHANNEL = '/bench/r/0';

const MODES: Record<Scenario, readonly Mode[]> = { subscribe: ['off', 'on', 'ext'], notice: ['off', 'watch'], burst: ['off', 'on', 'ext'] };

interface Config {
  scenarios: Scenario[];
  engines: EngineKind[];
  rounds: number;
  sessions: number;
  rooms: number;
  watchers: number;
  joins: number;
  burst: number;
  burstSeconds: number;
  subscribers: number;
  rate: number;
  quiet: number;
  profile: string | undefined;
  presenceLimit: number | undefined;
  modes: Mode[];
}

function list<T extends string>(name: string, all: readonly T[]): T[] {
  const values = (option(name) ?? all.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const v of values) if (!all.includes(v as T)) throw new TypeError(`${name}: ${v} is not one of ${all.join(', ')}`);
  return values as T[];
}

function readConfig(): Config {
  return {
    scenarios: list<Scenario>('scenarios', ['subscribe', 'notice', 'burst']),
    engines: list<EngineKind>('engines', ['memory', 'redis']),
    rounds: Math.floor(number('rounds', 2, 1, 9)),
    sessions: Math.floor(number('sessions', 2000, 10, 20_000)),
    rooms: Math.floor(number('rooms', 200, 1, 20_000)),
    watchers: Math.floor(number('watchers', 200, 1, 5000)),
    joins: Math.floor(number('joins', 1000, 1, 10_000)),
    burst: Math.floor(number('burst', 2000, 10, 10_000)),
    burstSeconds: number('burst-seconds', 1, 0.1, 30),
    subscribers: Math.floor(number('subscribers', 200, 1, 5000)),
    rate: number('rate', 10, 1, 100),
    quiet: number('quiet', 3, 1, 60),
    profile: option('profile'),
    presenceLimit: option('presence-limit') === undefined ? undefined : Math.floor(number('presence-limit', 1000, 1, 1_000_000)),
    modes: list<Mode>('modes', ['off', 'on', 'ext', 'watch']),
  };
}

// ---------------------------------------------------------------- the session process

type Reply<T extends FromLoad['type']> = Extract<FromLoad, { type: T }>;

class LoadProcess {
  readonly #child: ChildProcess;
  readonly #waiting = new Map<string, Array<(m: FromLoad) => void>>();

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (m: FromLoad) => this.#waiting.get(m.type)?.shift()?.(m));
  }

  static start(): LoadProcess {
    return new LoadProcess(fork(here('./presence-load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }

  #ask<T extends FromLoad['type']>(message: ToLoad, reply: T, ms: number): Promise<Reply<T>> {
    const answer = new Promise<Reply<T>>((resolve) => {
      const queue = this.#waiting.get(reply) ?? [];
      queue.push(resolve as (m: FromLoad) => void);
      this.#waiting.set(reply, queue);
    });
    this.#child.send(message);
    return within(answer, ms, `the presence load process's ${reply}`);
  }

  open(port: number, path: string, n: number, user: string, first = 0): Promise<Reply<'opened'>> {
    return this.#ask({ type: 'open', port, path, n, user, first, concurrency: 64 }, 'opened', 120_000);
  }

  subscribe(m: Omit<Extract<ToLoad, { type: 'subscribe' }>, 'type'>): Promise<Reply<'subscribed'>> {
    return this.#ask({ type: 'subscribe', ...m }, 'subscribed', 120_000);
  }

  reset(): void {
    this.#child.send({ type: 'reset' } satisfies ToLoad);
  }

  counts(): Promise<Reply<'counts'>> {
    return this.#ask({ type: 'counts' }, 'counts', 15_000);
  }

  async exit(): Promise<void> {
    if (this.#child.connected) this.#child.send({ type: 'exit' } satisfies ToLoad);
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#child.kill('SIGKILL');
        resolve();
      }, 5000);
      this.#child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

// ---------------------------------------------------------------- the rig

interface Rig {
  server: ServerProcess;
  redis: RedisServer | undefined;
}

async function rig(engine: EngineKind, presence: boolean, config: Config): Promise<Rig> {
  await waitForQuiet();
  const redis = engine === 'redis' ? await startRedisServer() : undefined;
  try {
    const limit = presence && config.presenceLimit !== undefined ? [`--presence-limit=${config.presenceLimit}`] : [];
    const args = [...(redis ? [redis.url] : []), ...(presence ? [`--presence=${PRESENCE_PATTERN}`] : []), ...limit];
    const server = await ServerProcess.start(engine === 'redis' ? 'bayeux-redis' : 'bayeux', undefined, '', args);
    return { server, redis };
  } catch (err) {
    await redis?.stop();
    throw err;
  }
}

/** Server CPU µs, Redis CPU µs (NaN without), this process's, and the machine's busy seconds, at one moment. */
interface Clock {
  server: number;
  redis: number;
  self: number;
  machine: number;
  at: number;
}

async function clock(r: Rig): Promise<Clock> {
  const server = (await r.server.cpu()).cpu;
  const redis = r.redis ? (await redisCpu(r.redis.url)) * 1e6 : NaN;
  const { user, system } = process.cpuUsage();
  return { server, redis, self: user + system, machine: machineBusy(), at: performance.now() };
}

/** Cores of other work between two clocks, beyond the server, Redis, this process and `ownUs` (µs) of the bench's other processes. */
function otherCores(a: Clock, b: Clock, ownUs: number): number {
  const s = (b.at - a.at) / 1000;
  const ours = (b.server - a.server + (Number.isFinite(b.redis) ? b.redis - a.redis : 0) + b.self - a.self + ownUs) / 1e6;
  return (b.machine - a.machine - ours) / s;
}

async function teardown(r: Rig | undefined, ...others: Array<{ exit(): Promise<void> } | undefined>): Promise<void> {
  for (const o of others) await o?.exit().catch(() => undefined);
  await r?.server.stop();
  await r?.redis?.stop();
}

// ---------------------------------------------------------------- subscribe

interface SubscribeRun {
  engine: EngineKind;
  mode: Mode;
  round: number;
  subscribes: number;
  failed: number;
  subscribesPerSec: number;
  nodeUsPerSubscribe: number;
  redisUsPerSubscribe: number;
  nodeUsPerHandshake: number;
  redisUsPerHandshake: number;
  heapBytesPerSubscribe: number;
  /** Notice messages per session (median), ext mode. */
  noticesPerSession: number;
  otherCores: number;
  contended: boolean;
}

async function subscribeRun(engine: EngineKind, mode: Mode, round: number, config: Config): Promise<SubscribeRun> {
  let r: Rig | undefined;
  let load: LoadProcess | undefined;
  try {
    r = await rig(engine, mode !== 'off', config);
    const { server } = r;
    load = LoadProcess.start();
    const a = await clock(r);
    const opened = await load.open(server.port, server.path, config.sessions, 'u');
    const b = await clock(r);
    const heap0 = await server.heap();
    await sleep(200);
    load.reset();
    const c = await clock(r);
    const loadCpu0 = (await load.counts()).cpu;
    const sub = await load.subscribe({ from: 0, to: opened.sessions, channel: '/bench/p/r', rooms: config.rooms, ext: mode === 'ext', concurrency: 64 });
    // Notices go out at most every 100 ms: let the last ones land.
    await sleep(400);
    const counts = await load.counts();
    const d = await clock(r);
    const heap1 = await server.heap();
    if (sub.failed > 0) console.error(`  ${sub.failed} subscribes failed: ${sub.error}`);
    const other = otherCores(c, d, counts.cpu - loadCpu0);
    return {
      engine, mode, round,
      subscribes: sub.ok,
      failed: sub.failed + opened.failed,
      subscribesPerSec: sub.ok / ((sub.lastAt - sub.firstAt) / 1e6),
      nodeUsPerSubscribe: (d.server - c.server) / sub.ok,
      redisUsPerSubscribe: (d.redis - c.redis) / sub.ok,
      nodeUsPerHandshake: (b.server - a.server) / opened.sessions,
      redisUsPerHandshake: (b.redis - a.redis) / opened.sessions,
      heapBytesPerSubscribe: (heap1.heapUsed - heap0.heapUsed) / sub.ok,
      noticesPerSession: median(counts.messages),
      otherCores: other,
      contended: other > CONTENDED_CORES,
    };
  } finally {
    await teardown(r, load);
  }
}

// ---------------------------------------------------------------- notice

interface NoticeRun {
  engine: EngineKind;
  mode: Mode;
  round: number;
  watchers: number;
  joins: number;
  joinsPerSec: number;
  /** Join events the watchers received / watchers × joins (NaN when off). */
  delivered: number;
  /** Seconds from the first join sent to the last notice received. */
  noticeSeconds: number;
  eventsPerSec: number;
  nodeUsPerJoin: number;
  redisUsPerJoin: number;
  nodeUsPerEvent: number;
  messagesPerWatcher: number;
  eventsPerWatcher: number;
  otherCores: number;
  contended: boolean;
}

async function noticeRun(engine: EngineKind, mode: Mode, round: number, config: Config): Promise<NoticeRun> {
  let r: Rig | undefined;
  let load: LoadProcess | undefined;
  const watch = mode === 'watch';
  try {
    r = await rig(engine, watch, config);
    const { server } = r;
    load = LoadProcess.start();
    const w = await load.open(server.port, server.path, config.watchers, 'w');
    const j = await load.open(server.port, server.path, config.joins, 'u');
    await load.subscribe({ from: 0, to: w.sessions, channel: ROOM, ext: watch, concurrency: 64 });
    await sleep(300);
    load.reset();
    const loadCpu0 = (await load.counts()).cpu;
    const a = await clock(r);
    const t0 = nowUs();
    const sub = await load.subscribe({ from: w.sessions, to: w.sessions + j.sessions, channel: ROOM, ext: false, concurrency: 64 });
    const expected = w.sessions * sub.ok;
    let counts = await load.counts();
    const sum = (xs: number[]): number => xs.reduce((x, y) => x + y, 0);
    if (watch) {
      const until = Date.now() + 15_000;
      while (sum(counts.events.slice(0, w.sessions)) < expected && Date.now() < until) {
        await sleep(50);
        counts = await load.counts();
      }
    }
    await sleep(300);
    counts = await load.counts();
    const b = await clock(r);
    const events = sum(counts.events.slice(0, w.sessions));
    const noticeSeconds = watch && counts.lastEventAt > 0 ? (counts.lastEventAt - t0) / 1e6 : NaN;
    const other = otherCores(a, b, counts.cpu - loadCpu0);
    return {
      engine, mode, round,
      watchers: w.sessions,
      joins: sub.ok,
      joinsPerSec: sub.ok / ((sub.lastAt - sub.firstAt) / 1e6),
      delivered: watch ? events / expected : NaN,
      noticeSeconds,
      eventsPerSec: watch ? events / noticeSeconds : NaN,
      nodeUsPerJoin: (b.server - a.server) / sub.ok,
      redisUsPerJoin: (b.redis - a.redis) / sub.ok,
      nodeUsPerEvent: watch && events > 0 ? (b.server - a.server) / events : NaN,
      messagesPerWatcher: watch ? median(counts.messages.slice(0, w.sessions)) : NaN,
      eventsPerWatcher: watch ? median(counts.events.slice(0, w.sessions)) : NaN,
      otherCores: other,
      contended: other > CONTENDED_CORES,
    };
  } finally {
    await teardown(r, load);
  }
}

// ---------------------------------------------------------------- burst

/** An open-loop publisher: a batch of BATCH timestamped messages every 1/rate s, whatever the server's replies. */
class PacedPublisher {
  readonly #session: Session;
  #timer: NodeJS.Timeout | undefined;
  sent = 0;

  private constructor(session: Session) {
    this.#session = session;
  }

  static async open(port: number, path: string): Promise<PacedPublisher> {
    const session = await openSession({ transport: 'websocket', port, path }, {
      delivery() {},
      error(what) {
        console.error(`publisher: ${what}`);
      },
    });
    await session.handshake();
    void session.connectLoop(() => undefined);
    return new PacedPublisher(session);
  }

  start(rate: number): void {
    const padding = 'x'.repeat(64);
    const clientId = this.#session.clientId;
    this.#timer = setInterval(() => {
      const seq = ++this.sent;
      const messages: WireMessage[] = [];
      for (let i = 0; i < BATCH; i++) {
        messages.push({ channel: LATENCY_CHANNEL, clientId, id: `b${seq}.${i}`, data: { [SEQ_KEY]: seq, [TIME_KEY]: nowUs(), p: padding } });
      }
      this.#session.publish(messages);
    }, 1000 / rate);
  }

  async exit(): Promise<void> {
    clearInterval(this.#timer);
    this.#session.close();
    return Promise.resolve();
  }
}

interface Window {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Deliveries of the window's batches received / expected. */
  delivered: number;
}

function windowOf(reports: ClientReport[], batches: number, subscribers: number): Window {
  const hist: HistogramData = mergeHistograms(reports.map((x) => x.hist));
  const received = reports.reduce((x, y) => x + y.received, 0);
  return {
    p50Ms: quantile(hist, 0.5) / 1000,
    p99Ms: quantile(hist, 0.99) / 1000,
    maxMs: hist.max / 1000,
    delivered: received / (batches * BATCH * subscribers),
  };
}

interface BurstRun {
  engine: EngineKind;
  mode: Mode;
  round: number;
  joins: number;
  failed: number;
  /** Seconds from the first join sent to the last join's reply. */
  joinSeconds: number;
  quiet: Window;
  burst: Window;
  p50Ratio: number;
  p99Ratio: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  heapBeforeMiB: number;
  heapAfterMiB: number;
  /** Server and Redis CPU seconds over the burst window. */
  nodeCpuS: number;
  redisCpuS: number;
  messagesPerWatcher: number;
  eventsPerWatcher: number;
  /**
   * Watchers that learnt of every join: the users in their subscribe's snapshot plus the join events they got
   * afterwards reach the joins (a necessary condition: a join may be in both), per watcher (NaN unless ext).
   */
  complete: number;
  /** Redis: the commands that took the most of its time over the burst window. */
  redisCommands: Record<string, { calls: number; usec: number }>;
  otherCores: number;
  contended: boolean;
}

async function burstRun(engine: EngineKind, mode: Mode, round: number, config: Config): Promise<BurstRun> {
  let r: Rig | undefined;
  let load: LoadProcess | undefined;
  let clients: LoadClients | undefined;
  let publisher: PacedPublisher | undefined;
  try {
    r = await rig(engine, mode !== 'off', config);
    const { server } = r;
    const kind = engine === 'redis' ? 'bayeux-redis' : 'bayeux';
    clients = await LoadClients.start(1, {
      server: kind, transport: 'websocket', port: server.port, path: server.path,
      subscribers: config.subscribers, channels: 1, setupTimeoutMs: 60_000, lifetimeMs: RUN_LIMIT_MS,
    }, () => undefined);
    load = LoadProcess.start();
    const opened = await load.open(server.port, server.path, config.burst, 'u');
    publisher = await PacedPublisher.open(server.port, server.path);
    const heap0 = await server.heap();
    publisher.start(config.rate);
    await sleep(1000);

    // The quiet window.
    let fromSeq = publisher.sent + 1;
    clients.start(fromSeq);
    await sleep(config.quiet * 1000);
    let toSeq = publisher.sent;
    clients.stop(toSeq);
    await sleep(300);
    const quiet = windowOf(await clients.report(), toSeq - fromSeq + 1, clients.subscribers);

    // The burst: B joins over burstSeconds, then a second more.
    load.reset();
    const loadCpu0 = (await load.counts()).cpu;
    const profile = config.profile && round === 0 ? profileFile(config.profile, engine, mode) : undefined;
    if (profile) await server.profileStart();
    const stats0 = await commandStats(r.redis?.url);
    const a = await clock(r);
    fromSeq = publisher.sent + 1;
    clients.start(fromSeq);
    const ticks = Math.max(1, Math.round(config.burstSeconds * 100));
    const sub = await load.subscribe({
      from: 0, to: opened.sessions, channel: ROOM, ext: mode === 'ext', perTick: Math.ceil(opened.sessions / ticks), tickMs: 10,
    });
    await sleep(1000);
    toSeq = publisher.sent;
    clients.stop(toSeq);
    const counts = await load.counts();
    const b = await clock(r);
    const stats1 = await commandStats(r.redis?.url);
    if (profile) await server.profileStop(profile);
    // Wait (bounded) for the window's last messages: a stalled server delivers them late, not never.
    const expected = (toSeq - fromSeq + 1) * BATCH * clients.subscribers;
    let reports = await clients.report();
    for (const until = Date.now() + 30_000; reports.reduce((x, y) => x + y.received, 0) < expected && Date.now() < until; ) {
      await sleep(500);
      reports = await clients.report();
    }
    const burst = windowOf(reports, toSeq - fromSeq + 1, clients.subscribers);
    await publisher.exit();
    publisher = undefined;
    const heap1 = await server.heap();
    if (sub.failed > 0) console.error(`  ${sub.failed} joins failed: ${sub.error}`);
    const clientUs = reports.reduce((x, y) => x + y.cpuUser + y.cpuSystem, 0);
    const other = otherCores(a, b, counts.cpu - loadCpu0 + clientUs);
    const ext = mode === 'ext';
    return {
      engine, mode, round,
      joins: sub.ok,
      failed: sub.failed + opened.failed,
      joinSeconds: (sub.lastAt - sub.firstAt) / 1e6,
      quiet,
      burst,
      p50Ratio: burst.p50Ms / quiet.p50Ms,
      p99Ratio: burst.p99Ms / quiet.p99Ms,
      rssBeforeMiB: heap0.rss / 2 ** 20,
      rssAfterMiB: heap1.rss / 2 ** 20,
      heapBeforeMiB: heap0.heapUsed / 2 ** 20,
      heapAfterMiB: heap1.heapUsed / 2 ** 20,
      nodeCpuS: (b.server - a.server) / 1e6,
      redisCpuS: (b.redis - a.redis) / 1e6,
      messagesPerWatcher: ext ? median(counts.messages) : NaN,
      eventsPerWatcher: ext ? median(counts.events) : NaN,
      redisCommands: topCommands(stats0, stats1),
      complete: ext ? counts.events.filter((n, i) => n + (counts.snapshotUsers[i] ?? NaN) >= sub.ok).length / counts.events.length : NaN,
      otherCores: other,
      contended: other > CONTENDED_CORES,
    };
  } finally {
    await publisher?.exit();
    await teardown(r, load, clients);
  }
}

function profileFile(dir: string, engine: EngineKind, mode: Mode): string {
  return `${dir}/burst-${engine}-${mode}.cpuprofile`;
}

// ---------------------------------------------------------------- summary

type Run = SubscribeRun | NoticeRun | BurstRun;

/** The median of every numeric field (nested windows too) over runs of one engine and mode. */
function medianOf<T extends Run>(runs: T[]): T & { rounds: number; contendedRounds: number } {
  const first = runs[0] as T;
  const out: Record<string, unknown> = { ...first };
  for (const [k, v] of Object.entries(first)) {
    if (typeof v === 'number') out[k] = median(runs.map((x) => (x as unknown as Record<string, number>)[k] as number));
    else if (typeof v === 'object' && v !== null && Object.values(v).every((n) => typeof n === 'number')) {
      const inner: Record<string, number> = {};
      for (const ik of Object.keys(v)) inner[ik] = median(runs.map((x) => ((x as unknown as Record<string, Record<string, number>>)[k] as Record<string, number>)[ik] as number));
      out[k] = inner;
    }
  }
  out['rounds'] = runs.length;
  out['contendedRounds'] = runs.filter((x) => x.contended).length;
  delete out['round'];
  return out as unknown as T & { rounds: number; contendedRounds: number };
}

function rowsOf<T extends Run>(all: T[], config: Config, scenario: Scenario): Array<T & { rounds: number; contendedRounds: number }> {
  const rows: Array<T & { rounds: number; contendedRounds: number }> = [];
  for (const engine of config.engines) {
    for (const mode of MODES[scenario]) {
      const runs = all.filter((x) => x.engine === engine && x.mode === mode);
      if (runs.length) rows.push(medianOf(runs));
    }
  }
  return rows;
}

const star = (row: { contendedRounds: number }): string => (row.contendedRounds > 0 ? ' *' : '');
const x = (v: number | undefined): string => (v === undefined ? '-' : fmt(v, 2) + '×');
const MODE_LABEL: Record<Mode, string> = {
  off: 'presence off',
  on: 'presence on',
  ext: 'on + ext.presence',
  watch: 'on, watchers with ext.presence',
};

function table(head: string[], lines: string[][]): void {
  console.log('');
  console.log('| ' + head.join(' | ') + ' |');
  console.log('| ' + head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ') + ' |');
  for (const l of lines) console.log('| ' + l.join(' | ') + ' |');
}

function printSubscribe(rows: Array<SubscribeRun & { contendedRounds: number }>, config: Config): Record<string, unknown>[] {
  const lines: string[][] = [];
  const ratios: Record<string, unknown>[] = [];
  for (const engine of config.engines) {
    const off = rows.find((r) => r.engine === engine && r.mode === 'off');
    for (const r of rows.filter((y) => y.engine === engine)) {
      lines.push([engine, MODE_LABEL[r.mode] + star(r), fmt(r.subscribesPerSec, 0), fmt(r.nodeUsPerSubscribe, 1), fmt(r.redisUsPerSubscribe, 1),
        fmt(r.heapBytesPerSubscribe, 0), fmt(r.nodeUsPerHandshake, 1), fmt(r.noticesPerSession, 0)]);
    }
    for (const r of rows.filter((y) => y.engine === engine && y.mode !== 'off')) {
      const q = {
        engine, ratio: `${r.mode} ÷ off`,
        subscribesPerSec: ratio(r.subscribesPerSec, off?.subscribesPerSec),
        nodeUsPerSubscribe: ratio(r.nodeUsPerSubscribe, off?.nodeUsPerSubscribe),
        redisUsPerSubscribe: ratio(r.redisUsPerSubscribe, off?.redisUsPerSubscribe),
        heapBytesPerSubscribe: ratio(r.heapBytesPerSubscribe, off?.heapBytesPerSubscribe),
        nodeUsPerHandshake: ratio(r.nodeUsPerHandshake, off?.nodeUsPerHandshake),
      };
      ratios.push(q);
      lines.push([engine, `ratio ${MODE_LABEL[r.mode]} ÷ off`, x(q.subscribesPerSec), x(q.nodeUsPerSubscribe), x(q.redisUsPerSubscribe), x(q.heapBytesPerSubscribe), x(q.nodeUsPerHandshake), '-']);
    }
  }
  console.log(`\nCost per subscribe: ${fmt(config.sessions, 0)} identified WebSocket sessions subscribing to ${config.rooms} rooms (${fmt(config.sessions / config.rooms, 0)} each), 64 in flight`);
  table(['engine', 'mode', 'subscribes/s', 'node CPU µs/subscribe', 'Redis CPU µs/subscribe', 'heap B/subscribe', 'node CPU µs/session opened', 'notice msgs/session'], lines);
  return ratios;
}

function printNotice(rows: Array<NoticeRun & { contendedRounds: number }>, config: Config): Record<string, unknown>[] {
  const lines: string[][] = [];
  const ratios: Record<string, unknown>[] = [];
  for (const engine of config.engines) {
    const off = rows.find((r) => r.engine === engine && r.mode === 'off');
    for (const r of rows.filter((y) => y.engine === engine)) {
      const lost = r.mode === 'watch' && r.delivered < 0.999 ? ` (${fmt(r.delivered * 100, 1)}% delivered)` : '';
      lines.push([engine, MODE_LABEL[r.mode] + star(r) + lost, fmt(r.joinsPerSec, 0), fmt(r.nodeUsPerJoin, 1), fmt(r.redisUsPerJoin, 1), fmt(r.eventsPerSec, 0),
        fmt(r.nodeUsPerEvent, 2), fmt(r.noticeSeconds, 2), fmt(r.messagesPerWatcher, 0), fmt(r.eventsPerWatcher, 0)]);
    }
    const on = rows.find((r) => r.engine === engine && r.mode === 'watch');
    if (on && off) {
      const extraPerEvent = ((on.nodeUsPerJoin - off.nodeUsPerJoin) * on.joins) / (on.delivered * on.watchers * on.joins);
      const q = {
        engine, ratio: 'watch ÷ off',
        joinsPerSec: ratio(on.joinsPerSec, off.joinsPerSec),
        nodeUsPerJoin: ratio(on.nodeUsPerJoin, off.nodeUsPerJoin),
        redisUsPerJoin: ratio(on.redisUsPerJoin, off.redisUsPerJoin),
        extraNodeUsPerEvent: extraPerEvent,
      };
      ratios.push(q);
      lines.push([engine, 'ratio watch ÷ off', x(q.joinsPerSec), x(q.nodeUsPerJoin), x(q.redisUsPerJoin), '-', `+${fmt(extraPerEvent, 2)} µs over off`, '-', '-', '-']);
    }
  }
  console.log(`\nCost per join notice delivered: ${config.watchers} watchers on one room, then ${fmt(config.joins, 0)} users join it (64 in flight)`);
  table(['engine', 'mode', 'joins/s', 'node CPU µs/join', 'Redis CPU µs/join', 'join events delivered/s', 'node CPU µs/event delivered', 's until all delivered', 'notice msgs/watcher', 'events/watcher'], lines);
  return ratios;
}

function printBurst(rows: Array<BurstRun & { contendedRounds: number }>, config: Config): Record<string, unknown>[] {
  const lines: string[][] = [];
  const ratios: Record<string, unknown>[] = [];
  for (const engine of config.engines) {
    const off = rows.find((r) => r.engine === engine && r.mode === 'off');
    for (const r of rows.filter((y) => y.engine === engine)) {
      const lost = r.burst.delivered < 0.999 ? ` (${fmt(r.burst.delivered * 100, 1)}% delivered)` : '';
      lines.push([engine, MODE_LABEL[r.mode] + star(r) + lost, fmt(r.joinSeconds, 2), `${fmt(r.quiet.p50Ms, 1)} / ${fmt(r.quiet.p99Ms, 1)}`,
        `${fmt(r.burst.p50Ms, 1)} / ${fmt(r.burst.p99Ms, 1)}`, `${x(r.p50Ratio)} / ${x(r.p99Ratio)}`, fmt(r.burst.maxMs, 0),
        `${fmt(r.rssBeforeMiB, 0)} → ${fmt(r.rssAfterMiB, 0)}`, `${fmt(r.heapBeforeMiB, 1)} → ${fmt(r.heapAfterMiB, 1)}`,
        fmt(r.nodeCpuS, 2), fmt(r.redisCpuS, 2), fmt(r.messagesPerWatcher, 0), fmt(r.eventsPerWatcher, 0)]);
      if (off && r.mode !== 'off') {
        ratios.push({
          engine, ratio: `${r.mode} ÷ off`,
          burstP99: ratio(r.burst.p99Ms, off.burst.p99Ms),
          nodeCpuS: ratio(r.nodeCpuS, off.nodeCpuS),
          heapGrowth: ratio(r.heapAfterMiB - r.heapBeforeMiB, off.heapAfterMiB - off.heapBeforeMiB),
        });
      }
    }
  }
  console.log(`\nThe ${fmt(config.burst, 0)}-join burst: ${config.subscribers} WebSocket subscribers on another channel getting ${fmt(config.rate * BATCH, 0)} messages/s ` +
    `while ${fmt(config.burst, 0)} users join one room over ${config.burstSeconds} s`);
  table(['engine', 'mode', 'joins took s', 'quiet p50 / p99 ms', 'burst p50 / p99 ms', 'burst ÷ quiet p50 / p99', 'burst max ms', 'RSS MiB before → after',
    'heap MiB before → after', 'node CPU s (burst)', 'Redis CPU s (burst)', 'notice msgs/watcher', 'events/watcher'], lines);
  return ratios;
}

// ---------------------------------------------------------------- main

const resultsDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));

async function main(): Promise<void> {
  const config = readConfig();
  const started = Date.now();
  if (config.profile) mkdirSync(config.profile, { recursive: true });
  if (config.engines.includes('redis') && !findRedisServer()) {
    console.error('!!! redis-server not found on PATH: RedisEngine is SKIPPED !!!');
    config.engines = config.engines.filter((e) => e !== 'redis');
  }
  console.log(
    `presence benchmark: ${config.scenarios.join(', ')}; engines ${config.engines.join(', ')}; ${config.rounds} round(s); ` +
      `presenceLimit ${config.presenceLimit ?? 'default (1,000)'}; node ${process.version}, ${os.cpus().length} cores. Socket.IO has no presence: no peer row.`,
  );
  const background = await backgroundLoad();
  if (background > 0.15) console.log(`warning: ${fmt(background, 2)} cores busy before the benchmark started; other work skews the numbers`);

  const runs: Record<Scenario, Run[]> = { subscribe: [], notice: [], burst: [] };
  for (let round = 0; round < config.rounds; round++) {
    for (const scenario of config.scenarios) {
      const chosen = MODES[scenario].filter((m) => config.modes.includes(m));
      const modes = round % 2 ? [...chosen].reverse() : chosen;
      for (const engine of config.engines) {
        for (const mode of modes) {
          let m: Run;
          if (scenario === 'subscribe') {
            const s = await subscribeRun(engine, mode, round, config);
            console.log(`round ${round + 1} subscribe ${engine} ${mode}: ${fmt(s.subscribesPerSec, 0)} subscribes/s, node ${fmt(s.nodeUsPerSubscribe, 1)} µs/subscribe` +
              `, redis ${fmt(s.redisUsPerSubscribe, 1)} µs, heap ${fmt(s.heapBytesPerSubscribe, 0)} B/subscribe, handshake ${fmt(s.nodeUsPerHandshake, 1)} µs` +
              `${s.contended ? `; CONTENDED ${fmt(s.otherCores, 2)} cores` : ''}${s.failed ? `; ${s.failed} failed` : ''}`);
            m = s;
          } else if (scenario === 'notice') {
            const n = await noticeRun(engine, mode, round, config);
            console.log(`round ${round + 1} notice ${engine} ${mode}: ${fmt(n.joinsPerSec, 0)} joins/s, node ${fmt(n.nodeUsPerJoin, 1)} µs/join` +
              (mode === 'watch' ? `, ${fmt(n.eventsPerSec, 0)} events/s, ${fmt(n.nodeUsPerEvent, 2)} µs/event, ${fmt(n.delivered * 100, 1)}% delivered in ${fmt(n.noticeSeconds, 2)} s, ` +
                `${fmt(n.messagesPerWatcher, 0)} notice messages/watcher` : '') +
              `${n.contended ? `; CONTENDED ${fmt(n.otherCores, 2)} cores` : ''}`);
            m = n;
          } else {
            const b = await burstRun(engine, mode, round, config);
            console.log(`round ${round + 1} burst ${engine} ${mode}: joins took ${fmt(b.joinSeconds, 2)} s; p50/p99 quiet ${fmt(b.quiet.p50Ms, 1)}/${fmt(b.quiet.p99Ms, 1)} ms, ` +
              `burst ${fmt(b.burst.p50Ms, 1)}/${fmt(b.burst.p99Ms, 1)} ms (max ${fmt(b.burst.maxMs, 0)}), ${fmt(b.burst.delivered * 100, 1)}% delivered; ` +
              `RSS ${fmt(b.rssBeforeMiB, 0)} → ${fmt(b.rssAfterMiB, 0)} MiB; node ${fmt(b.nodeCpuS, 2)} CPU s` +
              (mode === 'ext' ? `; ${fmt(b.messagesPerWatcher, 0)} notice messages, ${fmt(b.eventsPerWatcher, 0)} events per watcher, ` +
                `${fmt(b.complete * 100, 1)}% of watchers learnt of every join` : '') +
              `${b.contended ? `; CONTENDED ${fmt(b.otherCores, 2)} cores` : ''}${b.failed ? `; ${b.failed} failed` : ''}` +
              (engine === 'redis' ? `\n    Redis: ${Object.entries(b.redisCommands).map(([k, v]) => `${k} ${v.calls}× ${fmt(v.usec / 1000, 0)} ms`).join(', ')}` : ''));
            m = b;
          }
          runs[scenario].push(m);
        }
      }
    }
  }

  const out: Record<string, unknown> = { config };
  console.log(`\nMedians of ${config.rounds} round(s); server, Redis, the load processes and this one share ${os.cpus().length} cores, nothing pinned. ` +
    'Socket.IO has no presence, so there is no peer row: the ratios are presence on ÷ off, and burst ÷ quiet.');
  if (config.scenarios.includes('subscribe')) {
    const rows = rowsOf(runs.subscribe as SubscribeRun[], config, 'subscribe');
    out['subscribe'] = { rows, ratios: printSubscribe(rows, config), runs: runs.subscribe };
  }
  if (config.scenarios.includes('notice')) {
    const rows = rowsOf(runs.notice as NoticeRun[], config, 'notice');
    out['notice'] = { rows, ratios: printNotice(rows, config), runs: runs.notice };
  }
  if (config.scenarios.includes('burst')) {
    const rows = rowsOf(runs.burst as BurstRun[], config, 'burst');
    out['burst'] = { rows, ratios: printBurst(rows, config), runs: runs.burst };
  }
  if (Object.values(runs).flat().some((r) => r.contended)) {
    console.log('\n* other work used the CPU during at least one window of this row: its figures are suspect; rerun on a quiet machine.');
  }
  writeResults(resultsDir, 'presence-latest.json', 'presence', started, background, out);
  if (config.profile && config.scenarios.includes('burst')) {
    for (const engine of config.engines) {
      for (const mode of MODES.burst) {
        const f = profileFile(config.profile, engine, mode);
        console.log(`\nprofile ${f} (burst window, ${engine}, ${mode}; per join)`);
        console.log(summarizeProfile(f, 25, config.burst));
      }
    }
  }
}

runMain(main, RUN_LIMIT_MS);
