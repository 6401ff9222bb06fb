/**
 * Redis's own CPU time, from `INFO cpu`: what the scaling and rooms
 * benchmarks count as Redis's share of a publish.
 */
import { createClient } from 'redis';
import { within as timeout } from '../test/helpers/within.js';

/** Redis's own CPU seconds so far (`INFO cpu`: used_cpu_user + used_cpu_sys, main thread and the rest). */
export async function redisCpu(url: string | undefined): Promise<number> {
  if (!url) return NaN;
  const client = createClient({ url });
  client.on('error', () => undefined);
  try {
    await timeout(client.connect(), 5000, 'redis connect');
    const info = await timeout(client.info('cpu'), 5000, 'redis INFO');
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
    return field('used_cpu_user') + field('used_cpu_sys');
  } finally {
    await client.close().catch(() => undefined);
  }
}
