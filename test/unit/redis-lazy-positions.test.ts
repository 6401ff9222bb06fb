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
import { LocalSession, makeEntry } from '../../lib/engines/redis/local-session.js';
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

const limits = { maxQueue: 1000, maxQueueBytes: 1 << 20 };

/** A session that got one message at each (source, position) and was pushed them (a lazy take): they wait for a flush. */
function pushed(id: string, lazy: Array<[string, string]>): LocalSession {
  const s = new LocalSession(id, false, 3, 0, '0-0', Date.now() + 60_000);
  for (const [src, position] of lazy) {
    if (src !== '' && !s.follows(src)) s.follow(src, '0-0');
    s.apply(makeEntry(src, position, '"m"', `${id}.${src}.${position}`, undefined), limits);
  }
  s.takeLazily(limits);
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
  assert.deepEqual(calls[0]?.args, ['t:node:', '', '', '', '', '1', 'a', '3', '', '2', '', '1-0', '/x', '2-0', String(expectedKeys.indexOf(bucketB) + 1), 'b', '3', '', '1', '/y', '5-0']);
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
  a.apply(makeEntry('/x', '3-0', '"m"', 'a.x.3', undefined), limits);
  a.takeLazily(limits);
  await flushing;
  assert.equal(failures.length, 1);
  assert.deepEqual([...(a.lazy ?? [])], [['/x', '3-0'], ['', '1-0']]);
  failing = false;
  await positions.flush();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]?.args.slice(6), ['a', '3', '', '2', '/x', '3-0', '', '1-0']);
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
  assert.deepEqual(calls[0]?.args.slice(6), ['a', '3', '', '1', '', '1-0']);
  positions.stop();
});

test('a big flush goes in scripts of 100 sessions, one after another; a failure leaves that script and the later ones to the next flush', async () => {
  const calls: Array<{ sessions: number; answer: (ok: boolean) => void }> = [];
  const failures: unknown[] = [];
  const runner = {
    isCluster: false,
    ready: true,
    failed(_what: string, err: unknown): void {
      failures.push(err);
    },
    run(_script: unknown, _keys: readonly string[], args: readonly string[]): Promise<unknown> {
      return new Promise((resolve, reject) => {
        // Per session: bucket index, id, gen, seen mark, n, then n pairs.
        let sessions = 0;
        for (let i = 5; i < args.length; i += 5 + 2 * Number(args[i + 4])) sessions++;
        calls.push({ sessions, answer: (ok) => (ok ? resolve(sessions) : reject(new Error('down'))) });
      });
    },
  } as unknown as Runner;
  const positions = new LazyPositions(runner, new Keys('t:'));
  const sessions = Array.from({ length: 250 }, (_, i) => pushed(`s${i}`, [['', `${i + 1}-0`]]));
  for (const s of sessions) positions.add(s);
  const flushing = positions.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls.map((c) => c.sessions), [100], 'the second script waits for the first');
  calls[0]?.answer(true);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls.map((c) => c.sessions), [100, 100]);
  calls[1]?.answer(false);
  await flushing;
  assert.equal(calls.length, 2, 'the third script is not sent after a failure');
  assert.equal(failures.length, 1);
  assert.equal(sessions.filter((s) => s.lazy).length, 150, 'the failed script\'s sessions and the unsent ones are kept');
  assert.equal(sessions.slice(0, 100).some((s) => s.lazy), false, 'the written ones are not');
  const next = positions.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls.slice(2).map((c) => c.sessions), [100]);
  calls[2]?.answer(true);
  await new Promise((resolve) => setImmediate(resolve));
  calls[3]?.answer(true);
  await next;
  assert.deepEqual(calls.slice(2).map((c) => c.sessions), [100, 50]);
  assert.equal(sessions.some((s) => s.lazy), false);
});

test('flushAll (close) waits for a flush under way, then writes what was pushed meanwhile', async () => {
  const answers: Array<() => void> = [];
  const written: string[] = [];
  const runner = {
    isCluster: false,
    ready: true,
    failed(): void {},
    run(_script: unknown, _keys: readonly string[], args: readonly string[]): Promise<unknown> {
      return new Promise((resolve) => answers.push(() => {
        written.push(String(args[6]));
        resolve(1);
      }));
    },
  } as unknown as Runner;
  const positions = new LazyPositions(runner, new Keys('t:'));
  positions.add(pushed('a', [['', '1-0']]));
  const timer = positions.flush();
  await new Promise((resolve) => setImmediate(resolve));
  positions.add(pushed('b', [['', '2-0']]));
  const closing = positions.flushAll();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(answers.length, 1, 'the second flush waits for the first');
  answers[0]?.();
  await timer;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(answers.length, 2);
  answers[1]?.();
  await closing;
  assert.deepEqual(written, ['a', 'b']);
});

test('soon (a socket closed) writes at the end of the turn, with the other closed ones only, or after the flush under way', async () => {
  const answers: Array<() => void> = [];
  const written: string[][] = [];
  const runner = {
    isCluster: false,
    ready: true,
    failed(): void {},
    run(_script: unknown, _keys: readonly string[], args: readonly string[]): Promise<unknown> {
      const ids: string[] = [];
      for (let i = 5; i < args.length; i += 5 + 2 * Number(args[i + 4])) ids.push(String(args[i + 1]));
      return new Promise((resolve) => answers.push(() => {
        written.push(ids);
        resolve(ids.length);
      }));
    },
  } as unknown as Runner;
  const positions = new LazyPositions(runner, new Keys('t:'));
  const a = pushed('a', [['', '1-0']]);
  const b = pushed('b', [['', '2-0']]);
  const c = pushed('c', [['', '3-0']]);
  positions.add(a);
  positions.add(c);
  positions.soon(b);
  positions.soon(c);
  const nothing = pushed('n', []);
  nothing.lazy = undefined;
  positions.soon(nothing);
  assert.equal(answers.length, 0, 'not before the end of the turn');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(answers.length, 1, 'one script for both closed sockets');
  // Another socket closes while that flush is under way: written after it, without the timer.
  const d = pushed('d', [['', '4-0']]);
  positions.soon(d);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(answers.length, 1);
  answers[0]?.();
  await waitUntil(() => answers.length === 2);
  answers[1]?.();
  await waitUntil(() => written.length === 2);
  assert.deepEqual(written, [['b', 'c'], ['d']], 'a session whose socket is open waits for the timer');
  assert.deepEqual([b.lazy, c.lazy, d.lazy], [undefined, undefined, undefined]);
  assert.ok(a.lazy);
  const timer = positions.flushAll();
  await waitUntil(() => answers.length === 3);
  answers[2]?.();
  await timer;
  assert.deepEqual(written[2], ['a']);
});

async function waitUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(done(), 'within 100 turns');
}

/** Shard logs: a node's seen (positions by node), with the shard's last entry applied here set by the test. */
function seenSetup(options: { fail?: () => boolean } = {}) {
  const calls: Array<{ keys: readonly string[]; args: readonly string[] }> = [];
  const runner = {
    isCluster: false,
    ready: true,
    failed(): void {},
    run(_script: unknown, keys: readonly string[], args: readonly string[]): Promise<unknown> {
      calls.push({ keys: [...keys], args: [...args] });
      return options.fail?.() ? Promise.reject(new Error('down')) : Promise.resolve(1);
    },
  } as unknown as Runner;
  const state = { last: '5-1023' as string | undefined };
  const positions = new LazyPositions(runner, new Keys('t:'), { node: 'n1', last: () => state.last, retention: () => 60_000 });
  /** Each call's sessions: [id, mark, positions]. */
  const sessionsOf = (args: readonly string[]): Array<[string, string, string[]]> => {
    const out: Array<[string, string, string[]]> = [];
    for (let i = 5; i < args.length; i += 5 + 2 * Number(args[i + 4])) out.push([String(args[i + 1]), String(args[i + 3]), args.slice(i + 5, i + 5 + 2 * Number(args[i + 4]))]);
    return out;
  };
  return { positions, calls, state, sessionsOf };
}

test('shard logs: a session that keeps up joins the node\'s seen once, then costs no write; the seen goes last, when it moved', async () => {
  const { positions, calls, state, sessionsOf } = seenSetup();
  const a = pushed('a', [['/x', '2-0']]);
  positions.add(a);
  await positions.flush();
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]?.args.slice(0, 5), ['t:node:', 'n1', 't:{t0}:seen:n1', '5-1023', '600000']);
  assert.deepEqual(sessionsOf(calls[0]?.args ?? []), [['a', 'j1', []]], 'its channel\'s position is the seen: not written (joined if Redis has its one subscription)');
  // More pushes: nothing to write for the session, only the seen, which moved.
  a.apply(makeEntry('/x', '6-0', '"m"', 'a.x.6', undefined), limits);
  a.takeLazily(limits);
  positions.add(a);
  state.last = '6-1023';
  await positions.flush();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]?.args.slice(2, 4), ['t:{t0}:seen:n1', '6-1023']);
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), []);
  await positions.flush();
  assert.equal(calls.length, 2, 'the seen did not move: nothing sent');
});

test('shard logs: a following session\'s box and wildcard positions are its own, still written', async () => {
  const { positions, calls, sessionsOf } = seenSetup();
  const a = pushed('a', [['/x', '2-0']]);
  positions.add(a);
  await positions.flush();
  for (const [src, position] of [['', '3-0'], ['/w/*', '4-0'], ['/x', '5-0']] as const) {
    if (src !== '' && !a.follows(src)) a.follow(src, '0-0');
    a.apply(makeEntry(src, position, '"m"', `a.${src}.${position}`, undefined), limits);
  }
  a.takeLazily(limits);
  positions.add(a);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), [['a', '', ['', '3-0', '/w/*', '4-0']]]);
});

test('shard logs: a following session that falls behind leaves first, with its channels\' own positions, before the seen moves past it', async () => {
  const { positions, calls, state, sessionsOf } = seenSetup();
  const a = pushed('a', [['/x', '2-0']]);
  const b = pushed('b', [['/y', '3-0']]);
  positions.add(a);
  positions.add(b);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[0]?.args ?? []).map(([id, mark]) => [id, mark]), [['a', 'j1'], ['b', 'j1']]);
  // a gets a message it was not pushed (its queue holds it at the flush); b is pushed more.
  a.apply(makeEntry('/x', '7-0', '"m"', 'a.x.7', undefined), limits);
  b.apply(makeEntry('/y', '7-1', '"m"', 'b.y.7', undefined), limits);
  b.takeLazily(limits);
  positions.add(b);
  state.last = '7-1023';
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), [['a', 'l', ['/x', '2-0']]], 'what a was pushed, not what waits');
  assert.deepEqual(calls[1]?.args.slice(2, 4), ['t:{t0}:seen:n1', '7-1023'], 'in the same script, after it');
  // Once pushed again and keeping up, a joins again.
  a.takeLazily(limits);
  positions.add(a);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[2]?.args ?? []), [['a', 'j1', []]]);
});

test('shard logs: a closed socket or a gone session leaves; a leave that failed is sent again and holds the seen back', async () => {
  let failing = false;
  const { positions, calls, state, sessionsOf } = seenSetup({ fail: () => failing });
  const a = pushed('a', [['/x', '2-0']]);
  const g = pushed('g', [['/y', '2-1']]);
  positions.add(a);
  positions.add(g);
  await positions.flush();
  positions.soon(a);
  await waitUntil(() => calls.length === 2);
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), [['a', 'l', ['/x', '2-0']]]);
  assert.equal(calls[1]?.args[2], '', 'a closed socket\'s flush writes no seen');
  g.gone = true;
  failing = true;
  state.last = '8-1023';
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[2]?.args ?? []), [['g', 'l', ['/y', '2-1']]]);
  failing = false;
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[3]?.args ?? []), [['g', 'l', ['/y', '2-1']]], 'sent again');
  await positions.flush();
  assert.equal(calls.length, 4, 'nobody follows the seen any more: nothing to write');
});

test('shard logs: no join while the shard reads a gap (no seen), and a session with something queued does not join', async () => {
  const { positions, calls, state, sessionsOf } = seenSetup();
  state.last = undefined;
  const a = pushed('a', [['/x', '2-0']]);
  positions.add(a);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[0]?.args ?? []), [['a', '', ['/x', '2-0']]]);
  assert.equal(calls[0]?.args[2], '');
  state.last = '9-1023';
  a.apply(makeEntry('/x', '9-0', '"m"', 'a.x.9', undefined), limits);
  a.lazy = new Map([['/x', '2-0']]);
  positions.add(a);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), [['a', '', ['/x', '2-0']]]);
});

test('shard logs: a join that failed is sent again while the session keeps up; a leave that failed is sent again with its positions', async () => {
  let failing = true;
  const { positions, calls, state, sessionsOf } = seenSetup({ fail: () => failing });
  const a = pushed('a', [['', '1-0'], ['/x', '2-0']]);
  positions.add(a);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[0]?.args ?? []), [['a', 'j1', ['', '1-0']]]);
  failing = false;
  state.last = '6-1023';
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), [['a', 'j1', []], ['a', '', ['', '1-0']]], 'the join again, and the box position kept');
  assert.equal(calls[1]?.args[3], '6-1023');
  // Falls behind; its leave fails: sent again, with what it was pushed.
  a.apply(makeEntry('/x', '7-0', '"m"', 'a.x.7', undefined), limits);
  failing = true;
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[2]?.args ?? []), [['a', 'l', ['/x', '2-0']]]);
  failing = false;
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[3]?.args ?? []), [['a', 'l', ['/x', '2-0']]]);
});

test('shard logs: a new subscription stops a session following the seen (SUBSCRIBE_COMMIT did in Redis) until it joins again', async () => {
  const { positions, calls, sessionsOf } = seenSetup();
  const a = pushed('a', [['/x', '2-0']]);
  positions.add(a);
  await positions.flush();
  positions.subscribed(a);
  a.follow('/y', '3-0');
  a.apply(makeEntry('/y', '4-0', '"m"', 'a.y.4', undefined), limits);
  a.takeLazily(limits);
  positions.add(a);
  await positions.flush();
  assert.deepEqual(sessionsOf(calls[1]?.args ?? []), [['a', 'j2', []]], 'a join with both subscriptions, no leave');
});
