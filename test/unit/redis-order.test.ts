/**
 * CallOrder (lib/engines/redis/order.ts): answers settle in call order,
 * whatever order Redis answers them in; a failure keeps its place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallOrder } from '../../lib/engines/redis/order.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Let every pending promise callback run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('a later answer waits for every earlier call, then all settle in call order', async () => {
  const order = new CallOrder();
  const a = deferred<string>();
  const b = deferred<string>();
  const c = deferred<string>();
  const settled: string[] = [];
  const calls = [a, b, c].map((d) => order.ordered(d.promise).then((v) => settled.push(v)));
  assert.equal(order.pending, 3);
  c.resolve('c');
  b.resolve('b');
  await flush();
  assert.deepEqual(settled, []);
  assert.equal(order.pending, 3);
  a.resolve('a');
  await Promise.all(calls);
  assert.deepEqual(settled, ['a', 'b', 'c']);
  assert.equal(order.pending, 0);
});

test('an answer in order settles at once, without waiting for later calls', async () => {
  const order = new CallOrder();
  const a = deferred<number>();
  const b = deferred<number>();
  const first = order.ordered(a.promise);
  void order.ordered(b.promise);
  a.resolve(1);
  assert.equal(await first, 1);
  assert.equal(order.pending, 1);
  b.resolve(2);
  await flush();
  assert.equal(order.pending, 0);
});

test('a failure is passed on as it came, in its turn, and does not block later calls', async () => {
  const order = new CallOrder();
  const a = deferred<string>();
  const b = deferred<string>();
  const c = deferred<string>();
  const events: string[] = [];
  const err = new Error('boom');
  const pa = order.ordered(a.promise).then((v) => events.push(v));
  const pb = order.ordered(b.promise).then(
    () => events.push('b?'),
    (e: unknown) => events.push(e === err ? 'b failed' : 'other'),
  );
  const pc = order.ordered(c.promise).then((v) => events.push(v));
  c.resolve('c');
  b.reject(err);
  await flush();
  assert.deepEqual(events, []);
  a.resolve('a');
  await Promise.all([pa, pb, pc]);
  assert.deepEqual(events, ['a', 'b failed', 'c']);
  assert.equal(order.pending, 0);
});
