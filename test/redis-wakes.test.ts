/**
 * The Redis engine's wake pacing (lib/engines/redis/wakes.ts): a wake after
 * a quiet spell is not delayed, a steady flow is gathered into one wake
 * per interval, and a node's own publishes in flight are waited for.
 *
 * Time is the test's: node:test's mocked timers stand in for setTimeout and
 * setImmediate, and the pacing reads a clock that moves only with them, so
 * no assertion depends on how busy the machine is.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { LocalSession } from '../lib/engines/redis/local-session.js';
import { WAKE_INTERVAL_MS, WAKE_MAX_DELAY_MS, Wakes } from '../lib/engines/redis/wakes.js';

function session(id: string): LocalSession {
  return new LocalSession(id, false, 1, 0, '0-0', Date.now() + 60_000);
}

/** Wakes whose timers and clock the test moves; `told` records each wake and when (test time) it came. */
function paced(t: TestContext, busy = () => false) {
  t.mock.timers.enable({ apis: ['setTimeout', 'setImmediate'] });
  let now = 1000;
  const told: Array<{ ids: readonly string[]; at: number }> = [];
  const host = { wake: (ids: readonly string[]) => void told.push({ ids: [...ids], at: now }) };
  // The in-flight count the wakes read: what `busy` says at that moment.
  const order = { get pending() { return busy() ? 1 : 0; } };
  const wakes = new Wakes(host, order, () => now);
  /** Move the clock and run the timers that fall due, in order, `step` ms at a time. */
  const advance = (ms: number, step = 1) => {
    for (let moved = 0; moved < ms; moved += step) {
      now += step;
      t.mock.timers.tick(step);
    }
  };
  /** Run what is due now (setImmediate callbacks and expired timers) without moving the clock. */
  const settle = () => t.mock.timers.tick(0);
  return { told, wakes, advance, settle };
}

test('a wake after a quiet spell goes out at the end of the same turn, not after a timer', (t) => {
  const { told, wakes, settle } = paced(t);
  const a = session('a');
  wakes.session(a);
  wakes.session(a);
  wakes.id('gone');
  assert.equal(told.length, 0, 'not synchronously: the rest of the turn is gathered too');
  settle();
  assert.deepEqual(told.map((w) => [...w.ids].sort()), [['a', 'gone']]);
  assert.equal(told[0]?.at, 1000, 'no time passed');
  assert.equal(a.waking, false);
});

test('under a steady flow the Server is woken at most once per interval, with everything gathered', (t) => {
  const { told, wakes, advance, settle } = paced(t);
  const [a, b, c] = [session('a'), session('b'), session('c')];
  wakes.session(a);
  wakes.session(b);
  settle();
  assert.equal(told.length, 1);
  const first = told[0]?.at ?? NaN;

  advance(2);
  wakes.session(b);
  wakes.session(c);
  wakes.session(b);
  settle();
  assert.equal(told.length, 1, 'b was woken 2 ms ago: the next wake waits for the interval');
  advance(WAKE_INTERVAL_MS - 3);
  assert.equal(told.length, 1, 'still within the interval');
  advance(1);
  assert.equal(told.length, 2, 'woken once the interval is over');
  assert.deepEqual(told[1]?.ids, ['b', 'c'], 'everything gathered, each once');
  assert.equal((told[1]?.at ?? NaN) - first, WAKE_INTERVAL_MS);

  // After a quiet spell longer than the interval, no wait again.
  advance(WAKE_INTERVAL_MS + 2);
  wakes.session(a);
  settle();
  assert.equal(told.length, 3);
});

test('a session not woken lately goes at the end of the turn, even right after a wake of others (many small channels)', (t) => {
  const { told, wakes, advance, settle } = paced(t);
  const sessions = Array.from({ length: 5 }, (_, i) => session(`s${i}`));
  for (const s of sessions) {
    wakes.session(s);
    settle();
    advance(1);
  }
  assert.deepEqual(told.map((w) => w.ids), [['s0'], ['s1'], ['s2'], ['s3'], ['s4']], 'one wake per turn, no pacing delay');
  assert.deepEqual(told.map((w) => w.at), [1000, 1001, 1002, 1003, 1004]);
  // The first of them again, 5 ms after its wake: paced to its interval.
  wakes.session(sessions[0] as LocalSession);
  settle();
  assert.equal(told.length, 5);
  advance(WAKE_INTERVAL_MS - 5);
  assert.equal(told.length, 6);
});

test("a node's own publishes in flight are waited for, a few ms at most", (t) => {
  let busy = true;
  const { told, wakes, advance, settle } = paced(t, () => busy);
  const start = 1000;
  wakes.session(session('a'));
  settle();
  assert.equal(told.length, 0, 'waits while its publishes are on their way');
  advance(WAKE_MAX_DELAY_MS - 1);
  assert.equal(told.length, 0, 'still waiting within the bound');
  advance(1);
  assert.equal(told.length, 1, 'woken at the bound although the publishes are still on their way');
  assert.equal((told[0]?.at ?? NaN) - start, WAKE_MAX_DELAY_MS);

  // The publishes answered: the wake goes out at the next step, not at the bound.
  advance(WAKE_INTERVAL_MS + 2);
  wakes.session(session('b'));
  settle();
  assert.equal(told.length, 1, 'waits for the publishes again');
  busy = false;
  advance(1);
  assert.equal(told.length, 2, 'woken at the first step after the publishes were answered');
  assert.deepEqual(told[1]?.ids, ['b']);
});
