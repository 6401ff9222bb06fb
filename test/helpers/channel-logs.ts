/**
 * Run a Redis test file a second time with the RedisEngine option
 * `channelLogs: 'shard'` (one log shared by every channel, wildcard
 * patterns keeping their own). Each `test/redis-shard-*.test.ts` is one
 * line:
 *
 *   await onShardLogs('./engine-redis.test.js', import.meta.url);
 *
 * It sets {@link CHANNEL_LOGS_ENV} in this process (the processes the
 * tests fork inherit it: helpers/redis-node.ts, helpers/publisher-worker.ts)
 * and imports the test file, whose tests then run in this file's process
 * as if they were its own. Every place a test builds a RedisEngine or a
 * RedisPublisher on one Redis spreads {@link testChannelLogs} into its
 * options, so the default run (the variable unset) builds them exactly as
 * before. A Redis Cluster refuses `'shard'` for now: the files skip their
 * Cluster parts when {@link shardLogs} (see {@link onClusterSkip}).
 */
import assert from 'node:assert/strict';
import type { ChannelLogs } from '../../lib/engines/redis/index.js';

/** The environment variable that selects the layout of a test run: `pattern` (or unset) or `shard`. */
export const CHANNEL_LOGS_ENV = 'BAYEUX_TEST_CHANNEL_LOGS';

/** The layout this run tests: `'pattern'` unless {@link CHANNEL_LOGS_ENV} says `shard`. */
export function channelLogsMode(): ChannelLogs {
  const raw = process.env[CHANNEL_LOGS_ENV];
  if (raw === undefined || raw === '' || raw === 'pattern') return 'pattern';
  if (raw === 'shard') return 'shard';
  throw new TypeError(`${CHANNEL_LOGS_ENV} must be 'pattern' or 'shard', not ${JSON.stringify(raw)}`);
}

/** Whether this run tests the shard layout. */
export function shardLogs(): boolean {
  return channelLogsMode() === 'shard';
}

/**
 * The options fragment to spread into a RedisEngine's or RedisPublisher's
 * options: `{ channelLogs: 'shard' }` in a shard run, `{}` otherwise (the
 * engine's default, so the default run is unchanged).
 */
export function testChannelLogs(): { channelLogs?: ChannelLogs } {
  return shardLogs() ? { channelLogs: 'shard' } : {};
}

/** `{ skip }` for a describe/it on a Redis Cluster: set in a shard run (a Cluster refuses the shard layout for now). */
export function onClusterSkip(): { skip?: string } {
  return shardLogs() ? { skip: 'channelLogs \'shard\' is refused on a Redis Cluster' } : {};
}

/** Import `file` (relative to `from`, a test file's `import.meta.url`) with every engine on the shard layout. */
export async function onShardLogs(file: string, from: string): Promise<void> {
  process.env[CHANNEL_LOGS_ENV] = 'shard';
  assert.deepEqual(testChannelLogs(), { channelLogs: 'shard' }, 'engines of this run get channelLogs: \'shard\'');
  await import(new URL(file, from).href);
}
