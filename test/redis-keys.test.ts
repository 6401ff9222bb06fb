/** Stream-id order, as the Redis engine's fan-out compares positions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareIds, Keys, slotOf } from '../lib/engines/redis/keys.js';

test('compareIds orders stream ids numerically, a missing seq counting as 0', () => {
  const sorted = ['0-0', '0-1', '1-0', '1-1', '1-2', '1-10', '2-0', '10-0', '10-5', '999-999', '1700000000000-0', '1700000000000-1', '1700000000000-12', '1700000000001-0'];
  const shuffled = [...sorted].reverse();
  assert.deepEqual(shuffled.sort(compareIds), sorted);
  assert.equal(compareIds('1', '1-0'), 0);
  assert.ok(compareIds('1', '1-1') < 0);
  assert.ok(compareIds('2', '1-5') > 0);
  assert.equal(compareIds('17-3', '17-3'), 0);
});

test('slotOf hashes keys as Redis Cluster does (CLUSTER KEYSLOT)', () => {
  // Values from CLUSTER KEYSLOT on Redis 7.
  assert.equal(slotOf('foo'), 12182);
  assert.equal(slotOf('bar'), 5061);
  assert.equal(slotOf('{user1000}.following'), slotOf('user1000'));
  assert.equal(slotOf('foo{}{bar}'), 8363);
  assert.equal(slotOf('foo{{bar}}zap'), 4015);
  assert.equal(slotOf('bayeux:{mk0}'), 14521);
  assert.equal(slotOf('{p:/a/b}'), 6683);
  assert.equal(slotOf('x{é}'), 10180);
});

test('patternOf reads the pattern back from its base (an announcement channel), and nothing from other names', () => {
  const keys = new Keys('bayeux:');
  for (const pattern of ['/a', '/a/*', '/a/**', '/x-y/z_1', '/**']) assert.equal(keys.patternOf(keys.patternBase(pattern)), pattern);
  for (const other of ['bayeux:node:abc', 'bayeux:{s3}', 'other:{p:/a}', 'bayeux:{p:/a', 'bayeux:{p:', 'bayeux:', '', '{p:/a}']) {
    assert.equal(keys.patternOf(other), undefined, other);
  }
  assert.equal(new Keys('').patternOf('{p:/a}'), '/a');
});
