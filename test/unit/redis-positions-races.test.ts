/**
 * Races between lazy position flushes (lib/engines/redis/positions.ts)
 * and the rest of a session's life, found in review: close while a closed
 * socket's flush follows the timer's, and a failed flush next to a take
 * that wrote a newer position. The Runner stand-in applies POSITIONS's
 * writes when each call is answered; that POSITIONS itself only moves a
 * position forward is tested against Redis (test/redis-positions.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../lib/engines/redis/keys.js';
import { LocalSession, makeEntry } from '../../lib/engines/redis/local-session.js';
import { LazyPositions } from '../../lib/engines/redis/positions.js';
import type { Runner } from '../../lib/engines/redis/runner.js';

const limits = { maxQueue: 1000, maxQueueBytes: 1 << 20 };
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A runner whose POSITIONS calls wait to be answered, applying their writes to `redis` (id -> src -> pos) when answered. */
function heldRunner() {
  const answers: Array<(ok: boolean) => void> = [];
  const redis = new Map<string, Map<string, string>>();
  const runner = {
    isCluster: false,
    ready: true,
    failed(): void {},
    run(_s: unknown, _k: readonly string[], args: readonly string[]): Promise<unknown> {
      return new Promise((resolve, reject) => answers.push((ok) => {
        if (!ok) return reject(new Error('down'));
        for (let i = 1; i < args.length; ) {
          const id = String(args[i + 1]);
          const n = Number(args[i + 3]);
          for (let j = 0; j < n; j++) {
            const m = redis.get(id) ?? new Map();
            m.set(String(args[i + 4 + 2 * j]), String(args[i + 5 + 2 * j]));
            redis.set(id, m);
          }
          i += 4 + 2 * n;
        }
        resolve(1);
      }));
    },
  } as unknown as Runner;
  return { runner, answers, redis };
}

function pushed(id: string, src: string, pos: string): LocalSession {
  const s = new LocalSession(id, false, 3, 0, '0-0', Date.now() + 60_000);
  s.lazy = new Map([[src, pos]]);
  return s;
}

test('flushAll (close) waits for a closed socket\'s flush that starts right after the timer\'s', async () => {
  const { runner, answers } = heldRunner();
  const positions = new LazyPositions(runner, new Keys('t:'));
  positions.add(pushed('a', '', '1-0'));
  const timer = positions.flush(); // the timer's flush, under way
  await turn();
  positions.soon(pushed('d', '', '2-0')); // a socket closes meanwhile
  await turn(); // #flushSoon now waits for the timer's flush
  let closed = false;
  const closing = positions.flushAll().then(() => (closed = true)); // engine.close
  answers[0]?.(true);
  await timer;
  await turn();
  assert.equal(answers.length, 2, "d's script was sent");
  assert.equal(closed, false, "flushAll should wait for d's script before close goes on to runner.close()");
  answers[1]?.(true);
  await closing;
});

test('a failed flush does not put back a position older than what a take wrote meanwhile', async () => {
  const { runner, answers, redis } = heldRunner();
  const positions = new LazyPositions(runner, new Keys('t:'));
  const s = new LocalSession('s', false, 3, 0, '0-0', Date.now() + 60_000);
  s.follow('/p', '1-0');
  s.applyLog('/p', [makeEntry('/p', '2-0', '"m2"', 'x.1', undefined)], limits);
  s.takeLazily(limits);
  positions.add(s);
  const flushing = positions.flush();
  await turn();
  s.applyLog('/p', [makeEntry('/p', '3-0', '"m3"', 'x.2', undefined)], limits);
  const take = s.prepare(undefined, limits, false);
  redis.set('s', new Map([['/p', '3-0']]));
  s.commit(take);
  answers[0]?.(false);
  await flushing;
  const next = positions.flush();
  await turn();
  answers[1]?.(true);
  await next;
  assert.equal(redis.get('s')?.get('/p'), '3-0', 'the retry wrote 2-0 over 3-0');
});
