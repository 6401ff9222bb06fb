/**
 * The Server's shared presence snapshot reads (lib/server/users.ts
 * `SnapshotReads`): many `ext.presence` subscribes at once share reads,
 * and a read serves only the callers that came before it started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapshotReads } from '../../lib/server/users.js';

test('SnapshotReads: one read at a time per channel; callers that come meanwhile share the next, which starts after it', async () => {
  const reads = new SnapshotReads();
  let started = 0;
  const gates: Array<() => void> = [];
  const read = () => {
    const n = ++started;
    return new Promise<{ users: never[]; count: { users: number; clients: number }; version: number }>((resolve) => {
      gates.push(() => resolve({ users: [], count: { users: 0, clients: 0 }, version: n }));
    });
  };
  const first = reads.read('/a', read);
  const second = reads.read('/a', read);
  const third = reads.read('/a', read);
  const other = reads.read('/b', read);
  assert.equal(started, 2, 'one read for /a, one for /b; /a\'s next waits');
  gates[0]?.();
  assert.equal((await first).version, 1);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(started, 3, 'the next read starts when the first ends');
  gates[2]?.();
  const [s2, s3] = await Promise.all([second, third]);
  assert.equal(s2, s3, 'shared');
  assert.equal(s2.version, 3);
  gates[1]?.();
  assert.equal((await other).version, 2);
  await new Promise((resolve) => setImmediate(resolve));
  const fourth = reads.read('/a', read);
  assert.equal(started, 4, 'nothing running: a new read at once');
  gates[3]?.();
  assert.equal((await fourth).version, 4);
});
