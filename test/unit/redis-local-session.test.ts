/**
 * A session's node-local copy (lib/engines/redis/held-session.ts): what it
 * queues, how it trims, and the positions a take writes (prepare), then
 * applies once Redis recorded them (commit). No Redis: the write triples
 * are checked as the take script would receive them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalSession, makeEntry, type Entry } from '../../lib/engines/redis/local-session.js';

const LIMITS = { maxQueue: 100, maxQueueBytes: 1 << 20 };

function session(ack = false, box = '0-0'): LocalSession {
  return new LocalSession('me', ack, 1, 0, box, Date.now() + 60_000);
}

function entry(src: string, id: string, text = `m${id}`, pub = '', except?: string[]): Entry {
  return makeEntry(src, id, text, pub, except);
}

test('apply queues entries after the cursor only, from the box and followed patterns', () => {
  const s = session();
  s.follow('/a', '5-0');
  assert.equal(s.apply(entry('/a', '5-0'), LIMITS), false, 'at the cursor');
  assert.equal(s.apply(entry('/a', '4-9'), LIMITS), false, 'before it');
  assert.equal(s.apply(entry('/b', '9-0'), LIMITS), false, 'not followed');
  assert.equal(s.apply(entry('/a', '6-0'), LIMITS), true);
  assert.equal(s.apply(entry('/a', '6-0'), LIMITS), false, 'applied once');
  assert.equal(s.apply(entry('', '1-0', 'boxed'), LIMITS), true);
  assert.deepEqual(s.queue.map((e) => e.text), ['m6-0', 'boxed']);
  assert.equal(s.bytes, 'm6-0'.length + 'boxed'.length);
  assert.equal(s.cursorOf('/a')?.id, '6-0');
  assert.equal(s.box.id, '1-0');
});

test('except and a publish reaching two patterns: queued once, excluded never', () => {
  const s = session();
  s.follow('/a/*', '0-0');
  s.follow('/a/**', '0-0');
  assert.equal(s.apply(entry('/a/*', '1-0', 'x', 'p1'), LIMITS), true);
  assert.equal(s.apply(entry('/a/**', '7-0', 'x', 'p1'), LIMITS), false, 'same publish through the other pattern');
  assert.equal(s.cursorOf('/a/**')?.id, '7-0', 'its cursor still moves');
  assert.equal(s.apply(entry('/a/*', '2-0', 'y', 'p2', ['other', 'me']), LIMITS), false);
  assert.deepEqual(s.queue.map((e) => e.text), ['x']);
});

test('applyLog skips entries up to the cursor and queues the rest in order', () => {
  const s = session();
  s.follow('/a', '2-0');
  const entries = ['1-0', '2-0', '3-0', '3-1'].map((id) => entry('/a', id));
  assert.equal(s.applyLog('/a', entries, LIMITS), true);
  assert.deepEqual(s.queue.map((e) => e.id), ['3-0', '3-1']);
  assert.equal(s.applyLog('/a', entries, LIMITS), false);
  assert.equal(s.applyLog('/b', [entry('/b', '9-0')], LIMITS), false);
});

test('while loading, entries wait in pending; a forced apply goes through', () => {
  const s = session();
  s.follow('/a', '0-0');
  s.pending = [];
  assert.equal(s.apply(entry('/a', '1-0'), LIMITS), false);
  assert.equal(s.applyLog('/a', [entry('/a', '2-0')], LIMITS), false);
  assert.deepEqual(s.pending.map((e) => e.id), ['1-0', '2-0']);
  assert.equal(s.queue.length, 0);
  assert.equal(s.apply(entry('/a', '1-0'), LIMITS, true), true);
});

test('trim keeps the newest maxQueue messages, then drops the oldest down to maxQueueBytes, keeping the last', () => {
  const s = session();
  s.follow('/a', '0-0');
  for (let i = 1; i <= 10; i++) s.apply(entry('/a', `${i}-0`, 'x'.repeat(i)), { maxQueue: 1000, maxQueueBytes: 1 << 20 });
  s.trim({ maxQueue: 4, maxQueueBytes: 1 << 20 });
  assert.deepEqual(s.queue.map((e) => e.id), ['7-0', '8-0', '9-0', '10-0']);
  assert.equal(s.dropped, 6);
  assert.equal(s.bytes, 7 + 8 + 9 + 10);
  s.trim({ maxQueue: 4, maxQueueBytes: 19 });
  assert.deepEqual(s.queue.map((e) => e.id), ['9-0', '10-0']);
  assert.equal(s.bytes, 19);
  s.trim({ maxQueue: 4, maxQueueBytes: 1 });
  assert.deepEqual(s.queue.map((e) => e.id), ['10-0'], 'the newest stays even over the bytes');
  assert.equal(s.dropped, 9);
});

test('the queue is trimmed only past a slack of max(16, maxQueue/8)', () => {
  const s = session();
  s.follow('/a', '0-0');
  const limits = { maxQueue: 8, maxQueueBytes: 1 << 20 };
  for (let i = 1; i <= 24; i++) s.apply(entry('/a', `${i}-0`), limits);
  assert.equal(s.queue.length, 24, 'at maxQueue + slack');
  s.apply(entry('/a', '25-0'), limits);
  assert.equal(s.queue.length, 8);
  assert.equal(s.dropped, 17);
});

test('a take without acks: every message, the moved positions, then commit empties the queue', () => {
  const s = session();
  s.follow('/a', '1-0');
  s.follow('/b', '1-0');
  s.apply(entry('/a', '2-0'), LIMITS);
  s.apply(entry('', '3-0', 'boxed'), LIMITS);
  const take = s.prepare(undefined, LIMITS);
  assert.deepEqual(take.messages, ['m2-0', 'boxed']);
  assert.deepEqual(take.writes, ['a', '', '3-0', 'a', '/a', '2-0']);
  assert.equal(take.batch, undefined);
  assert.equal(s.queue.length, 2, 'nothing changes before commit');
  // A message arriving between prepare and commit stays.
  s.apply(entry('/b', '4-0'), LIMITS);
  s.commit(take);
  assert.deepEqual(s.queue.map((e) => e.id), ['4-0']);
  assert.equal(s.bytes, 'm4-0'.length);
  assert.equal(s.ackedOf(''), '3-0');
  assert.equal(s.ackedOf('/a'), '2-0');
  const next = s.prepare(undefined, LIMITS);
  assert.deepEqual(next.writes, ['a', '/b', '4-0']);
});

test('dropped is reported by a take and counted down by its commit', () => {
  const s = session();
  s.follow('/a', '0-0');
  for (let i = 1; i <= 5; i++) s.apply(entry('/a', `${i}-0`), LIMITS);
  const limits = { maxQueue: 2, maxQueueBytes: 1 << 20 };
  const take = s.prepare(undefined, limits);
  assert.equal(take.dropped, 3);
  assert.deepEqual(take.messages, ['m4-0', 'm5-0']);
  s.commit(take);
  assert.equal(s.dropped, 0);
  assert.equal(s.queue.length, 0);
});

test('an acked session: sent positions first, acked ones when the batch is acknowledged, the batch sent again until then', () => {
  const s = session(true);
  s.follow('/a', '1-0');
  s.apply(entry('/a', '2-0'), LIMITS);
  s.apply(entry('/a', '3-0'), LIMITS);
  const first = s.prepare(undefined, LIMITS);
  assert.deepEqual(first.messages, ['m2-0', 'm3-0']);
  assert.deepEqual(first.writes, ['s', '/a', '3-0']);
  assert.equal(first.batch, 1);
  assert.equal(first.acking, false);
  s.commit(first);
  assert.equal(s.sent, 2);
  assert.equal(s.batch, 1);
  assert.equal(s.queue.length, 2, 'kept until acknowledged');

  // No ack (the client lost the reply): the same batch again, plus what came since.
  s.apply(entry('/a', '4-0'), LIMITS);
  const again = s.prepare(0, LIMITS);
  assert.equal(again.acking, false);
  assert.deepEqual(again.messages, ['m2-0', 'm3-0', 'm4-0']);
  assert.equal(again.batch, 2);
  s.commit(again);
  assert.equal(s.sent, 3);

  // Ack of batch 2: the acked positions are written, the acknowledged messages go.
  s.apply(entry('/a', '5-0'), LIMITS);
  const acking = s.prepare(2, LIMITS);
  assert.equal(acking.acking, true);
  assert.deepEqual(acking.writes, ['a', '/a', '4-0', 's', '/a', '5-0']);
  assert.deepEqual(acking.messages, ['m5-0']);
  assert.equal(acking.batch, 3);
  s.commit(acking);
  assert.deepEqual(s.queue.map((e) => e.id), ['5-0']);
  assert.equal(s.sent, 1);
  assert.equal(s.ackedOf('/a'), '4-0');
  assert.equal(s.sentOf('/a'), '5-0');
});

test('takeLazily returns every message and leaves the positions for the flush; the next take writes them', () => {
  const s = session();
  s.follow('/a', '1-0');
  s.apply(entry('/a', '2-0'), LIMITS);
  s.apply(entry('', '3-0', 'boxed'), LIMITS);
  const taken = s.takeLazily(LIMITS);
  assert.deepEqual(taken.messages, ['m2-0', 'boxed']);
  assert.equal(s.queue.length, 0);
  assert.equal(s.bytes, 0);
  assert.deepEqual([...(s.lazy ?? [])], [['', '3-0'], ['/a', '2-0']]);
  // Nothing new: a take writes what the flush has not written yet, and clears it on commit.
  const take = s.prepare(undefined, LIMITS);
  assert.deepEqual(take.messages, []);
  assert.deepEqual(take.writes, ['a', '', '3-0', 'a', '/a', '2-0']);
  s.commit(take);
  assert.equal(s.lazy, undefined);
  // A second lazy take with nothing moved leaves nothing to flush.
  s.takeLazily(LIMITS);
  assert.equal(s.lazy, undefined);
});

test('a lazy prepare and commit leaves its writes for the flush', () => {
  const s = session();
  s.follow('/a', '1-0');
  s.apply(entry('/a', '2-0'), LIMITS);
  const take = s.prepare(undefined, LIMITS, true);
  assert.equal(take.lazy, true);
  s.commit(take);
  assert.deepEqual([...(s.lazy ?? [])], [['/a', '2-0']]);
  assert.equal(s.ackedOf('/a'), '2-0');
});

test('unfollow forgets the pattern\'s positions: a take writes nothing for it', () => {
  const s = session(true);
  s.follow('/a', '1-0');
  s.apply(entry('/a', '2-0'), LIMITS);
  s.unfollow('/a');
  assert.equal(s.apply(entry('/a', '3-0'), LIMITS), false);
  const take = s.prepare(undefined, LIMITS);
  assert.deepEqual(take.writes, []);
});

test('patterns kept as one, a few, many (past the small array), then fewer, one and none: each keeps its cursor and positions', () => {
  const s = session();
  const patterns = Array.from({ length: 12 }, (_, i) => `/p/${i}`);
  const takeWrites = (): string[] => {
    const take = s.prepare(undefined, LIMITS);
    s.commit(take);
    return take.writes;
  };
  // One.
  s.follow('/p/0', '1-0');
  s.follow('/p/0', '9-0');
  assert.equal(s.followCount, 1);
  assert.equal(s.cursorOf('/p/0')?.id, '1-0', 'following again changes nothing');
  assert.equal(s.applyLog('/p/0', [entry('/p/0', '2-0')], LIMITS), true);
  assert.deepEqual(takeWrites(), ['a', '/p/0', '2-0']);
  // Two, then all twelve.
  for (const pattern of patterns) s.follow(pattern, '1-0');
  assert.equal(s.followCount, 12);
  assert.deepEqual([...s.patterns()], patterns);
  for (const [i, pattern] of patterns.entries()) assert.equal(s.apply(entry(pattern, `3-${i}`, `m${i}`, `p${i}`), LIMITS), true, pattern);
  assert.deepEqual(s.queue.map((e) => e.text), patterns.map((_, i) => `m${i}`));
  assert.deepEqual(takeWrites(), patterns.flatMap((pattern, i) => ['a', pattern, `3-${i}`]));
  assert.deepEqual(takeWrites(), [], 'written: nothing again');
  // Fewer: down to /p/3 and /p/7, then /p/7 alone, then none.
  for (const pattern of patterns) if (pattern !== '/p/3' && pattern !== '/p/7') s.unfollow(pattern);
  assert.deepEqual([...s.patterns()], ['/p/3', '/p/7']);
  s.unfollow('/p/3');
  s.unfollow('/p/3');
  assert.deepEqual([...s.patterns()], ['/p/7']);
  assert.equal(s.follows('/p/3'), false);
  assert.equal(s.apply(entry('/p/3', '4-0'), LIMITS), false, 'unfollowed');
  assert.equal(s.apply(entry('/p/7', '4-1'), LIMITS), true);
  assert.equal(s.ackedOf('/p/7'), '3-7');
  assert.deepEqual(takeWrites(), ['a', '/p/7', '4-1']);
  s.unfollow('/p/7');
  assert.equal(s.followCount, 0);
  assert.deepEqual([...s.patterns()], []);
  assert.equal(s.cursorOf('/p/7'), undefined);
  // One again, from a new position.
  s.follow('/p/7', '5-0');
  assert.equal(s.ackedOf('/p/7'), '5-0');
  assert.equal(s.apply(entry('/p/7', '4-9'), LIMITS), false, 'before the new position');
  assert.equal(s.apply(entry('/p/7', '5-1'), LIMITS), true);
  assert.deepEqual(takeWrites(), ['a', '/p/7', '5-1']);
});

test('a small set of patterns: two, then either one left keeps its own positions', () => {
  for (const gone of ['/a', '/b']) {
    const s = session(true);
    s.follow('/a', '1-0');
    s.follow('/b', '2-0');
    s.unfollow(gone);
    const kept = gone === '/a' ? '/b' : '/a';
    assert.deepEqual([...s.patterns()], [kept]);
    assert.equal(s.sentOf(kept), kept === '/a' ? '1-0' : '2-0');
    assert.equal(s.sentOf(gone), undefined);
  }
});
