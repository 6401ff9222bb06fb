/**
 * A WebSocket that closes on one node, its session picked up by another
 * (no sticky sessions): what the socket was pushed is not sent again.
 * Pushes over WebSocket take from the node's memory and write positions
 * lazily (`positionFlush`); a closing socket has them written at once
 * (`Engine.detached`). Here `positionFlush` is a minute, so only that can
 * have written them; a second client whose socket stays open on A shows
 * what the new node sends without them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { Keys } from '../lib/engines/redis/keys.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { openWire, wireSession, type Msg, type Wire } from './helpers/wire.js';
import { waitFor } from './helpers/wait.js';

const fast = { reconnectMaxDelay: 100, commandTimeout: 2000, openTimeout: 3000 };

if (!findRedisServer()) {
  const message = announceRedisSkip();
  it('detached WebSockets on Redis', { skip: message }, () => {});
} else {
  describe('a WebSocket closed on node A, its session picked up on node B', () => {
    let redis: RedisServer;
    let a: TestServer;
    let b: TestServer;
    const prefix = `detached-${process.pid}:`;
    const wires: Wire[] = [];
    before(async () => {
      redis = await startRedisServer();
      const engine = () => new RedisEngine({ url: redis.url }, { ...fast, prefix, positionFlush: 60_000 });
      a = await startServer({ timeout: 1500, engine: engine() });
      b = await startServer({ timeout: 1500, engine: engine() });
    });
    after(async () => {
      for (const w of wires) w.close();
      await a?.close();
      await b?.close();
      await redis?.stop();
    });

    /** A WebSocket client on A subscribed to `channel`, its connect held (pushes go to the socket). */
    async function pushedOnA(channel: string): Promise<{ wire: Wire; clientId: string }> {
      const wire = await openWire('websocket', a.url);
      wires.push(wire);
      const clientId = await wireSession(wire);
      const [sub] = await wire.send({ channel: '/meta/subscribe', clientId, subscription: channel });
      assert.equal(sub?.['successful'], true);
      // A held connect: deliveries are pushed on the socket (its reply is never waited for).
      void wire.send({ channel: '/meta/connect', clientId, connectionType: 'websocket' }, 30_000).catch(() => undefined);
      return { wire, clientId };
    }

    /** What a long-polling connect on B returns for the session (B takes it over). */
    async function connectOnB(clientId: string): Promise<Msg[]> {
      const wire = await openWire('long-polling', b.url);
      const replies = await wire.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } });
      assert.equal(replies.find((r) => r['channel'] === '/meta/connect')?.['successful'], true, JSON.stringify(replies));
      return wire.delivered;
    }

    it('sends again what a socket was pushed if its node never wrote it; nothing, once the socket closed', async () => {
      const closed = await pushedOnA('/d/closed');
      const open = await pushedOnA('/d/open');
      for (const n of [1, 2, 3]) {
        await a.cometd.publish('/d/closed', n);
        await a.cometd.publish('/d/open', n);
      }
      assert.deepEqual((await closed.wire.waitDelivered(3)).map((m) => m['data']), [1, 2, 3]);
      assert.deepEqual((await open.wire.waitDelivered(3)).map((m) => m['data']), [1, 2, 3]);

      // Without a close, and with the flush a minute away, B starts from where Redis last had it.
      // (First: a closing socket's flush writes every session waiting, this one too.)
      assert.deepEqual((await connectOnB(open.clientId)).map((m) => m['data']), [1, 2, 3]);

      // The closed socket's positions reach Redis without waiting for the flush (a minute away).
      const admin = createClient({ url: redis.url });
      admin.on('error', () => {});
      await admin.connect();
      try {
        const subs = `${new Keys(prefix).bucket(closed.clientId)}:${closed.clientId}:subs`;
        const before = await admin.hGet(subs, '/d/closed');
        closed.wire.close();
        await waitFor(async () => (await admin.hGet(subs, '/d/closed')) !== before, { timeout: 5000, what: 'the closed socket\'s position written' });
      } finally {
        await admin.close().catch(() => undefined);
      }

      assert.deepEqual(await connectOnB(closed.clientId), [], 'nothing the closed socket was pushed comes again');
      await a.cometd.publish('/d/closed', 4);
      const later = await openWire('long-polling', b.url);
      await waitFor(async () => {
        await later.send({ channel: '/meta/connect', clientId: closed.clientId, connectionType: 'long-polling', advice: { timeout: 0 } });
        return later.delivered.length > 0;
      }, { timeout: 5000, what: 'the next message on B' });
      assert.deepEqual(later.delivered.map((m) => m['data']), [4]);
    });
  });
}
