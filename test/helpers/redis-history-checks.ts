/**
 * History checks that need two RedisEngine nodes on one store, shared by
 * the one-Redis and the Cluster suites (test/engine-redis.test.ts,
 * test/redis-cluster-engine.test.ts).
 */
import assert from 'node:assert/strict';
import type { HistorySettings } from '../../lib/engines/engine.js';
import type { RedisEngine } from '../../lib/engines/redis/index.js';
import { expand } from '../../lib/server/expand.js';
import { sleep } from './wait.js';

/** A copy's text as the Server writes it for a history channel: the position's place marked before the closing `}}`. */
export function marked(data: unknown): string {
  return JSON.stringify({ data }).slice(0, -1) + ',"ext":{"position":}}';
}

/**
 * Recover through `other`, a node that does not hold the session (`holder`
 * does), while `other` publishes on: the holder queues the recovered
 * messages first, then the live ones, each once.
 */
export async function checkRecoverThroughOtherNode(holder: RedisEngine, other: RedisEngine, settings: HistorySettings): Promise<void> {
  const history = { channel: '/k/held', ...settings, tail: 2 };
  for (let i = 1; i <= 5; i++) await other.publish(expand('/k/held'), marked(i), { history });
  const { epoch } = await other.history('/k/held', settings, {});
  const id = await holder.createSession({ ack: false, ttl: 10_000 });
  assert.equal(await holder.touch(id, 10_000), true);
  const recovering = other.recover(id, '/k/held', { epoch, offset: 2 }, settings);
  const live: Array<Promise<number>> = [];
  for (let i = 6; i <= 10; i++) live.push(other.publish(expand('/k/held'), marked(i), { history }));
  assert.deepEqual(await recovering, { recovered: true, epoch, offset: 5, missed: 3 });
  await Promise.all(live);
  const data: unknown[] = [];
  for (let round = 0; round < 100 && data.length < 8; round++) {
    data.push(...((await holder.take(id))?.messages ?? []).map((m) => (JSON.parse(m) as { data: unknown }).data));
    if (data.length < 8) await sleep(20);
  }
  assert.deepEqual(data, [3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(await other.subscriptions(id), ['/k/held']);
}
