/**
 * The Redis engine's wake pacing (lib/engines/redis/wakes.ts): a wake after
 * a quiet spell is not delayed, a steady flow is gathered into one wake
 * per interval, and a node's own publishes in flight are waited for.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeldSession } from '../lib/engines/redis/held-session.js';
import { WAKE_INTERVAL_MS, WAKE_MAX_DELAY_MS, Wakes } from '../lib/engines/redis/wakes.js';
import { waitFor } from './helpers/wait.js';

/** Node's timers may fire up to a millisecond early against performance.now(). */
const TIMER_SLACK_MS = 1.5;

function session(id: string): HeldSession {
  return new HeldSession(id, false, 1, 0, '0-0', Date.now() + 60_000);
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function recorder(busy = () => false) {
  const told: Array<{ ids: readonly string[]; at: number }> = [];
  const wakes = new Wakes((ids) => told.push({ ids: [...ids], at: performance.now() }), busy);
  return { told, wakes };
}

test('a wake after a quiet spell goes out at the end of the same turn, not after a timer', async () => {
  const { told, wakes } = recorder();
  const a = session('a');
  wakes.session(a);
  wakes.session(a);
  wakes.id('gone');
  assert.equal(told.length, 0, 'not synchronously: the rest of the turn is gathered too');
  await turn();
  assert.deepEqual(told.map((t) => [...t.ids].sort()), [['a', 'gone']]);
  assert.equal(a.waking, false);
});

test('under a steady flow the Server is woken at most once per interval, with everything gathered', async () => {
  const { told, wakes } = recorder();
  const [a, b, c] = [session('a'), session('b'), session('c')];
  wakes.session(a);
  await turn();
  assert.equal(told.length, 1);
  const first = (told[0] as { at: number }).at;
  wakes.session(b);
  wakes.session(c);
  wakes.session(b);
  await turn();
  // (Unless this process was starved past the interval meanwhile.)
  if (performance.now() - first < WAKE_INTERVAL_MS - TIMER_SLACK_MS) assert.equal(told.length, 1, 'the next wake waits for the interval');
  await waitFor(() => told.length === 2, { timeout: 2000, what: 'the paced wake' });
  const second = told[1] as { ids: readonly string[]; at: number };
  assert.deepEqual(second.ids, ['b', 'c']);
  assert.ok(second.at - first >= WAKE_INTERVAL_MS - TIMER_SLACK_MS, `paced: ${(second.at - first).toFixed(1)} ms after the first`);
  // After a quiet spell longer than the interval, no wait again.
  await new Promise((resolve) => setTimeout(resolve, WAKE_INTERVAL_MS + 2));
  wakes.session(a);
  await turn();
  assert.equal(told.length, 3);
});

test("a node's own publishes in flight are waited for, a few ms at most", async () => {
  let busy = true;
  const { told, wakes } = recorder(() => busy);
  const t0 = performance.now();
  wakes.session(session('a'));
  await turn();
  assert.equal(told.length, 0, 'waits while its publishes are on their way');
  await waitFor(() => told.length === 1, { timeout: 2000, every: 1, what: 'the wake despite publishes in flight' });
  const waited = (told[0] as { at: number }).at - t0;
  assert.ok(waited >= WAKE_MAX_DELAY_MS - TIMER_SLACK_MS && waited < 500, `waited ${waited.toFixed(1)} ms`);

  // The publishes answered: the wake goes out at the next step, not at the bound.
  await new Promise((resolve) => setTimeout(resolve, WAKE_INTERVAL_MS + 2));
  const t1 = performance.now();
  wakes.session(session('b'));
  setTimeout(() => { busy = false; }, 0);
  await waitFor(() => told.length === 2, { timeout: 2000, every: 1, what: 'the wake once the publishes are answered' });
  assert.deepEqual((told[1] as { ids: readonly string[] }).ids, ['b']);
  assert.ok((told[1] as { at: number }).at - t1 < 500);
});
