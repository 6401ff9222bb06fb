/** Long-polling over raw HTTP: body formats, sub-paths, and every transport-level error. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import express from 'express';
import { get, handshake, post, startServer, type TestServer } from './helpers/http-server.js';
import { waitFor } from './helpers/wait.js';

const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] };

describe('long-polling', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ timeout: 300, maxBodyBytes: 4096, maxBatch: 5 });
  });
  after(() => s.close());

  test('a JSON array and a single JSON object are both accepted', async () => {
    const a = await post(s.url, [hs]);
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(a.json[0].successful, true);
    const b = await post(s.url, hs);
    assert.equal(b.json[0].successful, true);
  });

  test('any sub-path under the mount works (the CometD client posts to /cometd/handshake)', async () => {
    const r = await post(s.url + '/handshake', [hs]);
    assert.equal(r.json[0].successful, true);
    const id = r.json[0].clientId;
    const c = await post(s.url + '/connect', [{ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' }]);
    assert.equal(c.json[0].successful, true);
  });

  test('form-encoded message=, single and multi-valued, each a message or an array', async () => {
    const one = await post(s.url, 'message=' + encodeURIComponent(JSON.stringify(hs)), 'application/x-www-form-urlencoded');
    assert.equal(one.json[0].successful, true);
    const id = one.json[0].clientId;
    const form = new URLSearchParams();
    form.append('message', JSON.stringify({ channel: '/meta/subscribe', clientId: id, subscription: '/f/a', id: '1' }));
    form.append('message', JSON.stringify([{ channel: '/meta/subscribe', clientId: id, subscription: '/f/b', id: '2' }]));
    const multi = await post(s.url, form.toString(), 'application/x-www-form-urlencoded');
    assert.deepEqual(multi.json.map((m: { id: string; successful: boolean }) => [m.id, m.successful]), [['1', true], ['2', true]]);
  });

  test('GET with message= and no jsonp is answered as JSON', async () => {
    const r = await get(s.url + '?message=' + encodeURIComponent(JSON.stringify([hs])));
    assert.equal(r.status, 200);
    assert.equal(r.json[0].successful, true);
  });

  test('malformed JSON: 400 entity.parse.failed', async () => {
    const r = await post(s.url, '[{"channel":', 'application/json');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'entity.parse.failed');
    const f = await post(s.url, 'message=%7Bnope', 'application/x-www-form-urlencoded');
    assert.equal(f.status, 400);
    assert.equal(f.json.error.type, 'entity.parse.failed');
  });

  test('wrong content type: 415', async () => {
    const r = await post(s.url, JSON.stringify([hs]), 'text/plain');
    assert.equal(r.status, 415);
    assert.equal(r.json.error.type, 'content.type.unsupported');
  });

  test('a body over maxBodyBytes: 413 entity.too.large', async () => {
    const r = await post(s.url, [{ ...hs, ext: { pad: 'x'.repeat(5000) } }]);
    assert.equal(r.status, 413);
    assert.equal(r.json.error.type, 'entity.too.large');
  });

  test('a chunked body (no Content-Length) over maxBodyBytes: 413 entity.too.large', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(s.url, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('['.padEnd(1000, ' '));
      req.end();
    });
    assert.equal(status, 413);
    assert.equal(JSON.parse(body).error.type, 'entity.too.large');
  });

  test('gzip-encoded JSON is inflated; a non-UTF-8 charset is refused with 415', async () => {
    const res = await fetch(s.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: gzipSync(JSON.stringify([hs])),
    });
    assert.equal(res.status, 200);
    assert.equal((await res.json())[0].successful, true);
    const latin = await post(s.url, JSON.stringify([hs]), 'application/json; charset=iso-8859-1');
    assert.equal(latin.status, 415);
    assert.equal(latin.json.error.type, 'charset.unsupported');
    const utf = await post(s.url, JSON.stringify([hs]), 'application/json; charset="UTF-8"');
    assert.equal(utf.json[0].successful, true);
  });

  test('empty array, empty body and batches over maxBatch are refused', async () => {
    const empty = await post(s.url, []);
    assert.equal(empty.status, 400);
    assert.equal(empty.json.error.type, 'message.missing');
    const big = await post(s.url, Array.from({ length: 6 }, () => ({ channel: '/a', data: 1 })));
    assert.equal(big.status, 413);
    assert.equal(big.json.error.type, 'batch.too.large');
    const emptyBody = await post(s.url, '');
    assert.equal(emptyBody.status, 400);
    assert.equal(emptyBody.json.error.type, 'message.missing');
    // A GET without message= is not a Bayeux request: it goes on to the app (Express answers 404).
    const noMessage = await get(s.url);
    assert.equal(noMessage.status, 404);
    assert.equal(noMessage.json, undefined);
  });

  test('non-object messages get a 400 reply each; the server keeps serving', async () => {
    const id = await handshake(s.url);
    const r = await post(s.url, [1, 'x', null, [], { channel: '/meta/subscribe', clientId: id, subscription: '/ok' }]);
    assert.equal(r.status, 200);
    assert.equal(r.json.length, 5);
    for (const m of r.json.slice(0, 4)) assert.match(m.error, /^400:/);
    assert.equal(r.json[4].successful, true);
    assert.equal((await post(s.url, [hs])).json[0].successful, true);
  });

  test('other methods: 405', async () => {
    const r = await fetch(s.url, { method: 'PUT', body: '[]' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, POST, OPTIONS');
  });

  test('a client that goes away during a held connect does not lose its messages', async (t) => {
    // A server of its own holding for 20 s: only the client going away ends the hold (with 300 ms, a loaded
    // machine reached the timeout before the checks, and 50 ms of sleep did not make sure the connect was held).
    const own = await startServer({ timeout: 20_000 });
    t.after(() => own.close());
    const id = await handshake(own.url);
    await post(own.url, [{ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' }]);
    await post(own.url, [{ channel: '/meta/subscribe', clientId: id, subscription: '/gone' }]);
    const controller = new AbortController();
    const held = fetch(own.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify([{ channel: '/meta/connect', clientId: id, connectionType: 'long-polling' }]),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor(async () => (await own.cometd.stats()).heldConnections === 1, { what: 'the connect to be held' });
    controller.abort();
    await held;
    await waitFor(async () => (await own.cometd.stats()).heldConnections === 0, { what: 'the hold to end when its client goes away' });
    await own.cometd.publish('/gone', 'kept');
    const r = await post(own.url, [{ channel: '/meta/connect', clientId: id, connectionType: 'long-polling', advice: { timeout: 0 } }]);
    assert.deepEqual(r.json.filter((m: { channel: string }) => m.channel === '/gone').map((m: { data: string }) => m.data), ['kept']);
  });
});

test('works when an app-level express.json() or urlencoded() already read the body', async () => {
  const s = await startServer({}, {
    configure: (app) => {
      app.use(express.json());
      app.use(express.urlencoded({ extended: false }));
    },
  });
  try {
    const r = await post(s.url, [hs]);
    assert.equal(r.json[0].successful, true);
    const f = await post(s.url, 'message=' + encodeURIComponent(JSON.stringify(hs)), 'application/x-www-form-urlencoded');
    assert.equal(f.json[0].successful, true);
  } finally {
    await s.close();
  }
});

describe('CORS', () => {
  test('off by default: no CORS headers', async () => {
    const s = await startServer({});
    try {
      const r = await fetch(s.url, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://a.example' }, body: JSON.stringify([hs]) });
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    } finally {
      await s.close();
    }
  });

  test('allowed origins get headers and a preflight; others do not', async () => {
    const s = await startServer({ cors: { origin: ['http://a.example'], credentials: true, maxAge: 600 } });
    try {
      const pre = await fetch(s.url, {
        method: 'OPTIONS',
        headers: { Origin: 'http://a.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), 'http://a.example');
      assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
      assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type');
      assert.equal(pre.headers.get('access-control-max-age'), '600');
      const ok = await fetch(s.url, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://a.example' }, body: JSON.stringify([hs]) });
      assert.equal(ok.headers.get('access-control-allow-origin'), 'http://a.example');
      assert.match(ok.headers.get('vary') ?? '', /Origin/);
      const deniedPre = await fetch(s.url, { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
      assert.equal(deniedPre.status, 403);
      const denied = await fetch(s.url, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' }, body: JSON.stringify([hs]) });
      assert.equal(denied.headers.get('access-control-allow-origin'), null);
    } finally {
      await s.close();
    }
  });

  test('cors: true allows any origin with *', async () => {
    const s = await startServer({ cors: true });
    try {
      const r = await fetch(s.url, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://b.example' }, body: JSON.stringify([hs]) });
      assert.equal(r.headers.get('access-control-allow-origin'), '*');
    } finally {
      await s.close();
    }
  });
});
