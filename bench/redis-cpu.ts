/**
 * Redis's own CPU time (`INFO cpu`) and memory (`INFO memory`): what the
 * scaling and rooms benchmarks count as Redis's share of a publish, and
 * what subscribers cost in Redis.
 */
import { createClient } from 'redis';
import { within as timeout } from '../test/helpers/within.js';

async function info(url: string, section: string): Promise<(field: string) => number> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  try {
    await timeout(client.connect(), 5000, 'redis connect');
    const text = await timeout(client.info(section), 5000, 'redis INFO');
    return (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text)?.[1] ?? NaN);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Redis's own CPU seconds so far (`INFO cpu`: used_cpu_user + used_cpu_sys, main thread and the rest). */
export async function redisCpu(url: string | undefined): Promise<number> {
  if (!url) return NaN;
  const field = await info(url, 'cpu');
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Bytes Redis's allocator holds for data (`INFO memory`: used_memory). */
export async function redisMemory(url: string | undefined): Promise<number> {
  if (!url) return NaN;
  return (await info(url, 'memory'))('used_memory');
}

/** Redis's calls and µs by command so far (`INFO commandstats`; a script's own commands included). */
export async function commandStats(url: string | undefined): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  if (!url) return out;
  const client = createClient({ url });
  client.on('error', () => undefined);
  try {
    await timeout(client.connect(), 5000, 'redis connect');
    const text = await timeout(client.info('commandstats'), 5000, 'redis INFO commandstats');
    for (const [, name, calls, usec] of text.matchAll(/cmdstat_([a-z|_]+):calls=(\d+),usec=(\d+)/g)) {
      if (name !== 'info') out.set(name as string, { calls: Number(calls), usec: Number(usec) });
    }
    return out;
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** The commands that took the most Redis time between two readings: `name calls×, µs`. */
export function topCommands(a: Map<string, { calls: number; usec: number }>, b: Map<string, { calls: number; usec: number }>, n = 5): Record<string, { calls: number; usec: number }> {
  const rows = [...b].map(([name, v]) => [name, { calls: v.calls - (a.get(name)?.calls ?? 0), usec: v.usec - (a.get(name)?.usec ?? 0) }] as const);
  return Object.fromEntries(rows.filter(([, v]) => v.calls > 0).sort((x, y) => y[1].usec - x[1].usec).slice(0, n));
}
