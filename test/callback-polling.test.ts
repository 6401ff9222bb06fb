/** Callback-polling (JSONP) over raw HTTP. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { get, post, startServer, type TestServer } from './helpers/http-server.js';
import { isValidCallback } from '../lib/transports/callback-polling.js';

const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['callback-polling'] };
const lpHandshake = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'] };
const q = (messages: unknown, jsonp: string) => `?message=${encodeURIComponent(JSON.stringify(messages))}&jsonp=${encodeURIComponent(jsonp)}`;

describe('callback-polling', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ timeout: 300 });
  });
  after(() => s.close());

  test('answers text/javascript calling the callback with the replies', async () => {
    const r = await get(s.url + q([hs], 'jQuery123_cb'));
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/javascript/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.match(r.text, /^\/\*\*\/jQuery123_cb\(\[.*\]\);$/s);
    let got: Array<{ successful: boolean; clientId: string }> = [];
    vm.runInNewContext(r.text, { jQuery123_cb: (replies: typeof got) => (got = replies) });
    assert.equal(got[0]?.successful, true);
    const id = got[0]?.clientId;
    const c = await get(s.url + q([{ channel: '/meta/connect', clientId: id, connectionType: 'callback-polling' }], 'cb'));
    assert.match(c.text, /"successful":true/);
  });

  test('an invalid callback name is refused with 400 jsonp.callback.invalid', async () => {
    for (const bad of ['alert(1)//', 'a b', 'x'.repeat(65), 'a;b', '<script>']) {
      const r = await get(s.url + q([hs], bad));
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.error.type, 'jsonp.callback.invalid');
    }
  });

  test('malformed message JSON: 400 entity.parse.failed', async () => {
    const r = await get(s.url + '?message=%7Bnope&jsonp=cb');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'entity.parse.failed');
  });

  test('callback grammar', () => {
    assert.equal(isValidCallback('a.b$c_1'), true);
    assert.equal(isValidCallback('x'.repeat(64)), true);
    assert.equal(isValidCallback('x'.repeat(65)), false);
    assert.equal(isValidCallback(''), false);
    assert.equal(isValidCallback(['a']), false);
  });
});

test('jsonp: false turns callback-polling off and stops offering it', async () => {
  const s = await startServer({ jsonp: false });
  try {
    const r = await fetch(`${s.url}?message=${encodeURIComponent(JSON.stringify([lpHandshake]))}&jsonp=cb`);
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { error: { type: string } }).error.type, 'jsonp.disabled');
    const h = await post(s.url, [lpHandshake]);
    assert.deepEqual(h.json[0].supportedConnectionTypes, ['websocket', 'long-polling']);
  } finally {
    await s.close();
  }
});
