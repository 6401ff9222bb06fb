/**
 * BayeuxClient against a foreign server: Faye 1.4's NodeAdapter on
 * 127.0.0.1, over long-polling and WebSocket.
 */

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { BayeuxClient, BayeuxClientError, BayeuxError, type BayeuxClientOptions, type BayeuxMessage, type TransportName } from '../lib/client/node.js';
import { startFaye, type FayeServer } from './helpers/faye-server.js';
import { sleep, waitFor } from './helpers/wait.js';

const FAST: BayeuxClientOptions = { retryDelay: 20, maxRetryDelay: 200, maxNetworkDelay: 3000 };

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function track<T extends BayeuxClient | FayeServer>(thing: T): T {
  const it: BayeuxClient | FayeServer = thing;
  cleanups.push(() => (it instanceof BayeuxClient ? it.disconnect() : it.close()));
  return thing;
}

for (const transport of ['long-polling', 'websocket'] as const) {
  describe(`against Faye over ${transport}`, () => {
    test('subscribe, publish, wildcards, unsubscribe, disconnect', { timeout: 15_000 }, async () => {
      const faye = track(await startFaye());
      const transports: TransportName[] = [];
      const client = track(new BayeuxClient(faye.url, { ...FAST, transports: [transport] }));
      client.on('transport', (name) => transports.push(name));
      const publisher = track(new BayeuxClient(faye.url, { ...FAST, transports: ['long-polling'] }));

      const exact: unknown[] = [];
      const messages: BayeuxMessage[] = [];
      const sub = await client.subscribe('/chat/demo', (data, message) => {
        exact.push(data);
        messages.push(message);
      });
      assert.equal(client.state, 'connected');
      assert.equal(client.transport, transport);
      assert.deepEqual(transports, [transport]);
      assert.equal(sub.channel, '/chat/demo');
      assert.equal(sub.active, true);

      const reply = await client.publish('/chat/demo', { user: 'me', chat: 'hi' });
      assert.equal(reply.successful, true);
      assert.equal(reply.channel, '/chat/demo');
      await waitFor(() => exact.length === 1, { timeout: 3000, what: 'own publish' });
      assert.deepEqual(exact, [{ user: 'me', chat: 'hi' }]);
      assert.equal(messages[0]?.channel, '/chat/demo');

      const one: string[] = [];
      const many: string[] = [];
      await Promise.all([
        client.subscribe<string>('/wild/*', (data, message) => one.push(`${message.channel}=${data}`)),
        client.subscribe<string>('/wild/**', (data, message) => many.push(`${message.channel}=${data}`)),
      ]);
      await publisher.publish('/wild/a', 'x');
      await publisher.publish('/wild/a/b', 'y');
      await publisher.publish('/wildly', 'z');
      await publisher.publish('/chat/demo', 'from publisher');
      await waitFor(() => many.length === 2 && exact.length === 2, { timeout: 3000, what: 'wildcard deliveries' });
      assert.deepEqual(one, ['/wild/a=x']);
      assert.deepEqual(many, ['/wild/a=x', '/wild/a/b=y']);

      // Messages issued in the same tick travel together.
      const batch = await Promise.all([1, 2, 3].map((n) => client.publish('/batch', n)));
      assert.equal(batch.length, 3);
      const batched = faye.received.filter((r) => r.message.channel === '/batch');
      assert.deepEqual(batched.map((r) => r.message.data), [1, 2, 3]);
      if (transport === 'long-polling') assert.equal(new Set(batched.map((r) => r.request)).size, 1, 'one HTTP request');

      await sub.unsubscribe();
      assert.equal(sub.active, false);
      await client.unsubscribe('/wild/*');
      await publisher.publish('/chat/demo', 'after unsubscribe');
      await publisher.publish('/wild/c', 'sentinel');
      await waitFor(() => many.length === 3, { timeout: 3000, what: 'sentinel' });
      assert.deepEqual(exact, [{ user: 'me', chat: 'hi' }, 'from publisher']);
      assert.deepEqual(one, ['/wild/a=x']);

      // The transport the server saw.
      const fromClient = faye.received.filter((r) => r.message.clientId === client.clientId);
      const connects = fromClient.filter((r) => r.message.channel === '/meta/connect');
      assert.ok(connects.length >= 1);
      for (const r of connects) assert.equal(r.message.connectionType, transport);
      assert.equal(connects[0]?.message.advice && (connects[0].message.advice as { timeout?: number }).timeout, 0);
      const publishes = fromClient.filter((r) => r.message.channel === '/chat/demo');
      assert.equal(publishes.length, 1);
      assert.equal(publishes[0]?.websocket, transport === 'websocket');
      if (transport === 'websocket') assert.ok(faye.upgrades >= 1);
      else assert.equal(faye.upgrades, 0);

      const disconnected: string[] = [];
      client.on('disconnected', (info) => disconnected.push(info.reason));
      const clientId = client.clientId;
      await client.disconnect();
      assert.equal(client.state, 'disconnected');
      assert.equal(client.clientId, undefined);
      assert.deepEqual(disconnected, ['client']);
      assert.ok(faye.received.some((r) => r.message.channel === '/meta/disconnect' && r.message.clientId === clientId));
      assert.equal(many.length, 3);
    });

    test('the server restarts on the same port: re-handshake, re-subscribe, offline publishes in order', { timeout: 15_000 }, async () => {
      const first = await startFaye();
      const client = track(new BayeuxClient(first.url, { ...FAST, transports: [transport] }));
      const events: string[] = [];
      const transports: TransportName[] = [];
      client.on('transport', (name) => transports.push(name));
      client.on('connected', () => events.push('connected'));
      client.on('disconnected', (info) => events.push(`disconnected:${info.reason}`));
      const got: unknown[] = [];
      await client.subscribe('/restart/x', (data) => got.push(data));
      await client.subscribe('/restart/other/**', (data) => got.push(data));
      await client.publish('/restart/x', 'before');
      await waitFor(() => got.length === 1, { timeout: 3000, what: 'first delivery' });
      const firstId = client.clientId;

      await first.close();
      await waitFor(() => client.state === 'reconnecting', { timeout: 3000, what: 'reconnecting' });
      const offline = ['offline 1', 'offline 2', 'offline 3'].map((data) => client.publish('/restart/x', data));
      await sleep(100);

      const second = track(await startFaye({ port: first.port }));
      const replies = await Promise.all(offline);
      for (const reply of replies) assert.equal(reply.successful, true);
      await waitFor(() => got.length === 4, { timeout: 3000, what: 'offline publishes' });
      assert.deepEqual(got, ['before', 'offline 1', 'offline 2', 'offline 3']);
      assert.notEqual(client.clientId, firstId);
      assert.equal(client.state, 'connected');
      assert.equal(client.transport, transport);

      // Re-subscribed on the new server: another client's messages arrive.
      const other = track(new BayeuxClient(second.url, { ...FAST, transports: ['long-polling'] }));
      await other.publish('/restart/x', 'after');
      await other.publish('/restart/other/deep', 'deep');
      await waitFor(() => got.length === 6, { timeout: 3000, what: 'deliveries after restart' });
      assert.deepEqual(got.slice(4), ['after', 'deep']);
      const subscribed = second.received
        .filter((r) => r.message.channel === '/meta/subscribe' && r.message.clientId === client.clientId)
        .map((r) => r.message.subscription);
      assert.deepEqual(subscribed.sort(), ['/restart/other/**', '/restart/x']);
      assert.ok(events.includes('disconnected:network'), events.join());
      assert.equal(events.at(-1), 'connected');
      assert.deepEqual(transports, [transport], 'the transport never changed');
    });
  });
}

describe('against Faye', () => {
  test('falls back to long-polling when WebSocket upgrades are dropped', { timeout: 15_000 }, async () => {
    const faye = track(await startFaye({ dropUpgrades: true }));
    const client = track(new BayeuxClient(faye.url, FAST));
    const transports: TransportName[] = [];
    client.on('transport', (name) => transports.push(name));
    const got: unknown[] = [];
    await client.subscribe('/fallback', (data) => got.push(data));
    await client.publish('/fallback', 1);
    await waitFor(() => got.length === 1, { timeout: 3000, what: 'delivery' });
    assert.equal(client.transport, 'long-polling');
    assert.deepEqual(transports, ['long-polling']);
    assert.ok(faye.upgrades >= 1, 'the client tried a WebSocket');
    assert.deepEqual([...new Set(faye.connectionTypes())], ['long-polling']);
  });

  test('refusals reject with BayeuxError and reach onError; invalid channels are refused before sending', { timeout: 15_000 }, async () => {
    const faye = track(await startFaye({
      refuse(message) {
        if (message.channel === '/forbidden') return '403:/forbidden:Forbidden';
        if (message.channel === '/meta/subscribe' && message.subscription === '/secret/**') return '403:/secret/**,x:Not allowed';
        return undefined;
      },
    }));
    const failed: Array<{ error: Error; message: BayeuxMessage }> = [];
    const errors: Error[] = [];
    const client = track(new BayeuxClient(faye.url, {
      ...FAST,
      transports: ['long-polling'],
      onError: (message, error) => failed.push({ error, message }),
    }));
    client.on('error', (error) => errors.push(error));

    const published = await client.publish('/forbidden', 1).catch((error: unknown) => error);
    assert.ok(published instanceof BayeuxError);
    assert.equal(published.code, 403);
    assert.deepEqual(published.args, ['/forbidden']);
    assert.equal(published.message, 'Forbidden');
    assert.equal(published.toString(), '403:/forbidden:Forbidden');
    assert.equal(failed.at(-1)?.error, published);
    assert.equal(failed.at(-1)?.message.channel, '/forbidden');
    assert.equal(failed.at(-1)?.message.successful, false);

    const handler = () => assert.fail('a refused subscription must not deliver');
    const subscribed = await client.subscribe('/secret/**', handler).catch((error: unknown) => error);
    assert.ok(subscribed instanceof BayeuxError);
    assert.equal(subscribed.code, 403);
    assert.deepEqual(subscribed.args, ['/secret/**', 'x']);
    assert.equal(subscribed.message, 'Not allowed');
    assert.equal(failed.at(-1)?.error, subscribed);

    const before = faye.received.length;
    const local: Array<[Promise<unknown>, number]> = [
      [client.publish('/bad channel', 1), 405],
      [client.publish('/a/*', 1), 405],
      [client.publish('/a/**', 1), 405],
      [client.publish('/meta/handshake', 1), 403],
      [client.publish('a/b', 1), 405],
      [client.publish('/a//b', 1), 405],
      [client.subscribe('/a/**/b', () => {}), 405],
      [client.subscribe('/a/b*', () => {}), 405],
      [client.subscribe('/meta/connect', () => {}), 403],
    ];
    for (const [promise, code] of local) {
      const error = await promise.catch((e: unknown) => e);
      assert.ok(error instanceof BayeuxError, String(error));
      assert.equal(error.code, code);
    }
    assert.equal(failed.length, 2 + local.length);
    await sleep(50);
    assert.equal(faye.received.length - before, faye.received.slice(before).filter((r) => r.message.channel === '/meta/connect').length,
      'nothing but connects reached the server');
    assert.ok(errors.length >= failed.length);

    // Still usable; valid odd characters pass.
    const got: unknown[] = [];
    await client.subscribe('/ok/-_!~()$@', (data) => got.push(data));
    await client.publish('/ok/-_!~()$@', 'fine');
    await waitFor(() => got.length === 1, { timeout: 3000, what: 'delivery' });
  });

  test('a handshake refused with reconnect: none stops the client and rejects what waits', { timeout: 15_000 }, async () => {
    const faye = track(await startFaye({
      refuse: (message) => (message.channel === '/meta/handshake' ? '403::Denied' : undefined),
      rewrite(message) {
        if (message.channel === '/meta/handshake' && message.error) message.advice = { reconnect: 'none' };
      },
    }));
    const failed: Error[] = [];
    const client = track(new BayeuxClient(faye.url, { ...FAST, onError: (_message, error) => failed.push(error) }));
    const published = client.publish('/x', 1).catch((e: unknown) => e);
    const connected = await client.connect().catch((e: unknown) => e);
    assert.ok(connected instanceof BayeuxError);
    assert.equal(connected.code, 403);
    assert.equal(connected.message, 'Denied');
    assert.equal(await published, connected);
    assert.equal(client.state, 'disconnected');
    assert.ok(failed.includes(connected));
    const handshakes = faye.received.filter((r) => r.message.channel === '/meta/handshake');
    assert.equal(handshakes.length, 1, 'no retry after reconnect: none');
  });

  test('extensions add ext to the handshake and see replies; reconnect() starts a new session', { timeout: 15_000 }, async () => {
    const faye = track(await startFaye({
      refuse: (message) => (message.channel === '/meta/handshake' && message.ext?.['token'] !== 's3cret' ? '401::Bad token' : undefined),
    }));
    const client = track(new BayeuxClient(faye.url, { ...FAST, transports: ['websocket', 'long-polling'] }));
    const seen: string[] = [];
    client.use({
      async outgoing(message) {
        if (message.channel === '/meta/handshake') message.ext = { ...message.ext, token: 's3cret' };
        return message;
      },
      incoming(message) {
        seen.push(message.channel);
      },
    });
    await client.connect();
    assert.equal(client.state, 'connected');
    assert.equal(client.transport, 'websocket');
    const handshake = faye.received.find((r) => r.message.channel === '/meta/handshake');
    assert.equal(handshake?.message.ext?.['ack'], true, 'the ack extension asks by default');
    assert.equal(client.ackEnabled, false, 'Faye does not offer acks');
    assert.ok(seen.includes('/meta/handshake'));

    const got: unknown[] = [];
    await client.subscribe('/ext', (data) => got.push(data));
    const firstId = client.clientId;
    await client.reconnect();
    assert.notEqual(client.clientId, firstId);
    await client.publish('/ext', 'again');
    await waitFor(() => got.length === 1, { timeout: 3000, what: 'delivery after reconnect()' });
  });

  test('publishes wait in a bounded queue while offline', { timeout: 15_000 }, async () => {
    const faye = await startFaye();
    const client = track(new BayeuxClient(faye.url, { ...FAST, transports: ['long-polling'], maxQueue: 2 }));
    await client.connect();
    await faye.close();
    await waitFor(() => client.state === 'reconnecting', { timeout: 3000, what: 'reconnecting' });
    const queued = [client.publish('/q', 1), client.publish('/q', 2)];
    for (const p of queued) p.catch(() => undefined);
    const overflow = await client.publish('/q', 3).catch((e: unknown) => e);
    assert.ok(overflow instanceof BayeuxClientError);
    assert.equal(overflow.type, 'queue-full');
    await client.disconnect();
    for (const p of queued) {
      const error = await p.catch((e: unknown) => e);
      assert.ok(error instanceof BayeuxClientError);
      assert.equal(error.type, 'disconnected');
    }
  });
});
