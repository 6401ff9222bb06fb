/**
 * `cometd.publishHandler()`: the HTTP publish endpoint for other processes
 * and languages, on every host (Express 5 and 4, each with and without an
 * app-level `express.json()`, connect, a bare `http` handler): Bearer
 * token, `authorize`, the checks on channels and limits, and the same
 * publish path as `cometd.publish` (outgoing hooks, the engine, sessions).
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, describe, test } from 'node:test';
import { bayeux, type BayeuxMiddleware } from '../lib/index.js';
import { HOSTS, startHost, type HostName, type HostServer } from './helpers/hosts.js';
import { read, type RawResponse } from './helpers/http-server.js';
import { openWire, wireSession } from './helpers/wire.js';
import { waitFor } from './helpers/wait.js';

const TOKEN = 'test-token-0123456789abcdefghijklmnop';

const servers: HostServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

/** POST to the endpoint with a token (or none: `null`), JSON unless `body` is a Buffer or string. */
async function publish(url: string, body: unknown, token: string | null = TOKEN, headers: Record<string, string> = {}): Promise<RawResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(token === null ? {} : { Authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return read(res);
}

/** The host with a token endpoint at /publish and an authorize endpoint at /publish-as (header `x-publisher: yes`). */
async function start(host: HostName, json: boolean, bayeuxOptions: Parameters<typeof bayeux>[0] = {}): Promise<HostServer> {
  const s = await startHost(host, bayeuxOptions, {
    routes: (cometd: BayeuxMiddleware) => [
      { path: '/publish', json, handler: cometd.publishHandler({ token: TOKEN, maxBatch: 5, maxBodyBytes: 4096 }) },
      {
        path: '/publish-as',
        json,
        handler: cometd.publishHandler({
          authorize: async (req) => {
            await new Promise((resolve) => setImmediate(resolve));
            if (req.headers['x-publisher'] === 'throw') throw new Error('authorize broke');
            return req.headers['x-publisher'] === 'yes';
          },
        }),
      },
    ],
  });
  servers.push(s);
  return s;
}

const variants: Array<{ host: HostName; json: boolean }> = [
  ...HOSTS.map((host) => ({ host, json: false })),
  { host: 'express5', json: true },
  { host: 'express4', json: true },
];

for (const { host, json } of variants) {
  describe(`publishHandler on ${host}${json ? ' after express.json()' : ''}`, () => {
    let s: HostServer;
    const logged: string[] = [];
    const logger = { error: (m: string) => logged.push(m), warn: () => {}, info: () => {}, debug: () => {} };
    const seen: Array<{ channel: string; data: unknown; client: string | undefined; id: unknown; ext: unknown }> = [];

    test('starts', async () => {
      s = await start(host, json, { logger });
      const sub = s.cometd.subscribe('/news/**', (data, message, info) => {
        seen.push({ channel: message.channel, data, client: info.client, id: message.id, ext: message.ext });
      });
      await sub.ready;
    });

    test('a good token publishes one message, or a batch in order', async () => {
      const one = await publish(`${s.origin}/publish`, { channel: '/news/a', data: { n: 0 }, id: 'm0', ext: { source: 'test' } });
      assert.equal(one.status, 200, one.text);
      assert.deepEqual(one.json, { published: 1 });
      assert.equal(one.headers.get('content-type'), 'application/json; charset=utf-8');
      const batch = await publish(`${s.origin}/publish`, [1, 2, 3, 4, 5].map((n) => ({ channel: '/news/b', data: n })));
      assert.equal(batch.status, 200, batch.text);
      assert.deepEqual(batch.json, { published: 5 });
      await waitFor(() => seen.length >= 6, { timeout: 5000, what: 'six messages to the in-process subscriber' });
      assert.deepEqual(seen[0], { channel: '/news/a', data: { n: 0 }, client: undefined, id: 'm0', ext: { source: 'test' } });
      assert.deepEqual(seen.slice(1).map((m) => m.data), [1, 2, 3, 4, 5]);
      assert.equal(seen.length, 6);
    });

    test('a missing, wrong or non-Bearer token gets 401 auth.failed, and nothing is published', async () => {
      const before = seen.length;
      const cases: Array<[string | null, Record<string, string>]> = [
        [null, {}],
        ['wrong', {}],
        [TOKEN + 'x', {}],
        [TOKEN.slice(1), {}],
        [null, { Authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` }],
        [null, { Authorization: TOKEN }],
      ];
      for (const [token, headers] of cases) {
        const res = await publish(`${s.origin}/publish`, { channel: '/news/x', data: 1 }, token, headers);
        assert.equal(res.status, 401, res.text);
        assert.equal(res.json?.error?.type, 'auth.failed');
        assert.equal(res.json?.error?.status, 401);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
      }
      // The scheme is case-insensitive (RFC 7235).
      const lower = await publish(`${s.origin}/publish`, { channel: '/news/c', data: 'lower' }, null, { Authorization: `bearer ${TOKEN}` });
      assert.equal(lower.status, 200, lower.text);
      await waitFor(() => seen.length > before, { timeout: 5000, what: 'the lower-case bearer publish' });
      assert.deepEqual(seen.slice(before).map((m) => m.data), ['lower']);
    });

    test('authorize decides (403 auth.denied when it says no); a throwing authorize answers 500', async () => {
      const no = await publish(`${s.origin}/publish-as`, { channel: '/news/as', data: 'no' }, null, { 'x-publisher': 'no' });
      assert.equal(no.status, 403);
      assert.equal(no.json?.error?.type, 'auth.denied');
      assert.equal(no.headers.get('www-authenticate'), null);
      const broke = await publish(`${s.origin}/publish-as`, { channel: '/news/as', data: 'broke' }, null, { 'x-publisher': 'throw' });
      assert.equal(broke.status, 500);
      assert.equal(broke.json?.error?.type, 'server.error');
      assert.deepEqual(logged, ['publishHandler: authorize failed: authorize broke']);
      const before = seen.length;
      const yes = await publish(`${s.origin}/publish-as`, { channel: '/news/as', data: 'yes' }, null, { 'x-publisher': 'yes' });
      assert.equal(yes.status, 200, yes.text);
      assert.deepEqual(yes.json, { published: 1 });
      await waitFor(() => seen.length > before, { timeout: 5000, what: 'the authorized publish' });
      assert.deepEqual(seen.slice(before).map((m) => m.data), ['yes']);
    });

    test('a bad channel, a wildcard, /meta/ and /service/ get 400 channel.invalid naming it; nothing of the batch is published', async () => {
      const before = seen.length;
      const bad: Array<[unknown, RegExp]> = [
        [{ channel: 'news', data: 1 }, /"news" is not a channel name/],
        [{ channel: '/news/*', data: 1 }, /"\/news\/\*" is a wildcard/],
        [{ channel: '/news/**', data: 1 }, /"\/news\/\*\*" is a wildcard/],
        [{ channel: '/meta/handshake', data: 1 }, /"\/meta\/handshake" is a \/meta\/ channel/],
        [{ channel: '/service/echo', data: 1 }, /"\/service\/echo" is a \/service\/ channel/],
        [{ data: 1 }, /has no channel/],
        [[{ channel: '/news/ok', data: 1 }, { channel: '/news/{x}', data: 2 }], /message 1: "\/news\/\{x\}" is not a channel name/],
      ];
      for (const [body, message] of bad) {
        const res = await publish(`${s.origin}/publish`, body);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.json?.error?.type, 'channel.invalid', res.text);
        assert.match(res.json?.error?.message as string, message);
      }
      const invalid: unknown[] = [
        { channel: '/news/x' },
        { channel: '/news/x', data: 1, clientId: 'abc' },
        { channel: '/news/x', data: 1, ext: 'no' },
        { channel: '/news/x', data: 1, id: {} },
        [null],
        // express.json() (strict) refuses JSON that is not an object or array itself.
        ...(json ? [] : ['"text"']),
      ];
      for (const body of invalid) {
        const res = await publish(`${s.origin}/publish`, body);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.json?.error?.type, 'message.invalid', res.text);
      }
      const empty = await publish(`${s.origin}/publish`, []);
      assert.equal(empty.status, 400);
      assert.equal(empty.json?.error?.type, 'message.missing');
      assert.equal(seen.length, before, 'nothing was published');
    });

    test('too many messages or too large a body get 413; not JSON gets 400 or 415', async () => {
      const many = await publish(`${s.origin}/publish`, Array.from({ length: 6 }, (_, n) => ({ channel: '/news/many', data: n })));
      assert.equal(many.status, 413);
      assert.equal(many.json?.error?.type, 'batch.too.large');
      const large = await publish(`${s.origin}/publish`, { channel: '/news/large', data: 'x'.repeat(5000) });
      assert.equal(large.status, 413);
      // After express.json(), the declared Content-Length is held to maxBodyBytes.
      assert.equal(large.json?.error?.type, 'entity.too.large');
      if (!json) {
        const broken = await publish(`${s.origin}/publish`, '{"channel":');
        assert.equal(broken.status, 400);
        assert.equal(broken.json?.error?.type, 'entity.parse.failed');
        const form = await publish(`${s.origin}/publish`, 'channel=/news/x', TOKEN, { 'Content-Type': 'application/x-www-form-urlencoded' });
        assert.equal(form.status, 415);
        assert.equal(form.json?.error?.type, 'content.type.unsupported');
        // A gzipped body is inflated, under the same limit.
        const zipped = await publish(`${s.origin}/publish`, gzipSync(JSON.stringify({ channel: '/news/zip', data: 'z' })), TOKEN, { 'Content-Encoding': 'gzip' });
        assert.equal(zipped.status, 200, zipped.text);
        const bomb = await publish(`${s.origin}/publish`, gzipSync(JSON.stringify({ channel: '/news/zip', data: 'z'.repeat(100_000) })), TOKEN, { 'Content-Encoding': 'gzip' });
        assert.equal(bomb.status, 413);
        assert.equal(bomb.json?.error?.type, 'entity.too.large');
      }
    });

    test('other methods go to next, or get 405 on a bare handler', async () => {
      const res = await fetch(`${s.origin}/publish`, { signal: AbortSignal.timeout(5000) });
      await res.text();
      if (host === 'http') {
        assert.equal(res.status, 405);
        assert.equal(res.headers.get('allow'), 'POST');
      } else {
        assert.equal(res.status, 404);
      }
    });
  });
}

describe('publishHandler: the same path as cometd.publish', () => {
  test('sessions receive it over WebSocket and long-polling, through the outgoing hooks, without a clientId', async () => {
    const s = await start('express5', true);
    s.cometd.outgoing(async (message) => {
      if (message.channel === '/hooked') {
        await new Promise((resolve) => setImmediate(resolve));
        return { ...message, data: { hooked: message.data } };
      }
      return message;
    });
    const ws = await openWire('websocket', s.url);
    const wsId = await wireSession(ws);
    await ws.send({ channel: '/meta/subscribe', clientId: wsId, subscription: '/hooked' });
    const lp = await openWire('long-polling', s.url);
    const lpId = await wireSession(lp);
    await lp.send({ channel: '/meta/subscribe', clientId: lpId, subscription: '/hooked' });
    const polled = lp.send({ channel: '/meta/connect', clientId: lpId, connectionType: 'long-polling' }, 10_000);
    const events: unknown[] = [];
    s.cometd.on('publish', (clientId, channel, data) => events.push({ clientId, channel, data }));

    const res = await publish(`${s.origin}/publish`, [1, 2, 3].map((n) => ({ channel: '/hooked', data: n })));
    assert.deepEqual(res.json, { published: 3 });
    const pushed = await ws.waitDelivered(3);
    assert.deepEqual(pushed.map((m) => m['data']), [{ hooked: 1 }, { hooked: 2 }, { hooked: 3 }], 'in order, through the hook');
    assert.ok(pushed.every((m) => m['clientId'] === undefined));
    await polled;
    await lp.waitDelivered(1);
    const more = lp.delivered.length < 3
      ? await lp.send({ channel: '/meta/connect', clientId: lpId, connectionType: 'long-polling', advice: { timeout: 0 } }).then(() => lp.delivered)
      : lp.delivered;
    assert.deepEqual(more.map((m) => m['data']), [{ hooked: 1 }, { hooked: 2 }, { hooked: 3 }]);
    assert.deepEqual(events, [1, 2, 3].map((n) => ({ clientId: undefined, channel: '/hooked', data: n })));
    ws.close();
  });

  test('a message over maxMessageBytes gets 413 message.too.large, with what was published before it', async () => {
    const s = await start('http', false, { maxMessageBytes: 200 });
    const got: unknown[] = [];
    await s.cometd.subscribe('/sized', (data) => got.push(data)).ready;
    const res = await publish(`${s.origin}/publish`, [{ channel: '/sized', data: 'small' }, { channel: '/sized', data: 'x'.repeat(300) }]);
    assert.equal(res.status, 413, res.text);
    assert.equal(res.json?.error?.type, 'message.too.large');
    assert.equal(res.json?.published, 1);
    await waitFor(() => got.length === 1, { timeout: 5000, what: 'the small message' });
    assert.deepEqual(got, ['small']);
  });

  test('with token and authorize, both must pass: 401 for the token first, then 403', async () => {
    const s = await startHost('http', {}, {
      routes: (cometd) => [{ path: '/both', handler: cometd.publishHandler({ token: TOKEN, authorize: (req) => req.headers['x-ok'] === '1' }) }],
    });
    servers.push(s);
    const noToken = await publish(`${s.origin}/both`, { channel: '/both', data: 1 }, 'wrong', { 'x-ok': '1' });
    assert.equal(noToken.status, 401);
    const denied = await publish(`${s.origin}/both`, { channel: '/both', data: 1 }, TOKEN, { 'x-ok': '0' });
    assert.equal(denied.status, 403);
    assert.equal(denied.json?.error?.type, 'auth.denied');
    const both = await publish(`${s.origin}/both`, { channel: '/both', data: 1 }, TOKEN, { 'x-ok': '1' });
    assert.deepEqual(both.json, { published: 1 });
  });

  test('a closing server answers 503 server.closing', async () => {
    const s = await start('http', false);
    await s.cometd.close();
    const res = await publish(`${s.origin}/publish`, { channel: '/late', data: 1 });
    assert.equal(res.status, 503);
    assert.equal(res.json?.error?.type, 'server.closing');
  });
});

describe('publishHandler options', () => {
  test('without token or authorize, or with a bad option, it throws a TypeError', () => {
    const cometd = bayeux({ logLevel: 'error' });
    try {
      const make = cometd.publishHandler as (options?: unknown) => unknown;
      assert.throws(() => make(), { name: 'TypeError', message: /needs \{ token \} or \{ authorize \}/ });
      assert.throws(() => make({}), { name: 'TypeError', message: /needs \{ token \} or \{ authorize \}/ });
      assert.throws(() => make({ token: undefined }), { name: 'TypeError', message: /never open/ });
      assert.throws(() => make({ token: '' }), { name: 'TypeError', message: /option token/ });
      assert.throws(() => make({ token: 'has space' }), { name: 'TypeError', message: /option token/ });
      assert.throws(() => make({ token: 42 }), { name: 'TypeError', message: /option token/ });
      assert.throws(() => make({ authorize: true }), { name: 'TypeError', message: /option authorize/ });
      assert.throws(() => make({ token: 't', maxBatch: 0 }), { name: 'TypeError', message: /maxBatch/ });
      assert.throws(() => make({ token: 't', maxBodyBytes: 1.5 }), { name: 'TypeError', message: /maxBodyBytes/ });
      assert.throws(() => make({ token: 't', tokens: ['t'] }), { name: 'TypeError', message: /Unknown publishHandler option: tokens/ });
      assert.equal(typeof make({ token: 't' }), 'function');
      assert.equal(typeof make({ authorize: () => true }), 'function');
    } finally {
      void cometd.close();
    }
  });
});
