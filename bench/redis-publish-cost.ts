/**
 * What one publish costs Redis, by number of subscribers: one RedisEngine
 * in this process, S sessions subscribed to one channel (held by this
 * node, as sessions with a socket here are), P publishes; Redis's CPU
 * (`INFO cpu`) and commands (`INFO commandstats`, the commands scripts run
 * included) over those publishes, per publish. Used by scaling.ts.
 */
import { createClient } from 'redis';
import { expand } from '../lib/server/expand.js';
import type { EngineHost } from '../lib/engines/engine.js';
import { RedisEngine } from '../lib/engines/redis/index.js';

export interface PublishCost {
  subscribers: number;
  publishes: number;
  /** Redis CPU microseconds per publish. */
  redisCpuUsPerPublish: number;
  /** Commands Redis ran per publish (scripts and what they call). */
  commandsPerPublish: number;
  /** Redis CPU seconds per 100k deliveries (the publishes only). */
  redisCpuPer100k: number;
  /** Redis CPU microseconds per session to write the positions a push took (once per positionFlush, however many messages). */
  positionFlushUsPerSession: number;
  /** Publishes per second this one node made (10 in flight at a time), the wall clock over the measured publishes. */
  publishesPerSec: number;
}

/** Redis's CPU seconds so far, its commands (scripts' inner ones included, INFO left out) in all and by name. */
export async function redisCounters(url: string): Promise<{ cpu: number; commands: number; byCommand: Map<string, number>; usecByCommand: Map<string, number> }> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const cpuInfo = await client.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(cpuInfo)?.[1] ?? NaN);
    const stats = await client.info('commandstats');
    let commands = 0;
    const byCommand = new Map<string, number>();
    const usecByCommand = new Map<string, number>();
    for (const [, name, calls, usec] of stats.matchAll(/cmdstat_([a-z|_]+):calls=(\d+),usec=(\d+)/g)) {
      if (name === 'info') continue;
      commands += Number(calls);
      byCommand.set(name as string, Number(calls));
      usecByCommand.set(name as string, Number(usec));
    }
    return { cpu: field('used_cpu_user') + field('used_cpu_sys'), commands, byCommand, usecByCommand };
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * Measure `publishes` publishes to `subscribers` sessions on the Redis at
 * `url`; with `history`, the channel keeps history (`size`, `ttl`) and
 * each publish gets a position, as the Server's `history` option does.
 */
export async function measurePublishCost(
  url: string,
  subscribers: number,
  publishes: number,
  prefix: string,
  history?: { size: number; ttl: number },
): Promise<PublishCost> {
  const host: EngineHost = { wake() {}, expired() {} };
  const engine = new RedisEngine({ url }, { prefix, logger: { warn() {} } });
  await engine.open(host, { maxQueue: 100_000, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 60_000 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < subscribers; i += 250) {
      ids.push(...(await Promise.all(Array.from({ length: Math.min(250, subscribers - i) }, async () => {
        const id = await engine.createSession({ ack: false, ttl: 600_000 });
        await engine.subscribe(id, '/cost/channel');
        return id;
      }))));
    }
    // The text as the Server writes it for a history channel (the position goes before the final `}}`), with or without history.
    const message = JSON.stringify({ channel: '/cost/channel', data: { padding: 'x'.repeat(64) } }).slice(0, -1) + ',"ext":{"position":}}';
    const options = history ? { history: { channel: '/cost/channel', ...history, tail: 2 } } : undefined;
    await engine.publish(expand('/cost/channel'), message, options);
    await engine.takeMany(ids);
    // Let the warm-up's positions be written first.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const before = await redisCounters(url);
    const started = performance.now();
    for (let i = 0; i < publishes; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, publishes - i) }, () => engine.publish(expand('/cost/channel'), message, options)));
    }
    const elapsed = performance.now() - started;
    const after = await redisCounters(url);
    // Then the nodes' side: one push takes every queue; its positions are written by the next flush.
    await engine.takeMany(ids);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const flushed = await redisCounters(url);
    const cpu = after.cpu - before.cpu;
    return {
      subscribers,
      publishes,
      redisCpuUsPerPublish: (cpu / publishes) * 1e6,
      commandsPerPublish: (after.commands - before.commands - 1) / publishes,
      redisCpuPer100k: (cpu / (publishes * subscribers)) * 100_000,
      positionFlushUsPerSession: ((flushed.cpu - after.cpu) / subscribers) * 1e6,
      publishesPerSec: publishes / (elapsed / 1000),
    };
  } finally {
    await engine.close();
  }
}
