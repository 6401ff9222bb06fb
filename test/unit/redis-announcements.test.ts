/**
 * How a node reads what the publish script announces and what XRANGE
 * returns (lib/engines/redis/log.ts `parseAnnouncement`, `entryOf`): pure
 * text parsing, no Redis.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { entryOf, parseAnnouncement } from '../../lib/engines/redis/log.js';

/** An announcement as the publish script writes it. */
function announce(prev: string, entries: Array<{ id: string; pub: string; except?: string; message: string }>): string {
  let s = `${prev} ${entries.length}`;
  for (const e of entries) s += ` ${e.id} ${e.pub} ${e.except ?? '-'} ${e.message.length} ${e.message}`;
  return s;
}

test('an announcement gives prev and its entries in order, messages cut by their length', () => {
  const message = announce('5-0', [
    { id: '6-0', pub: 'abc1', message: '{"data":"a b c"}' },
    { id: '6-1', pub: 'abc2', except: 'id1,id2', message: '{"x":" 1 2 "}' },
  ]);
  const a = parseAnnouncement('/a/*', message, 'zz');
  assert.ok(a);
  assert.equal(a.prev, '5-0');
  assert.equal(a.entries.length, 2);
  const [e0, e1] = a.entries;
  assert.deepEqual({ ...e0 }, { src: '/a/*', id: '6-0', ms: 6, seq: 0, text: '{"data":"a b c"}', pub: 'abc1', except: undefined });
  assert.deepEqual({ ...e1 }, { src: '/a/*', id: '6-1', ms: 6, seq: 1, text: '{"x":" 1 2 "}', pub: 'abc2', except: ['id1', 'id2'] });
});

test('lengths count JS characters (UTF-16 units), not bytes', () => {
  const text = '{"d":"é😀 x"}';
  const a = parseAnnouncement('/p', announce('0-0', [{ id: '1-0', pub: 'q1', message: text }, { id: '1-1', pub: 'q2', message: 'z' }]), '');
  assert.ok(a);
  assert.equal(a.entries[0]?.text, text);
  assert.equal(a.entries[1]?.text, 'z');
});

test('this node\'s own announcement is skipped (it applied it when Redis answered)', () => {
  const message = announce('1-0', [{ id: '2-0', pub: 'node7-1', message: 'm' }]);
  assert.equal(parseAnnouncement('/p', message, 'node7-'), undefined);
  assert.ok(parseAnnouncement('/p', message, 'node8-'));
  // An empty prefix skips nothing.
  assert.ok(parseAnnouncement('/p', message, ''));
});

test('a malformed announcement is refused, not half read', () => {
  const good = announce('1-0', [{ id: '2-0', pub: 'p1', message: 'hello' }]);
  assert.ok(parseAnnouncement('/p', good, ''));
  for (const bad of [
    '',
    '1-0',
    '1-0 0 ',
    '1-0 -1 ',
    '1-0 x ',
    '1-0 1.5 2-0 p1 - 5 hello',
    '1-0 2 2-0 p1 - 5 hello', // one entry short
    '1-0 1 2-0 p1 - 6 hello', // length past the end
    '1-0 1 2-0 p1 - -1 hello',
    '1-0 1 2-0 p1 - x hello',
    '1-0 1 2-0 p1',
  ]) assert.equal(parseAnnouncement('/p', bad, ''), undefined, JSON.stringify(bad));
});

test('an XRANGE item becomes an entry; fields in any order, Buffers read as text, missing ones defaulted', () => {
  const e = entryOf('/a', ['17-3', ['u', 'p9', 'x', 'a,b', 'm', Buffer.from('{"v":1}')]]);
  assert.deepEqual({ ...e }, { src: '/a', id: '17-3', ms: 17, seq: 3, text: '{"v":1}', pub: 'p9', except: ['a', 'b'] });
  const box = entryOf('', ['18-0', ['m', 'hi']]);
  assert.deepEqual({ ...box }, { src: '', id: '18-0', ms: 18, seq: 0, text: 'hi', pub: '', except: undefined });
  // A RESP3 map of fields reads the same.
  const mapped = entryOf('/a', ['19-0', new Map([['m', 'x'], ['x', '-']])]);
  assert.equal(mapped.text, 'x');
  assert.equal(mapped.except, undefined);
});
