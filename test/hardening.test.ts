/**
 * Hostile and unlucky inputs found in review: each must get a clear answer
 * and leave the server serving.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BayeuxError, EngineUnavailableError, MemoryEngine } from '../lib/index.js';
import type { EngineConfig, EngineHost } from '../lib/index.js';
import { post, startServer } from './helpers/http-server.js';
import { openWire, wireSession, type Msg } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';

const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'] };

/** JSON text of an array nested `n` deep (too deep for JSON.stringify to write back). */
function deep(n: number): string {
  return '['.repeat(n) + '1' + ']'.repeat(n);
}

const deepSubscribe = `[{"channel":"/meta/subscribe","id":${deep(5000)},"subscription":${deep(5000)}}]`;

async function rawSocket(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; received: Msg[] }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
  const received: Msg[] = [];
  ws.on('message', (d) => received.push(...(JSON.parse(String(d)) as Msg[])));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, received };
}

/** The status an upgrade request gets, or 101. */
async function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(-1));
  });
}

describe('malformed fields never crash the server', () => {
  test('a deeply nested id or subscription gets a 400 without echoing it, over both transports', async () => {
    const s = await startServer({});
    try {
      const r = await post(s.url, deepSubscribe);
      assert.equal(r.status, 200);
      assert.match(r.json[0].error, /^400:/);
      assert.equal(r.json[0].id, undefined);
      const { ws, received } = await rawSocket(s.url);
      ws.send(deepSubscribe);
      await waitFor(() => received.length === 1, { timeout: 3000, what: 'a refusal' });
      assert.match(received[0]?.['error'], /^400:/);
      // The same socket and the server keep working.
      ws.send(JSON.stringify([{ ...hs, id: 'after' }]));
      await waitFor(() => received.length === 2, { timeout: 3000, what: 'a handshake reply' });
      assert.equal(received[1]?.['successful'], true);
      ws.close();
    } finally {
      await s.close();
    }
  });

  test('a service answer that cannot be serialized gets a 500 reply', async () => {
    const s = await startServer({});
    s.cometd.service('/service/bigint', () => ({ n: 10n }));
    try {
      const w = await openWire('websocket', s.url);
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/service/bigint', clientId: id, data: 1, id: 'big' });
      assert.deepEqual(r, { channel: '/service/bigint', successful: false, error: '500::server_error', id: 'big' });
      const [ok] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/fine' });
      assert.equal(ok?.['successful'], true);
      w.close();
    } finally {
      await s.close();
    }
  });

  test('a throwing outgoing hook gets a 500 reply, not a dead socket', async () => {
    const s = await startServer({});
    s.cometd.outgoing((m) => {
      if (m.channel === '/meta/subscribe') throw new Error('hook bug');
    });
    try {
      const w = await openWire('websocket', s.url);
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/x' });
      assert.equal(r?.['error'], '500::server_error');
      const [ok] = await w.send({ channel: '/meta/unsubscribe', clientId: id, subscription: '/x' });
      assert.equal(ok?.['successful'], true);
      w.close();
    } finally {
      await s.close();
    }
  });

  test('publishing to an unknown /meta channel: 405 invalid_channel', async () => {
    const s = await startServer({});
    try {
      const w = await openWire('long-polling', s.url);
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/meta/foo', clientId: id, data: 1 });
      assert.equal(r?.['error'], '405:/meta/foo:invalid_channel');
    } finally {
      await s.close();
    }
  });

  test('middleware on a handshake sees no client, whatever clientId the message claims', async () => {
    const s = await startServer({});
    const seen: unknown[] = [];
    s.cometd.use('/meta/handshake', (_m, ctx) => void seen.push(ctx.client));
    try {
      await post(s.url, [{ ...hs, clientId: 'someone-else' }]);
      assert.deepEqual(seen, [undefined]);
    } finally {
      await s.close();
    }
  });
});

/** A MemoryEngine whose store is out of reach the first time it is opened. */
class LateEngine extends MemoryEngine {
  opens = 0;
  override async open(host: EngineHost, config: EngineConfig): Promise<void> {
    if (++this.opens === 1) throw new EngineUnavailableError('store not up yet');
    return super.open(host, config);
  }
}

test('an engine that is down at start: 503 with retry advice, then service once it is up', async () => {
  const engine = new LateEngine();
  const s = await startServer({ engine });
  try {
    const r = await post(s.url, [hs]);
    assert.equal(r.status, 200);
    assert.equal(r.json[0].error, '503::engine_unavailable');
    assert.equal(r.json[0].advice.reconnect, 'retry');
    const again = await post(s.url, [hs]);
    assert.equal(again.json[0].successful, true);
    assert.equal(engine.opens, 2);
  } finally {
    await s.close();
  }
});

test('over WebSocket, queued messages and new ones arrive in publish order even when a connect shares a slow batch', async () => {
  const s = await startServer({ timeout: 2000 });
  s.cometd.use('/slow', () => sleep(200));
  try {
    const lp = await openWire('long-polling', s.url);
    const clientId = await wireSession(lp);
    await lp.send({ channel: '/meta/subscribe', clientId, subscription: '/order' });
    await s.cometd.publish('/order', 'M1'); // queued while on long-polling
    const { ws, received } = await rawSocket(s.url);
    ws.send(JSON.stringify([
      { channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c' },
      { channel: '/slow', clientId, data: 'x', id: 'slow' },
    ]));
    setTimeout(() => void s.cometd.publish('/order', 'M2'), 50);
    await waitFor(() => received.some((m) => m['id'] === 'slow'), { timeout: 3000, what: 'the slow reply' });
    await waitFor(() => received.filter((m) => m['channel'] === '/order').length === 2, { timeout: 3000, what: 'both messages' });
    assert.deepEqual(received.filter((m) => m['channel'] === '/order').map((m) => m['data']), ['M1', 'M2']);
    ws.close();
  } finally {
    await s.close();
  }
});

test('a socket that floods frames faster than they are handled is closed (1008), others are not', async () => {
  // anonymousPublish lets the frames reach the slow middleware without a session.
  const s = await startServer({ anonymousPublish: true });
  s.cometd.use('/slow', () => sleep(20));
  try {
    const { ws } = await rawSocket(s.url);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    for (let i = 0; i < 400; i++) ws.send(JSON.stringify([{ channel: '/slow', data: i }]));
    assert.equal(await within(closed, 5000, 'the socket to be closed'), 1008);
    const other = await post(s.url, [hs]);
    assert.equal(other.json[0].successful, true);
  } finally {
    await s.close();
  }
});

describe('cross-origin access', () => {
  test('WebSocket: without cors only same-origin pages (or no Origin) may upgrade', async () => {
    const s = await startServer({});
    try {
      assert.equal(await upgradeStatus(s.url, {}), 101);
      assert.equal(await upgradeStatus(s.url, { Origin: s.origin }), 101);
      assert.equal(await upgradeStatus(s.url, { Origin: 'https://evil.example' }), 403);
    } finally {
      await s.close();
    }
  });

  test('WebSocket: with cors, the origins it allows', async () => {
    const s = await startServer({ cors: { origin: ['https://good.example'] } });
    try {
      assert.equal(await upgradeStatus(s.url, { Origin: 'https://good.example' }), 101);
      assert.equal(await upgradeStatus(s.url, { Origin: 'https://evil.example' }), 403);
    } finally {
      await s.close();
    }
  });

  test('jsonp: false turns callback-polling off and stops offering it', async () => {
    const s = await startServer({ jsonp: false });
    try {
      const r = await fetch(`${s.url}?message=${encodeURIComponent(JSON.stringify([hs]))}&jsonp=cb`);
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as { error: { type: string } }).error.type, 'jsonp.disabled');
      const h = await post(s.url, [hs]);
      assert.deepEqual(h.json[0].supportedConnectionTypes, ['websocket', 'long-polling']);
    } finally {
      await s.close();
    }
  });
});

test('BayeuxError is what middleware throws to choose the code', () => {
  assert.equal(new BayeuxError(401, 'x').toString(), '401::x');
});
