/**
 * Scaling benchmark: what the Redis engine costs, and what a second node
 * does to fan-out. One channel, S subscribers over WebSocket, one
 * publisher sending batches of 10 messages as fast as deliveries keep up
 * (a bounded number of batches in flight), for three set-ups:
 *
 *   memory-1  one node, MemoryEngine
 *   redis-1   one node, RedisEngine
 *   redis-2   two nodes on one Redis, subscribers split evenly between
 *             them, the publisher on the first
 *
 * and then, for latency, a second window at a fixed rate that every set-up
 * sustains (`--rate`).
 *
 * Each node is a child process (this file with `node` as first argument),
 * subscribers live in load-client processes (bench/client.ts; the same
 * number of them in every set-up), Redis is a throw-away `redis-server`
 * on 127.0.0.1 with no persistence. Reported per set-up: deliveries/s,
 * latency (send → receive; at max throughput it is mostly queueing), CPU
 * of the nodes and of Redis (`INFO cpu`), and CPU seconds per 100k
 * deliveries. Then, in this process, what one publish costs Redis (CPU
 * and commands) at 20 and 5,000 subscribers (bench/redis-publish-cost.ts).
 * Written to bench/results/scaling.json.
 *
 *   npx tsc -p . && node scripts/copy-lua.mjs && node dist/bench/scaling.js
 *
 * Options (flag or environment variable):
 *   --subscribers=500       BENCH_SUBSCRIBERS
 *   --setups=memory-1,redis-1,redis-2   BENCH_SETUPS
 *   --seconds=6             BENCH_SECONDS   measured window per set-up
 *   --warmup=2              BENCH_WARMUP    seconds before the window
 *   --clients=2             BENCH_CLIENTS   load-client processes in all
 *   --window=50000          BENCH_WINDOW    deliveries in flight
 *   --payload=64            BENCH_PAYLOAD   bytes of padding per message
 *   --rate=10000            BENCH_RATE      deliveries/s of the fixed-rate window that
 *                                           follows the max window (0: none)
 *   --command-timeout=N     BENCH_COMMAND_TIMEOUT  RedisEngine commandTimeout in ms (default: the
 *                                           engine's, 5000; 0: none)
 *   --profile=DIR           BENCH_PROFILE   write each node's --cpu-prof profile to DIR
 *                                           (read one with dist/bench/profile.js)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { bayeux, MemoryEngine, type Engine } from '../lib/index.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { serverOf } from '../lib/internal.js';
import { findRedisServer, startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';
import {
  mergeHistograms, nowUs, numberOption as number, option, quantile, runMain, sleep, type FromServer, type ToServer,
} from './common.js';
import { LoadClients, type ClientReport } from './procs.js';
import { BATCH, Publisher } from './publisher.js';
import { within as timeout } from '../test/helpers/within.js';
import { measurePublishCost, type PublishCost } from './redis-publish-cost.js';
import { redisCpu } from './redis-cpu.js';

/** A batch not received by everyone this long after it was sent no longer holds the window. */
const STALL_MS = 3000;
/** The whole run may not take longer than this. */
const RUN_LIMIT_MS = 10 * 60_000;
const PATH = '/cometd';

type SetupName = 'memory-1' | 'redis-1' | 'redis-2';
const SETUPS: readonly SetupName[] = ['memory-1', 'redis-1', 'redis-2'];

// ---------------------------------------------------------------- a node (child mode)

function runNode(): void {
  const [, , , engineKind, url, prefix, commandTimeout] = process.argv;
  if (!process.send) {
    console.error('scaling.js node is started by scaling.js over IPC');
    process.exit(2);
  }
  const redisOptions = commandTimeout ? { prefix, commandTimeout: Number(commandTimeout) } : { prefix };
  const engine: Engine = engineKind === 'redis' ? new RedisEngine({ url: url as string }, redisOptions) : new MemoryEngine();
  const app = express();
  const cometd = bayeux({ engine, timeout: 30_000, logLevel: 'error' });
  app.use(PATH, cometd);
  const http = createServer(app);
  cometd.attach(http, { path: PATH });
  const send = (message: FromServer) => process.send?.(message);
  process.on('message', (message: ToServer) => {
    if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      send({ type: 'cpu', id: message.id, user, system, at: nowUs() });
    } else if (message.type === 'exit') {
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0));
  setTimeout(() => process.exit(0), RUN_LIMIT_MS).unref();
  serverOf(cometd).open().then(
    () => http.listen(0, '127.0.0.1', () => send({ type: 'ready', port: (http.address() as AddressInfo).port, path: PATH })),
    (err: unknown) => {
      console.error(`node: ${String(err)}`);
      process.exit(1);
    },
  );
}

// ---------------------------------------------------------------- the parent's handles

const allChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of allChildren) child.kill('SIGKILL');
});

class NodeHandle {
  readonly port: number;
  readonly #child: ChildProcess;
  #nextId = 0;
  readonly #waiters = new Map<number, (m: FromServer) => void>();

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.port = port;
    child.on('message', (m: FromServer) => {
      if (m.type !== 'cpu') return;
      const waiter = this.#waiters.get(m.id);
      this.#waiters.delete(m.id);
      waiter?.(m);
    });
  }

  static async start(engine: 'memory' | 'redis', url = '', prefix = '', profileDir?: string, commandTimeout?: number): Promise<NodeHandle> {
    const execArgv = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
    const args = ['node', engine, url, prefix, commandTimeout === undefined ? '' : String(commandTimeout)];
    const child = fork(fileURLToPath(import.meta.url), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    allChildren.add(child);
    child.once('exit', () => allChildren.delete(child));
    const ready = new Promise<number>((resolve, reject) => {
      child.on('message', (m: FromServer) => {
        if (m.type === 'ready') resolve(m.port);
      });
      child.once('exit', (code) => reject(new Error(`node exited with ${code}`)));
    });
    try {
      return new NodeHandle(child, await timeout(ready, 15_000, 'node start'));
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  /** CPU time so far (µs) and when the node read it (µs, nowUs()). */
  async cpu(): Promise<{ cpu: number; at: number }> {
    const id = ++this.#nextId;
    const reply = new Promise<FromServer>((resolve) => this.#waiters.set(id, resolve));
    this.#child.send({ type: 'cpu', id } satisfies ToServer);
    const m = await timeout(reply, 30_000, 'node cpu');
    return m.type === 'cpu' ? { cpu: m.user + m.system, at: m.at } : { cpu: NaN, at: NaN };
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ type: 'exit' } satisfies ToServer);
    await timeout(gone, 5000, 'node exit').catch(() => child.kill('SIGKILL'));
  }
}

// ---------------------------------------------------------------- options

interface Config {
  subscribers: number;
  setups: SetupName[];
  seconds: number;
  warmup: number;
  clients: number;
  window: number;
  payload: number;
  rate: number;
  profile: string | undefined;
  /** RedisEngine commandTimeout; undefined: the engine's default. */
  commandTimeout: number | undefined;
}

function readConfig(): Config {
  const setups = (option('setups') ?? SETUPS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of setups) if (!SETUPS.includes(s as SetupName)) throw new TypeError(`setups: ${s} is not one of ${SETUPS.join(', ')}`);
  return {
    subscribers: Math.floor(number('subscribers', 500, 2, 20_000)),
    setups: setups as SetupName[],
    seconds: number('seconds', 6, 1, 120),
    warmup: number('warmup', 2, 0, 30),
    clients: Math.floor(number('clients', 2, 1, 16)),
    window: number('window', 50_000, 10, 1e7),
    payload: Math.floor(number('payload', 64, 0, 100_000)),
    rate: number('rate', 10_000, 0, 1e8),
    profile: option('profile'),
    commandTimeout: option('command-timeout') === undefined ? undefined : number('command-timeout', 5000, 0, 600_000),
  };
}

// ---------------------------------------------------------------- one set-up

/** One measured window. */
interface Window {
  deliveriesPerSec: number;
  /** Deliveries received / expected from the batches sent in the window. */
  delivered: number;
  /** Send → receive. At max throughput this is mostly queueing. */
  p50Ms: number;
  p99Ms: number;
  /** CPU of all nodes in the window, in cores. */
  nodeCores: number;
  /** CPU of redis-server in the window, in cores. */
  redisCores: number;
  /** Node + Redis CPU seconds per 100k deliveries. */
  cpuPer100k: number;
  stalls: number;
  clientErrors: number;
}

interface SetupResult {
  setup: SetupName;
  nodes: number;
  engine: 'memory' | 'redis';
  subscribers: number;
  /** Subscribers per node, in node order (the publisher is on the first). */
  split: number[];
  /** As fast as every subscriber keeps up. */
  max: Window;
  /** At the fixed `rate`, the same for every set-up. */
  rate?: Window;
}


async function runSetup(name: SetupName, config: Config, redis: RedisServer | undefined, index: number): Promise<SetupResult> {
  const engine = name === 'memory-1' ? 'memory' : 'redis';
  const count = name === 'redis-2' ? 2 : 1;
  if (engine === 'redis' && !redis) throw new Error('no redis-server');
  const prefix = `scaling-${process.pid}-${index}:`;
  const nodes: NodeHandle[] = [];
  const groups: LoadClients[] = [];
  let publisher: Publisher | undefined;
  try {
    if (config.profile) mkdirSync(config.profile, { recursive: true });
    for (let i = 0; i < count; i++) nodes.push(await NodeHandle.start(engine, redis?.url, prefix, config.profile, config.commandTimeout));
    // Subscribers and load-client processes split evenly between the nodes.
    const split = nodes.map((_, i) => Math.floor(config.subscribers / count) + (i < config.subscribers % count ? 1 : 0));
    const processes = nodes.map((_, i) => Math.max(1, Math.floor(config.clients / count) + (i < config.clients % count ? 1 : 0)));
    const totalProcesses = processes.reduce((a, b) => a + b, 0);

    const inflight = new Map<number, { sentAt: number; done: number }>();
    let onComplete: (() => void) | undefined;
    const done = (seq: number) => {
      const entry = inflight.get(seq);
      if (!entry) return;
      if (++entry.done >= totalProcesses) {
        inflight.delete(seq);
        onComplete?.();
      }
    };
    publisher = await Publisher.open({ transport: 'websocket', port: (nodes[0] as NodeHandle).port, path: PATH }, config.payload);
    for (const [i, node] of nodes.entries()) {
      groups.push(await LoadClients.start(processes[i] as number, {
        server: 'bayeux',
        transport: 'websocket',
        port: node.port,
        path: PATH,
        subscribers: split[i] as number,
        setupTimeoutMs: 60_000,
        lifetimeMs: RUN_LIMIT_MS,
      }, done));
    }
    const subscribers = groups.reduce((a, g) => a + g.subscribers, 0);
    if (subscribers < config.subscribers) console.error(`  ${config.subscribers - subscribers} subscribers failed to set up`);
    await sleep(300);

    const pub = publisher;
    const measure = async (mode: 'max' | 'rate'): Promise<Window> => {
      // max: keep `window` deliveries in flight; rate: one batch every intervalMs.
      const windowBatches = Math.max(2, Math.ceil(config.window / (BATCH * Math.max(1, subscribers))));
      const intervalMs = (1000 * BATCH * Math.max(1, subscribers)) / Math.max(1, config.rate);
      let running = true;
      let stalls = 0;
      const send = () => inflight.set(pub.batch(), { sentAt: Date.now(), done: 0 });
      const pump = () => {
        for (let n = 0; running && inflight.size < windowBatches && n < windowBatches; n++) send();
      };
      onComplete = mode === 'max' ? pump : undefined;
      const reaper = setInterval(() => {
        const now = Date.now();
        for (const [seq, entry] of inflight) {
          if (now - entry.sentAt < STALL_MS) break;
          inflight.delete(seq);
          stalls++;
        }
        if (mode === 'max') pump();
      }, 250);
      let pacer: NodeJS.Timeout | undefined;
      if (mode === 'max') {
        pump();
      } else {
        const began = performance.now();
        let sent = 0;
        const tick = () => {
          if (!running) return;
          const due = Math.floor((performance.now() - began) / intervalMs) + 1;
          // Catch up at most a few batches if the timer was late.
          for (let n = 0; sent < due && n < 5; n++, sent++) send();
          if (sent < due - 5) sent = due - 5;
          pacer = setTimeout(tick, Math.max(0, began + sent * intervalMs - performance.now()));
        };
        tick();
      }

      await sleep(config.warmup * 1000);
      const stallsBefore = stalls;
      const cpu0 = await Promise.all(nodes.map((n) => n.cpu()));
      const redis0 = engine === 'redis' ? await redisCpu(redis?.url) : NaN;
      const fromSeq = pub.sent + 1;
      for (const g of groups) g.start(fromSeq);
      const t0 = performance.now();
      await sleep(config.seconds * 1000);
      const toSeq = pub.sent;
      for (const g of groups) g.stop(toSeq);
      const t1 = performance.now();
      const cpu1 = await Promise.all(nodes.map((n) => n.cpu()));
      const redis1 = engine === 'redis' ? await redisCpu(redis?.url) : NaN;
      running = false;
      onComplete = undefined;
      clearInterval(reaper);
      clearTimeout(pacer);
      // Let the window's batches arrive (bounded), then read the reports.
      for (let i = 0; i < STALL_MS / 100 && [...inflight.keys()].some((seq) => seq <= toSeq); i++) await sleep(100);
      const reports: ClientReport[] = (await Promise.all(groups.map((g) => g.report()))).flat();
      inflight.clear();
      await sleep(300);

      const seconds = (t1 - t0) / 1000;
      const inWindow = reports.reduce((a, r) => a + r.receivedInWindow, 0);
      const received = reports.reduce((a, r) => a + r.received, 0);
      const hist = mergeHistograms(reports.map((r) => r.hist));
      const nodeCores = nodes.reduce((sum, _, i) => {
        const a = cpu0[i] as { cpu: number; at: number };
        const b = cpu1[i] as { cpu: number; at: number };
        return sum + (b.cpu - a.cpu) / (b.at - a.at);
      }, 0);
      const redisCores = engine === 'redis' ? (redis1 - redis0) / seconds : 0;
      const deliveriesPerSec = inWindow / seconds;
      const expected = (toSeq - fromSeq + 1) * BATCH * subscribers;
      return {
        deliveriesPerSec,
        delivered: expected > 0 ? received / expected : NaN,
        p50Ms: quantile(hist, 0.5) / 1000,
        p99Ms: quantile(hist, 0.99) / 1000,
        nodeCores,
        redisCores,
        cpuPer100k: deliveriesPerSec > 0 ? ((nodeCores + redisCores) / deliveriesPerSec) * 100_000 : NaN,
        stalls: stalls - stallsBefore,
        clientErrors: reports.reduce((a, r) => a + r.errors, 0),
      };
    };

    const result: SetupResult = { setup: name, nodes: count, engine, subscribers, split, max: await measure('max') };
    if (config.rate > 0) result.rate = await measure('rate');
    return result;
  } finally {
    publisher?.close();
    for (const g of groups) await g.exit();
    for (const n of nodes) await n.stop();
  }
}

// ---------------------------------------------------------------- output

function fmt(n: number | undefined, digits: number): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function printTable(results: SetupResult[], rate: number): void {
  const base = results.find((r) => r.setup === 'memory-1')?.max.deliveriesPerSec;
  const head = ['set-up', 'subscribers', 'max deliv/s', 'vs memory', 'node cores', 'redis cores', 'cpu s/100k', 'p50 ms', 'p99 ms', 'rate cpu s/100k'];
  const rows = results.map((r) => [
    r.setup,
    r.split.join('+'),
    fmt(r.max.deliveriesPerSec, 0),
    base ? fmt(r.max.deliveriesPerSec / base, 3) + 'x' : '-',
    fmt(r.max.nodeCores, 2),
    r.engine === 'redis' ? fmt(r.max.redisCores, 2) : '-',
    fmt(r.max.cpuPer100k, 3),
    fmt(r.rate?.p50Ms, 1),
    fmt(r.rate?.p99Ms, 1),
    fmt(r.rate?.cpuPer100k, 3),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log('');
  console.log(line(head));
  for (const row of rows) console.log(line(row));
  for (const r of results) {
    for (const [mode, w] of [['max', r.max], ['rate', r.rate]] as const) {
      if (!w) continue;
      const notes: string[] = [];
      if (w.delivered < 0.999) notes.push(`only ${fmt(w.delivered * 100, 1)}% delivered`);
      if (w.stalls) notes.push(`${w.stalls} stalled batches`);
      if (w.clientErrors) notes.push(`${w.clientErrors} client errors`);
      if (notes.length) console.log(`  ${r.setup} ${mode}: ${notes.join(', ')}`);
    }
  }
  console.log('');
  console.log('WebSocket, one channel, publisher on the first node. max = batches of 10 messages kept in flight up to the');
  console.log('window, as fast as every subscriber keeps up; cores and cpu s/100k (nodes + Redis) are from that window.');
  if (rate > 0) console.log(`p50/p99 (send -> receive) and "rate cpu" are from a window at a fixed ${fmt(rate, 0)} deliveries/s.`);
  console.log(`Nodes, Redis, load clients and publisher share ${os.cpus().length} cores, nothing pinned.`);
}

// ---------------------------------------------------------------- main

function machineBusy(): number {
  let ms = 0;
  for (const cpu of os.cpus()) ms += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq;
  return ms / 1000;
}

async function main(): Promise<void> {
  const config = readConfig();
  const started = Date.now();
  const m0 = machineBusy();
  const b0 = performance.now();
  await sleep(1000);
  const background = (machineBusy() - m0) / ((performance.now() - b0) / 1000);
  console.log(
    `scaling benchmark: S=${config.subscribers} over websocket; ${config.setups.join(', ')}; ` +
      `${config.seconds}s windows after ${config.warmup}s warm-up; ${config.clients} load-client processes; ` +
      `node ${process.version}, ${os.cpus().length} cores` +
      (config.commandTimeout === undefined ? '' : `; RedisEngine commandTimeout ${config.commandTimeout} ms`),
  );
  if (background > 0.15) console.log(`warning: ${fmt(background, 2)} cores busy before the benchmark started; other work skews the numbers`);

  const wantsRedis = config.setups.some((s) => s !== 'memory-1');
  let redis: RedisServer | undefined;
  if (wantsRedis) {
    if (findRedisServer()) redis = await startRedisServer();
    else console.error('!!! redis-server not found on PATH: the Redis set-ups are SKIPPED !!!');
  }
  const results: SetupResult[] = [];
  const costs: PublishCost[] = [];
  try {
    for (const [i, name] of config.setups.entries()) {
      if (name !== 'memory-1' && !redis) continue;
      console.log(`${name} ...`);
      const r = await runSetup(name, config, redis, i);
      console.log(`  max ${fmt(r.max.deliveriesPerSec, 0)} deliveries/s, nodes ${fmt(r.max.nodeCores, 2)} cores` +
        (r.engine === 'redis' ? `, redis ${fmt(r.max.redisCores, 2)} cores` : '') +
        (r.rate ? `; at ${fmt(config.rate, 0)}/s: p50 ${fmt(r.rate.p50Ms, 1)} ms, p99 ${fmt(r.rate.p99Ms, 1)} ms` : ''));
      results.push(r);
    }
    if (redis) {
      for (const subscribers of [20, 5000]) {
        costs.push(await measurePublishCost(redis.url, subscribers, 2000, `cost-${subscribers}:`));
      }
    }
  } finally {
    await redis?.stop();
  }
  printTable(results, config.rate);
  if (costs.length > 0) {
    console.log('');
    console.log('Redis per publish (one RedisEngine in this process, 2,000 publishes to one channel):');
    for (const c of costs) {
      console.log(`  ${fmt(c.subscribers, 0).padStart(5)} subscribers: ${fmt(c.redisCpuUsPerPublish, 1)} µs Redis CPU, ${fmt(c.commandsPerPublish, 1)} commands; ` +
        `${fmt(c.redisCpuPer100k, 4)} Redis CPU s per 100k deliveries; then ${fmt(c.positionFlushUsPerSession, 2)} µs per session to write the positions a push took`);
    }
  }

  const dir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = dir + 'scaling.json';
  writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    redis: redis ? 'redis-server from PATH, --save "" --appendonly no' : undefined,
    seconds: (Date.now() - started) / 1000,
    backgroundCores: background,
    config,
    results,
    publishCost: costs,
  }, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

if (process.argv[2] === 'node') {
  runNode();
} else {
  runMain(main, RUN_LIMIT_MS);
}
