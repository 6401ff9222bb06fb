/**
 * What the benchmark's processes share: the IPC message shapes, the clock,
 * the latency histogram, and the marker keys a published message carries.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';

/**
 * bayeux-http: express-bayeux as a bare `http.createServer` handler, no Express: a diagnostic, to see what Express costs.
 * ws: a floor, not a Bayeux server: a bare `ws` server speaking just enough Bayeux for the load clients, writing
 * each publish frame's messages to every subscribed socket as one pre-serialized frame (bench/ws-floor.ts).
 * bayeux-redis: express-bayeux on a RedisEngine (the server process gets the Redis URL).
 * bayeux-redis-shard: the same with the engine's `channelLogs: 'shard'` (one shard log for every channel's
 * publishes of a tick; wildcard patterns keep their own logs).
 * sio, sio-redis: Socket.IO 4.8, rooms, plain or with @socket.io/redis-adapter (bench/sio.ts).
 */
export type ServerKind = 'bayeux' | 'faye' | 'bayeux-http' | 'ws' | 'bayeux-redis' | 'bayeux-redis-shard' | 'sio' | 'sio-redis';

/** The kinds whose server process needs a Redis URL (each rig starts its own throw-away redis-server). */
export function usesRedis(kind: ServerKind): boolean {
  return kind === 'bayeux-redis' || kind === 'bayeux-redis-shard' || kind === 'sio-redis';
}
export type TransportKind = 'websocket' | 'long-polling';

/** The one channel every subscriber listens on. */
export const CHANNEL = '/bench/fanout';

/**
 * Every published message's `data` starts with these two keys, in this
 * order: the batch sequence number and the send time (µs, monotonic clock).
 * Both servers serialize `data` with `JSON.stringify`, so a load client can
 * find them with `indexOf` instead of parsing every frame.
 */
export const SEQ_KEY = '_bs';
export const TIME_KEY = '_bt';

/**
 * Microseconds on the system-wide monotonic clock (libuv's hrtime is
 * CLOCK_MONOTONIC on Linux), so a time taken in one process can be
 * subtracted from one taken in another on the same machine.
 */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- histogram

/** Buckets per e-fold: 1% resolution. */
const PER_E = 100;
/** Up to e^20 µs (~8 minutes). */
export const HIST_BUCKETS = 20 * PER_E;

/** A fixed-size log-bucket histogram of latencies in µs: constant memory however many samples. */
export class Histogram {
  readonly counts = new Uint32Array(HIST_BUCKETS);
  total = 0;
  sum = 0;
  max = 0;

  record(us: number): void {
    const v = us < 1 ? 1 : us;
    let i = Math.floor(Math.log(v) * PER_E);
    if (i >= HIST_BUCKETS) i = HIST_BUCKETS - 1;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.total++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sum = 0;
    this.max = 0;
  }

  toJSON(): HistogramData {
    return { counts: Array.from(this.counts), total: this.total, sum: this.sum, max: this.max };
  }
}

export interface HistogramData {
  counts: number[];
  total: number;
  sum: number;
  max: number;
}

export function mergeHistograms(parts: readonly HistogramData[]): HistogramData {
  const counts = new Array<number>(HIST_BUCKETS).fill(0);
  let total = 0;
  let sum = 0;
  let max = 0;
  for (const p of parts) {
    for (let i = 0; i < HIST_BUCKETS; i++) counts[i] = (counts[i] ?? 0) + (p.counts[i] ?? 0);
    total += p.total;
    sum += p.sum;
    max = Math.max(max, p.max);
  }
  return { counts, total, sum, max };
}

/** The q-quantile (0..1) in µs: the geometric middle of its bucket. */
export function quantile(h: HistogramData, q: number): number {
  if (h.total === 0) return NaN;
  const rank = Math.ceil(q * h.total);
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i] ?? 0;
    if (seen >= rank) return Math.min(Math.exp((i + 0.5) / PER_E), h.max);
  }
  return h.max;
}

// ---------------------------------------------------------------- IPC

/** parent → server child */
export type ToServer =
  | { type: 'cpu'; id: number }
  | { type: 'heap'; id: number }
  /** Write a heap snapshot (after a full GC) to `file`. */
  | { type: 'snapshot'; id: number; file: string }
  /** Start the CPU profiler, or stop it and write the profile to `file`. */
  | { type: 'profile'; id: number; action: 'start' | 'stop'; file: string }
  | { type: 'exit' };
/** server child → parent */
export type FromServer =
  | { type: 'ready'; port: number; path: string }
  /**
   * `at`: when the server read its CPU time (µs, {@link nowUs}); its event loop may answer late.
   * `lastEnd` (bench/server.ts): when it last ended an HTTP response (µs, {@link nowUs}; 0: never).
   */
  | { type: 'cpu'; id: number; user: number; system: number; at: number; lastEnd?: number }
  | { type: 'heap'; id: number; heapUsed: number; rss: number; external: number }
  | { type: 'snapshot'; id: number; file: string }
  | { type: 'profile'; id: number };

export interface ClientSetup {
  type: 'setup';
  server: ServerKind;
  transport: TransportKind;
  port: number;
  path: string;
  subscribers: number;
  /** Messages per published batch (default 10): a batch is done when every subscriber has this many. */
  batch?: number;
  /**
   * Rooms: subscriber number g (counted over all load-client processes from `first`) subscribes to channel
   * g % channels (`/bench/r/<n>`; Socket.IO: room `r<n>`). No `done` messages then: the publisher paces itself.
   */
  channels?: number;
  /** Set by LoadClients: the global number of this process's first subscriber. */
  first?: number;
  /** How long setup may take, ms. */
  setupTimeoutMs: number;
  /** The process exits on its own this long after setup, ms, whatever happens. */
  lifetimeMs: number;
}

/** parent → load-client child */
export type ToClient =
  | ClientSetup
  /** Start the time window; record latencies for batches from `fromSeq` on. */
  | { type: 'start'; fromSeq: number }
  /** End the time window; batches after `toSeq` are not recorded. */
  | { type: 'stop'; toSeq: number }
  | { type: 'report' }
  /** How many subscribers have a `/meta/connect` in flight. */
  | { type: 'status' }
  | { type: 'exit' };

/** load-client child → parent */
export type FromClient =
  | { type: 'ready'; subscribers: number; failed: number }
  /** Every subscriber of this process has all of batch `seq`; `at`: when the last of it arrived (µs, {@link nowUs}). */
  | { type: 'done'; seq: number; at: number }
  | { type: 'status'; sessions: number; connecting: number; errors: number }
  | {
      type: 'report';
      /** Deliveries of batches fromSeq..toSeq (whenever they arrived). */
      received: number;
      /** Deliveries of any batch that arrived between start and stop. */
      receivedInWindow: number;
      hist: HistogramData;
      cpuUser: number;
      cpuSystem: number;
      errors: number;
      resubscribes: number;
    };

/** Run a benchmark's main(): exit 0 when it resolves, 1 when it fails or outlasts `limitMs`. */
export function runMain(main: () => Promise<void>, limitMs: number): void {
  const limit = setTimeout(() => {
    console.error(`benchmark took longer than ${limitMs / 60_000} minutes; giving up`);
    process.exit(1);
  }, limitMs);
  limit.unref();
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
      process.exit(1);
    },
  );
}

/** A benchmark option: `--name=value` (a bare `--name` is "1"), else the env var BENCH_NAME (dashes as underscores). */
export function option(name: string): string | undefined {
  const flag = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (flag) return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : '1';
  return process.env['BENCH_' + name.toUpperCase().replace(/-/g, '_')];
}

/** A numeric option within [min, max], or `fallback`. */
export function numberOption(name: string, fallback: number, min: number, max: number): number {
  const raw = option(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new TypeError(`${name} must be a number in [${min}, ${max}]`);
  return n;
}

/**
 * Write a run's results as `<dir><latest>` and as a dated copy
 * `<dir><prefix>-<date>.json` (a quick partial run does not lose a full
 * one), under the machine's description; returns the object written.
 */
export function writeResults(dir: string, latest: string, prefix: string, started: number, background: unknown, body: Record<string, unknown>): Record<string, unknown> {
  const date = new Date().toISOString();
  const out = {
    date,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    seconds: (Date.now() - started) / 1000,
    backgroundCores: background,
    ...body,
  };
  mkdirSync(dir, { recursive: true });
  const file = dir + latest;
  const copy = dir + `${prefix}-${date.replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  writeFileSync(copy, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file} (and ${copy})`);
  return out;
}
