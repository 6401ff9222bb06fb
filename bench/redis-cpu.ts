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
