/**
 * The text a history copy is handed to the engine as (`historyText`): the
 * position's place is `tail` ASCII characters before the end, so splicing
 * by characters (JavaScript) and by bytes (Lua's string.sub) agree, and
 * the result is the copy with `ext.position` last.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { positionJson } from '../../lib/engines/memory-history.js';
import { historyText, unspliced } from '../../lib/server/history.js';
import type { Message } from '../../lib/server/types.js';

const settings = { size: 10, ttl: 1000 };

/** What Lua does: bytes, 1-based string.sub. */
function spliceBytes(text: string, tail: number, position: string): string {
  const bytes = Buffer.from(text);
  return Buffer.concat([bytes.subarray(0, bytes.length - tail), Buffer.from(position), bytes.subarray(bytes.length - tail)]).toString();
}

describe('historyText', () => {
  const copies: Message[] = [
    { channel: '/chat/a', data: 'plain' },
    { channel: '/chat/a', data: { text: 'héllo wörld ✓ 😀', n: [1, 2] }, id: 'x1' },
    { channel: '/chat/a', data: null, ext: { trace: 'a"b}}', nested: { position: 1 } } },
    { channel: '/chat/a', data: 1, ext: { position: { epoch: 'forged', offset: 9 } } },
    { channel: '/chat/a', data: 1, ext: 5 as never },
    { channel: '/chat/a', data: 1, ext: undefined },
    { channel: '/chat/a', data: 'ünïcode', id: 7, ext: {} },
  ];
  for (const copy of copies) {
    it(`splices by characters and by bytes alike: ${JSON.stringify(copy)}`, () => {
      const { text, history } = historyText(copy, '/chat/a', settings);
      assert.deepEqual(history, { channel: '/chat/a', size: 10, ttl: 1000, tail: 2 });
      assert.equal(text.slice(-history.tail), '}}');
      const position = positionJson('ep0ch.1', 42);
      const byChars = text.slice(0, text.length - history.tail) + position + text.slice(text.length - history.tail);
      assert.equal(spliceBytes(text, history.tail, position), byChars);
      const parsed = JSON.parse(byChars) as Message;
      const ext = typeof copy.ext === 'object' && copy.ext !== null ? copy.ext : {};
      const { position: _forged, ...kept } = ext;
      const expected: Message = { ...copy, ext: { ...kept, position: { epoch: 'ep0ch.1', offset: 42 } } };
      if (expected.id === undefined) delete expected.id;
      assert.deepEqual(parsed, expected);
      assert.deepEqual(Object.keys(parsed).at(-1), 'ext', 'ext is the last field');
      assert.equal(unspliced(byChars), text, 'the text as published is found again from the delivered one');
    });
  }

  it('unspliced leaves a text without a position alone', () => {
    assert.equal(unspliced(JSON.stringify({ channel: '/a', data: 1 })), undefined);
    assert.equal(unspliced('{"channel":"/a","data":"}}"}'), undefined);
  });
});
