/**
 * The machine the benchmark shares with other work: how busy it is, waiting
 * (bounded) for it to calm down, and the formatting every report uses.
 * Shared by the fan-out run and the burst and held scenarios.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { numberOption, sleep, type ServerKind } from './common.js';

/** Cores of other work on the machine above which a measurement is marked contended. */
export const QUIET_CORES = 0.3;
/**
 * How long to wait for other work to finish before each server is set up
 * (`--quiet-wait=S`, BENCH_QUIET_WAIT, seconds; 0 for a smoke run on a busy machine).
 */
export const QUIET_WAIT_MS = numberOption('quiet-wait', 60, 0, 600) * 1000;
/**
 * Cores busy in a window beyond the benchmark's own processes above which
 * the window is marked contended. Some of it is the kernel's loopback work
 * on the benchmark's behalf (softirq), so the bar is higher than QUIET_CORES.
 */
export const CONTENDED_CORES = 0.5;

/** USER_HZ: /proc/stat counts in these per second. 100 on every Linux Node supports. */
const CLOCK_TICKS = 100;

/**
 * Busy CPU time of the whole machine so far, in seconds (all cores). From
 * /proc/stat where there is one, since it also counts softirq time (the
 * kernel's share of loopback TCP) and steal; os.cpus() elsewhere.
 */
export function machineBusy(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    if (f.length >= 8 && Number.isFinite(busy)) return busy / CLOCK_TICKS;
  } catch {
    // not Linux
  }
  let ms = 0;
  for (const cpu of os.cpus()) ms += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq;
  return ms / 1000;
}

/** Cores busy over `ms` while the benchmark itself is idle. */
export async function backgroundLoad(ms = 1000): Promise<number> {
  const m0 = machineBusy();
  const t0 = performance.now();
  await sleep(ms);
  return (machineBusy() - m0) / ((performance.now() - t0) / 1000);
}

/** Other work on the machine skews everything: wait (bounded) for it to calm down before setting up a server. */
export async function waitForQuiet(): Promise<number> {
  if (QUIET_WAIT_MS === 0) return backgroundLoad(200);
  let load = await backgroundLoad(500);
  for (let waited = 0; load > QUIET_CORES && waited < QUIET_WAIT_MS; waited += 1000) {
    if (waited === 0) console.log(`  waiting for other work to finish (${fmt(load, 2)} cores busy)...`);
    load = await backgroundLoad(1000);
  }
  return load;
}

const LABELS: Record<ServerKind, string> = {
  bayeux: 'express-bayeux',
  faye: 'faye 1.4',
  'bayeux-http': 'express-bayeux, no Express',
  ws: 'bare ws (floor)',
  'bayeux-redis': 'express-bayeux, Redis',
  'bayeux-redis-shard': 'express-bayeux, Redis, shard logs',
  sio: 'Socket.IO 4.8',
  'sio-redis': 'Socket.IO, redis-adapter',
};

export function label(kind: ServerKind): string {
  return LABELS[kind];
}

export function fmt(n: number | undefined, digits: number): string {
  if (n === undefined || !Number.isFinite(n)) return '-';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a !== undefined && b !== undefined && b > 0 && Number.isFinite(a / b) ? a / b : undefined;
}

export function median(values: readonly number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** The open-file limit this process (and the children it starts) has; NaN where unknown. */
export function openFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    return Number(line?.split(/\s+/)[3]);
  } catch {
    return NaN; // not Linux
  }
}
