/**
 * Held connects: one shared deadline structure instead of a timer, an
 * AbortSignal and a suspended async chain each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Holds } from '../lib/server/hold.js';
import { sleep } from './helpers/wait.js';

test('connects held for different durations expire in deadline order, each once', async () => {
  const holds = new Holds();
  const order: string[] = [];
  const a = holds.add('a', 120, 0);
  const b = holds.add('b', 40, 0);
  const c = holds.add('c', 120, 0);
  const d = holds.add('d', 80, 0);
  for (const [name, h] of [['a', a], ['b', b], ['c', c], ['d', d]] as const) h.onRelease((_h, aborted) => order.push(`${name}${aborted ? '!' : ''}`));
  assert.equal(holds.size, 4);
  await sleep(250);
  assert.deepEqual(order, ['b', 'd', 'a', 'c']);
  assert.equal(holds.size, 0);
});

test('release and abort answer at once, once, and take the connect out of the deadline lists', async () => {
  const holds = new Holds();
  const seen: string[] = [];
  const a = holds.add('a', 50, 0);
  const b = holds.add('b', 50, 0);
  a.onRelease((_h, aborted) => seen.push(`a${aborted ? '!' : ''}`));
  b.release(true);
  b.release();
  b.onRelease((_h, aborted) => seen.push(`b${aborted ? '!' : ''}`)); // registered after: called at once
  a.release();
  assert.deepEqual(seen, ['b!', 'a']);
  assert.equal(holds.size, 0);
  await sleep(80);
  assert.deepEqual(seen, ['b!', 'a'], 'nothing fires twice');
});

test('releaseAll answers every held connect (server closing)', () => {
  const holds = new Holds();
  let n = 0;
  for (let i = 0; i < 1000; i++) holds.add(i, 1000 + (i % 3), 0).onRelease(() => void n++);
  holds.releaseAll();
  assert.equal(n, 1000);
  assert.equal(holds.size, 0);
});
