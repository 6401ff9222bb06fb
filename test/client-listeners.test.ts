/**
 * `addListener()` (CometD's name): hearing channels the server joined the
 * session to, alongside subscriptions; and the `debug`/`logger` options,
 * against this package's server over long-polling and WebSocket.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BayeuxClient, type BayeuxMessage } from '../lib/client/node.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { testClients } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';

const { client, cleanup } = testClients();

async function server(): Promise<TestServer> {
  const s = await startServer({ timeout: 1000 });
  cleanup(() => s.close());
  return s;
}

describe('addListener', () => {
  test('arguments are checked', () => {
    const c = new BayeuxClient('http://127.0.0.1:1/cometd');
    assert.throws(() => c.addListener('/meta/connect', () => undefined), TypeError);
    assert.throws(() => c.addListener('/meta/**', () => undefined), TypeError);
    assert.throws(() => c.addListener('not a channel', () => undefined), TypeError);
    assert.throws(() => c.addListener('/a/*/b', () => undefined), TypeError);
    assert.throws(() => c.addListener('/a', 'nope' as never), TypeError);
    const listener = c.addListener('/a/**', () => undefined);
    assert.equal(listener.channel, '/a/**');
    assert.equal(listener.active, true);
    assert.equal(c.removeListener(listener), true);
    assert.equal(listener.active, false);
    assert.equal(c.removeListener(listener), false);
    listener.remove();
    assert.equal(c.removeListener({ channel: '/a', active: true, remove() {} }), false);
  });

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`over ${transport}: hears a channel the server joined it to, and each handler gets a message once`, { timeout: 15_000 }, async () => {
      const s = await server();
      const c = client(s.url, { transports: [transport] });
      const heard: Array<[string, unknown]> = [];
      const room = c.addListener('/rooms/*', (data, message) => heard.push([message.channel, data]));
      await c.connect();
      assert.equal(await s.cometd.join(c.clientId as string, '/rooms/1'), true);
      await s.cometd.publish('/rooms/1', 'welcome');
      await s.cometd.publish('/rooms/1/deeper', 'not for /rooms/*');
      await waitFor(() => heard.length >= 1, { timeout: 5000, what: 'the joined room' });
      assert.deepEqual(heard, [['/rooms/1', 'welcome']]);

      // Subscribed and listened: each handler once per message.
      const subscribed: unknown[] = [];
      const everything: unknown[] = [];
      const exact: unknown[] = [];
      await c.subscribe('/chat/demo', (data) => subscribed.push(data));
      const all = c.addListener('/chat/**', (data) => everything.push(data));
      c.addListener('/chat/demo', (data) => exact.push(data));
      await c.publish('/chat/demo', 1);
      await waitFor(() => subscribed.length === 1 && everything.length === 1 && exact.length === 1, { timeout: 5000, what: 'one copy each' });
      await sleep(100);
      assert.deepEqual([subscribed, everything, exact], [[1], [1], [1]]);

      all.remove();
      room.remove();
      await s.cometd.publish('/rooms/1', 'after remove');
      await c.publish('/chat/demo', 2);
      await waitFor(() => subscribed.length === 2 && exact.length === 2, { timeout: 5000, what: 'the second message' });
      await sleep(100);
      assert.deepEqual(everything, [1]);
      assert.deepEqual(heard, [['/rooms/1', 'welcome']]);

      // A listener alone subscribes nothing on the server.
      assert.deepEqual(await s.cometd.subscribers('/chat/other'), []);
    });
  }

  test('listeners outlive a new session', { timeout: 15_000 }, async () => {
    const s = await server();
    const c = client(s.url, { transports: ['long-polling'] });
    const heard: unknown[] = [];
    c.addListener('/rooms/**', (data) => heard.push(data));
    await c.connect();
    await c.reconnect();
    assert.equal(await s.cometd.join(c.clientId as string, '/rooms/2'), true);
    await s.cometd.publish('/rooms/2', 'again');
    await waitFor(() => heard.length === 1, { timeout: 5000, what: 'a message in the new session' });
  });
});

describe('debug and logger', () => {
  test('options are checked', () => {
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { debug: 'yes' as never }), /debug/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { logger: {} as never }), /logger/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { logger: { error() {}, warn() {}, info() {} } as never }), /logger/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { timesync: 1 as never }), /timesync/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { maxResponseBytes: 10 }), /maxResponseBytes/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { maxResponseBytes: 2 ** 40 }), /maxResponseBytes/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { maxRetryDelay: 2 ** 31 }), /maxRetryDelay/);
  });

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`over ${transport}: state changes at info, every message at debug, no secrets, data truncated`, { timeout: 15_000 }, async () => {
      const s = await server();
      const lines: Array<[string, string]> = [];
      const logger = {
        error: (text: string) => lines.push(['error', text]),
        warn: (text: string) => lines.push(['warn', text]),
        info: (text: string) => lines.push(['info', text]),
        debug: (text: string) => lines.push(['debug', text]),
      };
      const c = client(s.url, {
        transports: [transport],
        logger,
        extensions: [{ outgoing(message: BayeuxMessage) { message.ext = { ...message.ext, token: 'secret-token' }; return message; } }],
      });
      await c.subscribe('/chat/log', () => undefined);
      const clientId = c.clientId as string;
      await c.publish('/chat/log', 'y'.repeat(10_000));
      await c.disconnect();
      const info = lines.filter(([level]) => level === 'info').map(([, text]) => text);
      const debug = lines.filter(([level]) => level === 'debug').map(([, text]) => text);
      assert.ok(info.some((text) => text.includes('handshake')), info.join('\n'));
      assert.ok(info.some((text) => text.includes('connected') && text.includes(transport)), info.join('\n'));
      assert.ok(info.some((text) => text.includes('disconnected')), info.join('\n'));
      for (const channel of ['/meta/handshake', '/meta/connect', '/meta/subscribe', '/chat/log', '/meta/disconnect']) {
        assert.ok(debug.some((text) => text.includes(' out ') && text.includes(channel)), `${channel} out\n${debug.join('\n')}`);
        assert.ok(debug.some((text) => text.includes(' in ') && text.includes(channel)), `${channel} in\n${debug.join('\n')}`);
      }
      assert.ok(debug.some((text) => text.includes(transport)));
      const all = lines.map(([, text]) => text).join('\n');
      assert.ok(!all.includes('secret-token'), 'ext is never logged');
      assert.ok(!all.includes(clientId), 'a whole clientId is never logged');
      assert.ok(all.includes(clientId.slice(0, 6)), 'its first characters are');
      assert.ok(lines.every(([, text]) => text.length < 1000), 'data is truncated');
    });
  }

  test('no logger, no debug: nothing on the console; a logger that throws breaks nothing', { timeout: 15_000 }, async () => {
    const s = await server();
    const original = { ...console };
    const written: unknown[] = [];
    for (const level of ['log', 'error', 'warn', 'info', 'debug'] as const) {
      console[level] = (...args: unknown[]) => { written.push(args); };
    }
    try {
      const quiet = client(s.url, { transports: ['long-polling'] });
      await quiet.publish('/chat/quiet', 1);
      await quiet.disconnect();
      assert.deepEqual(written, []);
      const loud = client(s.url, { transports: ['long-polling'], debug: true });
      await loud.publish('/chat/loud', 1);
      await loud.disconnect();
      assert.ok(written.length > 0, 'debug: true logs to the console');
    } finally {
      Object.assign(console, original);
    }
    const thrower = () => { throw new Error('logger down'); };
    const rejecter = () => Promise.reject(new Error('logger down'));
    const broken = client(s.url, { transports: ['long-polling'], logger: { error: thrower, warn: rejecter, info: thrower, debug: rejecter } });
    await broken.publish('/chat/broken', 1);
    await broken.disconnect();
  });
});
