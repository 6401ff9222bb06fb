/**
 * BayeuxClient against this package's own server (`bayeux()` mounted in
 * Express on 127.0.0.1), over long-polling and WebSocket: the basics, the
 * ack extension through a proxy that loses connect replies, services,
 * refusals from message middleware, and a restart on the same port.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BayeuxError as ServerBayeuxError } from '../lib/index.js';
import { BayeuxError, type BayeuxMessage, type TransportName } from '../lib/client/node.js';
import { type TestServer, startServer } from './helpers/http-server.js';
import { startCuttingProxy } from './helpers/tcp-proxy.js';
import { testClients } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';

const { client, cleanup } = testClients();

async function server(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const s = await startServer(...args);
  cleanup(() => s.close());
  return s;
}

for (const transport of ['long-polling', 'websocket'] as const) {
  describe(`against express-bayeux over ${transport}`, () => {
    test('subscribe, publish, wildcards, services, refusals, unsubscribe, disconnect', { timeout: 15_000 }, async () => {
      const s = await server({ timeout: 2000 });
      const seen: Array<{ channel: string; transport: string }> = [];
      s.cometd.use((message, ctx, next) => {
        seen.push({ channel: message.channel, transport: ctx.transport });
        if (message.channel === '/private/x' || message.subscription === '/private/**') {
          next(new ServerBayeuxError(403, 'Forbidden', [String(message.subscription ?? message.channel)]));
          return;
        }
        next();
      });
      s.cometd.service('/service/echo', (message) => ({ echo: message.data }));

      const failed: BayeuxMessage[] = [];
      const transports: TransportName[] = [];
      const c = client(s.url, { transports: [transport], onError: (message) => failed.push(message) });
      c.on('transport', (name) => transports.push(name));
      const publisher = client(s.url, { transports: ['long-polling'] });

      const got: unknown[] = [];
      const sub = await c.subscribe('/chat/demo', (data) => got.push(data));
      assert.equal(c.transport, transport);
      assert.deepEqual(transports, [transport]);
      assert.equal(c.ackEnabled, true, 'our server offers acks');

      const reply = await c.publish('/chat/demo', { user: 'me', chat: 'hi' });
      assert.equal(reply.successful, true);
      await waitFor(() => got.length === 1, { timeout: 3000, what: 'own publish' });
      assert.deepEqual(got, [{ user: 'me', chat: 'hi' }]);

      const one: string[] = [];
      const many: string[] = [];
      await c.subscribe<string>('/wild/*', (data, message) => one.push(`${message.channel}=${data}`));
      await c.subscribe<string>('/wild/**', (data, message) => many.push(`${message.channel}=${data}`));
      await publisher.publish('/wild/a', 'x');
      await publisher.publish('/wild/a/b', 'y');
      await s.cometd.publish('/wild/c', 'from the server');
      await waitFor(() => many.length === 3, { timeout: 3000, what: 'wildcard deliveries' });
      assert.deepEqual(one, ['/wild/a=x', '/wild/c=from the server']);
      assert.deepEqual(many, ['/wild/a=x', '/wild/a/b=y', '/wild/c=from the server']);

      const echo = await c.publish('/service/echo', 'ping');
      assert.deepEqual(echo.data, { echo: 'ping' });

      const refused = await c.publish('/private/x', 1).catch((e: unknown) => e);
      assert.ok(refused instanceof BayeuxError);
      assert.equal(refused.code, 403);
      assert.deepEqual(refused.args, ['/private/x']);
      assert.equal(refused.message, 'Forbidden');
      const refusedSub = await c.subscribe('/private/**', () => {}).catch((e: unknown) => e);
      assert.ok(refusedSub instanceof BayeuxError);
      assert.equal(refusedSub.code, 403);
      assert.deepEqual(failed.map((m) => m.channel), ['/private/x', '/meta/subscribe']);
      assert.equal(failed[0]?.error, '403:/private/x:Forbidden');

      await sub.unsubscribe();
      await c.unsubscribe('/wild/*');
      await publisher.publish('/chat/demo', 'after unsubscribe');
      await publisher.publish('/wild/d', 'sentinel');
      await waitFor(() => many.length === 4, { timeout: 3000, what: 'sentinel' });
      assert.equal(got.length, 1);
      assert.equal(one.length, 2);

      const mine = seen.filter((r) => r.channel === '/chat/demo' || r.channel === '/service/echo');
      assert.ok(mine.length >= 2);
      const fromClient = seen.filter((r) => r.channel === '/meta/subscribe' || r.channel === '/meta/connect');
      assert.ok(fromClient.some((r) => r.transport === transport));
      if (transport === 'long-polling') assert.ok(seen.every((r) => r.transport !== 'websocket'));

      await c.disconnect();
      assert.equal(c.state, 'disconnected');
      await waitFor(() => seen.some((r) => r.channel === '/meta/disconnect'), { timeout: 3000, what: 'disconnect seen' });
    });

    test('the ack extension: connect replies lost on the way; every message arrives once, in order', { timeout: 20_000 }, async () => {
      const s = await server({ timeout: 2000, maxInterval: 10_000 });
      const proxy = await startCuttingProxy(s.port, (chunk) => {
        const text = chunk.toString('latin1');
        return text.includes('"channel":"/meta/connect"') && text.includes('"channel":"/acked","data"');
      }, 3);
      cleanup(() => proxy.close());
      const c = client(`http://127.0.0.1:${proxy.port}/cometd`, { transports: [transport] });
      const got: number[] = [];
      await c.subscribe<number>('/acked', (n) => got.push(n));
      assert.equal(c.ackEnabled, true);
      assert.equal(c.transport, transport);
      const N = 30;
      for (let i = 1; i <= N; i++) {
        await s.cometd.publish('/acked', i);
        await sleep(10);
      }
      await waitFor(() => got.length >= N, { timeout: 15_000, what: `all ${N} messages (got ${got.length}, cuts ${proxy.cuts})` });
      await sleep(100);
      assert.ok(proxy.cuts >= 1, 'the proxy lost at least one reply');
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1));
    });

    test('the server restarts on the same port: re-handshake, re-subscribe, offline publishes in order', { timeout: 15_000 }, async () => {
      const first = await startServer({ timeout: 2000 });
      const c = client(first.url, { transports: [transport] });
      const got: unknown[] = [];
      await c.subscribe('/restart/x', (data) => got.push(data));
      await c.publish('/restart/x', 'before');
      await waitFor(() => got.length === 1, { timeout: 3000, what: 'first delivery' });
      const firstId = c.clientId;

      await first.close();
      await waitFor(() => c.state === 'reconnecting', { timeout: 3000, what: 'reconnecting' });
      const offline = ['offline 1', 'offline 2', 'offline 3'].map((data) => c.publish('/restart/x', data));
      await sleep(100);
      const second = await server({ timeout: 2000 }, { port: first.port });
      await Promise.all(offline);
      await waitFor(() => got.length === 4, { timeout: 3000, what: 'offline publishes' });
      assert.deepEqual(got, ['before', 'offline 1', 'offline 2', 'offline 3']);
      assert.notEqual(c.clientId, firstId);
      assert.equal(c.transport, transport);
      await second.cometd.publish('/restart/x', 'after');
      await waitFor(() => got.length === 5, { timeout: 3000, what: 'delivery after restart' });
    });
  });
}

describe('against express-bayeux', () => {
  test('follows interval advice and keeps one /meta/connect outstanding', { timeout: 15_000 }, async () => {
    const s = await server({ timeout: 200, interval: 300 });
    const connects: number[] = [];
    s.cometd.use((message, _ctx, next) => {
      if (message.channel === '/meta/connect') connects.push(Date.now());
      next();
    });
    const c = client(s.url, { transports: ['long-polling'] });
    await c.connect();
    await waitFor(() => connects.length >= 4, { timeout: 10_000, what: `4 connects (got ${connects.length})` });
    await c.disconnect();
    // Connect 1 is answered at once (advice.timeout 0); then each cycle is
    // interval (300) + hold (200). Never two at once, never faster than the interval.
    assert.ok(connects.length >= 4, `${connects.length} connects`);
    for (let i = 1; i < connects.length; i++) {
      const gap = (connects[i] as number) - (connects[i - 1] as number);
      assert.ok(gap >= 280, `gap ${i} was ${gap} ms`);
    }
  });
});

