/**
 * The package client's recovery (issue #20) on the memory engine: a client
 * whose session expired while its network was down gets what it missed,
 * once and in order, after its new handshake; too much missed, or a
 * server restart, is reported as `recovered: false`.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { BayeuxClient, RecoverOutcome } from '../lib/client/node.js';
import { testClients } from './helpers/clients.js';
import { nextEvent, startServer, type TestServer } from './helpers/http-server.js';
import { startSwitchProxy, type SwitchProxy } from './helpers/tcp-proxy.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';

const { client } = testClients();
const MAX_INTERVAL = 500;

async function setup(t: TestContext, size: number): Promise<{ server: TestServer; proxy: SwitchProxy }> {
  const server = await startServer({ history: { '/chat/**': { size, ttl: 60_000 } }, maxInterval: MAX_INTERVAL, timeout: 2000 });
  t.after(() => server.close());
  const proxy = await startSwitchProxy(server.port);
  t.after(() => proxy.close());
  return { server, proxy };
}

/** A recovering subscriber: what its handler got, and the recover events. */
async function subscriber(c: BayeuxClient, channel: string, recover: Parameters<BayeuxClient['subscribe']>[2] = { recover: true }) {
  const got: unknown[] = [];
  const recovers: Array<[string, RecoverOutcome]> = [];
  c.on('recover', (ch, outcome) => recovers.push([ch, outcome]));
  const subscription = await c.subscribe(channel, (data) => got.push(data), recover);
  return { got, recovers, subscription };
}

/**
 * Cut the client off until the server has expired its session and at
 * least 3 × maxInterval have passed; `meanwhile` runs once the session is
 * gone.
 */
async function outage(server: TestServer, proxy: SwitchProxy, clientId: string, meanwhile: () => Promise<void>): Promise<void> {
  const expired = nextEvent<[string, string]>(server, 'disconnect', (id, reason) => id === clientId && reason === 'timeout', 10_000);
  const down = Date.now();
  proxy.down();
  await expired;
  await meanwhile();
  const left = 3 * MAX_INTERVAL - (Date.now() - down);
  if (left > 0) await sleep(left);
  proxy.up();
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

for (const kind of ['websocket', 'long-polling'] as const) {
  describe(`package client recovery over ${kind}`, () => {
    it('its session expires while cut off for 3 × maxInterval; the 50 published meanwhile arrive once, in order, then live ones', async (t) => {
      const { server, proxy } = await setup(t, 100);
      const c = client(`http://127.0.0.1:${proxy.port}/cometd`, { transports: [kind] });
      const { got, recovers, subscription } = await subscriber(c, '/chat/room');
      assert.equal(c.transport, kind);
      for (const n of range(1, 3)) await server.cometd.publish('/chat/room', n);
      await waitFor(() => got.length === 3, { timeout: 5000, what: 'the first 3 messages' });
      const before = subscription.position();
      assert.equal(before?.offset, 3);
      const first = c.clientId as string;
      await outage(server, proxy, first, async () => {
        for (const n of range(4, 53)) await server.cometd.publish('/chat/room', n);
      });
      await waitFor(() => recovers.length === 1, { timeout: 10_000, what: 'the recover event' });
      assert.deepEqual(recovers, [['/chat/room', { recovered: true, missed: 50 }]]);
      assert.notEqual(c.clientId, first, 'a new session');
      await waitFor(() => got.length >= 53, { timeout: 10_000, what: `53 messages (have ${got.length})` });
      for (const n of range(54, 58)) await server.cometd.publish('/chat/room', n);
      await waitFor(() => got.length >= 58, { timeout: 5000, what: 'the live messages' });
      await sleep(100);
      assert.deepEqual(got, range(1, 58));
      assert.deepEqual(subscription.position(), { epoch: before?.epoch, offset: 58 });
    });
  });
}

describe('package client recovery', () => {
  it('more missed than the history keeps: recovered false, nothing replayed, live messages go on', async (t) => {
    const { server, proxy } = await setup(t, 10);
    const c = client(`http://127.0.0.1:${proxy.port}/cometd`, { transports: ['long-polling'] });
    const { got, recovers, subscription } = await subscriber(c, '/chat/small');
    await server.cometd.publish('/chat/small', 1);
    await waitFor(() => got.length === 1, { timeout: 5000, what: 'the first message' });
    await outage(server, proxy, c.clientId as string, async () => {
      for (const n of range(2, 31)) await server.cometd.publish('/chat/small', n);
    });
    await waitFor(() => recovers.length === 1, { timeout: 10_000, what: 'the recover event' });
    assert.deepEqual(recovers, [['/chat/small', { recovered: false, missed: 0 }]]);
    assert.equal(subscription.position()?.offset, 31, 'the channel goes on from where the server is');
    await server.cometd.publish('/chat/small', 'live');
    await waitFor(() => got.length === 2, { timeout: 5000, what: 'the live message' });
    await sleep(100);
    assert.deepEqual(got, [1, 'live']);
  });

  it('a restarted memory-engine server is a new epoch: recovered false, then the new epoch is followed', async (t) => {
    const first = await startServer({ history: { '/chat/**': { size: 100 } }, maxInterval: MAX_INTERVAL });
    const port = first.port;
    const c = client(first.url, { transports: ['websocket'] });
    const { got, recovers, subscription } = await subscriber(c, '/chat/restart');
    await first.cometd.publish('/chat/restart', 'old');
    await waitFor(() => got.length === 1, { timeout: 5000, what: 'the first message' });
    const old = subscription.position();
    await first.close();
    const second = await startServer({ history: { '/chat/**': { size: 100 } }, maxInterval: MAX_INTERVAL }, { port });
    t.after(() => second.close());
    await waitFor(() => recovers.length === 1, { timeout: 15_000, what: 'the recover event after the restart' });
    assert.deepEqual(recovers, [['/chat/restart', { recovered: false, missed: 0 }]]);
    await second.cometd.publish('/chat/restart', 'new');
    await waitFor(() => got.length === 2, { timeout: 5000, what: 'a message from the new server' });
    assert.deepEqual(got, ['old', 'new']);
    const now = subscription.position();
    assert.notEqual(now?.epoch, old?.epoch);
    assert.equal(now?.offset, 1);
  });

  it('{ recover: { last: N } } and { recover: position } start earlier, and are reported', async (t) => {
    const { server } = await setup(t, 100);
    for (const n of range(1, 6)) await server.cometd.publish('/chat/start', n);
    const c = client(server.url);
    const last = await subscriber(c, '/chat/start', { recover: { last: 2 } });
    await waitFor(() => last.got.length === 2, { timeout: 5000, what: 'the last 2' });
    assert.deepEqual(last.got, [5, 6]);
    assert.deepEqual(last.recovers, [['/chat/start', { recovered: true, missed: 2 }]]);
    const { epoch } = await server.cometd.history('/chat/start');
    const other = client(server.url);
    const from = await subscriber(other, '/chat/start', { recover: { epoch, offset: 3 } });
    await waitFor(() => from.got.length === 3, { timeout: 5000, what: 'the 3 after offset 3' });
    assert.deepEqual(from.got, [4, 5, 6]);
    assert.deepEqual(from.recovers, [['/chat/start', { recovered: true, missed: 3 }]]);
    assert.deepEqual(from.subscription.position(), { epoch, offset: 6 });
  });

  it('bad recover options and wildcards are refused before anything is sent; a channel without history is refused by the server', async (t) => {
    const { server } = await setup(t, 100);
    const c = client(server.url);
    for (const recover of [false, 'yes', { last: -1 }, { epoch: 'e' }, { epoch: 5, offset: 1 }, { offset: 1 }, null]) {
      await assert.rejects(c.subscribe('/chat/x', () => undefined, { recover } as never), TypeError, JSON.stringify(recover));
    }
    await assert.rejects(c.subscribe('/chat/*', () => undefined, { recover: true }), /needs a channel, not a pattern/);
    await assert.rejects(within(c.subscribe('/none', () => undefined, { recover: true }), 5000, 'the refusal'), /no_history/);
    const plain = await c.subscribe('/none', () => undefined);
    assert.equal(plain.position(), undefined);
  });
});
