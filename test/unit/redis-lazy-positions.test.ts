/**
 * Lazy positions (lib/engines/redis/positions.ts `LazyPositions`): what a
 * flush sends, in how many scripts, and that a failed flush keeps the
 * positions for the next one without putting back older ones over newer.
 * The Runner is an in-memory stand-in recording script calls (what
 * POSITIONS does in Redis is test/engine-redis.test.ts's); the flush
 * interval runs on mocked timers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../lib/engines/redis/keys.js';
import { LocalSession } from '../../lib/engines/redis/local-session.js';
import { LazyPositions } from '../../lib/engines/redis/positions.js';
import type { Runner } from '../../lib/engines/redis/runner.js';

function setup(options: { cluster?: boolean; fail?: () => boolean } = {}) {
  const calls: Array<{ keys: readonly string[]; args: readonly string[] }> = [];
  const failures: unknown[] = [];
  const runner = {
    isCluster: options.cluster ?? false,
    ready: true,
    failed(_what: string, err: unknown): void {
      failures.push(err);
    },
    run(_script: unknown, keys: readonly string[], args: readonly string[]): Promise<unknown> {
      calls.push({ keys: [...keys], args: [...args] });
      return options.fail?.() ? Promise.reject(new Error('down')) : Promise.resolve(1);
    },
  } as unknown as Runner;
  const keys = new Keys('t:');
  const positions = new LazyPositions(runner, keys);
  return { positions, calls, failures, keys };
}

function pushed(id: string, lazy: Array<[string, string]>): LocalSession {
  const s = new LocalSession(id, false, 3, 0, '0-0', Date.now() + 60_000);
  s.lazy = new Map(lazy);
  return s;
}

test('a flush writes every pushed session in one script on a single Redis, and nothing twice', async () => {
  const { positions, calls, keys } = setup();
  const a = pushed('a', [['', '1-0'], ['/x', '2-0']]);
  const b = pushed('b', [['/y', '5-0']]);
  positions.add(a);
  positions.add(b);
  positions.add(a);
  await positions.flush();
  assert.equal(calls.length, 1);
  const bucketA = keys.bucket('a');
  const bucketB = keys.bucket('b');
  const expectedKeys = bucketA === bucketB ? [bucketA] : [bucketA, bucketB];
  assert.deepEqual(calls[0]?.keys, expectedKeys);
  assert.deepEqual(calls[0]?.args, ['t:node:', '1', 'a', '3', '2', '', '1-0', '/x', '2-0', String(expectedKeys.indexOf(bucketB) + 1), 'b', '3', '1', '/y', '5-0']);
  assert.equal(a.lazy, undefined);
  await positions.flush();
  assert.equal(calls.length, 1, 'nothing left to write');
});

test('on a Cluster, one script per bucket', async () => {
  const { positions, calls, keys } = setup({ cluster: true });
  const ids: string[] = [];
  for (let i = 0; ids.length < 2; i++) if (!ids.some((id) => keys.bucket(id) === keys.bucket(`s${i}`))) ids.push(`s${i}`);
  for (const id of ids) positions.add(pushed(id, [['', '1-0']]));
  await positions.flush();
  assert.deepEqual(calls.map((c) => c.keys), ids.map((id) => [keys.bucket(id)]));
});

test('a failed flush keeps the positions for the next one, under newer ones taken meanwhile', async () => {
  let failing = true;
  const { positions, calls, failures } = setup({ fail: () => failing });
  const a = pushed('a', [['', '1-0'], ['/x', '2-0']]);
  positions.add(a);
  const flushing = positions.flush();
  // A push meanwhile moved /x further.
  a.lazy = new Map([['/x', '3-0']]);
  await flushing;
  assert.equal(failures.length, 1);
  assert.deepEqual([...(a.lazy ?? [])], [['/x', '3-0'], ['', '1-0']]);
  failing = false;
  await positions.flush();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]?.args.slice(2), ['a', '3', '2', '/x', '3-0', '', '1-0']);
});

test('a gone session is not written; the timer flushes every interval', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { positions, calls } = setup();
  const gone = pushed('g', [['', '1-0']]);
  gone.gone = true;
  positions.add(gone);
  positions.add(pushed('a', [['', '1-0']]));
  positions.start(100);
  t.mock.timers.tick(99);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls.length, 0);
  t.mock.timers.tick(1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]?.args.slice(2), ['a', '3', '1', '', '1-0']);
  positions.stop();
});
