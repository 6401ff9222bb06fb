/**
 * Positions across nodes. A WebSocket that closes on one node, its session
 * picked up by another (no sticky sessions): what the socket was pushed is
 * not sent again. And POSITIONS, the script that writes pushes' positions
 * lazily, never moves one back: a take may have written a newer one first.
 *
 * The first: what the socket was pushed is not sent again.
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
import { Scripts } from '../lib/engines/redis/lua/index.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { openWire, wireSession, type Msg, type Wire } from './helpers/wire.js';
import { waitFor } from './helpers/wait.js';
import { shardLogs, testChannelLogs } from './helpers/channel-logs.js';

const fast = { reconnectMaxDelay: 100, commandTimeout: 2000, openTimeout: 3000, ...testChannelLogs() };

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

    it('sends nothing again once the socket closed; sends again what an open socket was pushed, its node not having written it yet', async () => {
      const closed = await pushedOnA('/d/closed');
      const open = await pushedOnA('/d/open');
      for (const n of [1, 2, 3]) {
        await a.cometd.publish('/d/closed', n);
        await a.cometd.publish('/d/open', n);
      }
      assert.deepEqual((await closed.wire.waitDelivered(3)).map((m) => m['data']), [1, 2, 3]);
      assert.deepEqual((await open.wire.waitDelivered(3)).map((m) => m['data']), [1, 2, 3]);

      // The closed socket's positions reach Redis without waiting for the flush (a minute away).
      const admin = createClient({ url: redis.url });
      admin.on('error', () => {});
      await admin.connect();
      try {
        const subs = `${new Keys(prefix).bucket(closed.clientId)}:${closed.clientId}:subs`;
        // The pattern layout keeps the channel's position under its name; the shard layout, where the shard's
        // log is read: any field of the session's positions.
        const position = async () => (shardLogs() ? JSON.stringify(await admin.hGetAll(subs)) : await admin.hGet(subs, '/d/closed'));
        const before = await position();
        closed.wire.close();
        await waitFor(async () => (await position()) !== before, { timeout: 5000, what: 'the closed socket\'s position written' });
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

      // The other socket is still open on A, and the flush is a minute away: its positions were not
      // written with the closed one's, so B starts from where Redis last had it.
      assert.deepEqual((await connectOnB(open.clientId)).map((m) => m['data']), [1, 2, 3]);
    });
  });

  describe('POSITIONS', () => {
    it('moves a position forward only, and writes none for a pattern the session left', async () => {
      const redis = await startRedisServer();
      const prefix = 'positions:';
      const engine = new RedisEngine({ url: redis.url }, { ...fast, prefix, positionFlush: 60_000 });
      const admin = createClient({ url: redis.url });
      admin.on('error', () => {});
      try {
        await engine.open({ wake: () => undefined, expired: () => undefined }, { maxQueue: 100, maxQueueBytes: Infinity, maxSubscriptions: 100, maxSessionDataBytes: Infinity, sweepInterval: 60_000 });
        await admin.connect();
        const id = await engine.createSession({ ack: false, ttl: 60_000 });
        assert.equal(await engine.subscribe(id, '/p'), true);
        const keys = new Keys(prefix);
        const bucket = keys.bucket(id);
        const hash = `${bucket}:${id}`;
        /** POSITIONS for this session (generation 1) with these (source, position) pairs. */
        const write = (pairs: Array<[string, string]>, mark = '', seen: string[] = ['', '', '']) => admin.sendCommand([
          'EVAL', Scripts.positions.source, '1', bucket, keys.nodeChannelPrefix, 'node1', ...seen, '1', id, '1', mark, String(pairs.length), ...pairs.flat(),
        ]);
        const read = async () => [await admin.hGet(`${hash}:subs`, '/p'), await admin.hGet(hash, 'bp')];
        await write([['/p', '9999999999999-5'], ['', '9999999999999-7']]);
        assert.deepEqual(await read(), ['9999999999999-5', '9999999999999-7']);
        await write([['/p', '9999999999999-3'], ['', '9999999999998-9']]);
        assert.deepEqual(await read(), ['9999999999999-5', '9999999999999-7'], 'older positions leave newer ones');
        await write([['/p', '10000000000000-0'], ['', '9999999999999-8']]);
        assert.deepEqual(await read(), ['10000000000000-0', '9999999999999-8'], 'newer ones are written (ids compared as numbers)');
        assert.equal(await engine.unsubscribe(id, '/p'), true);
        await write([['/p', '10000000000001-0']]);
        assert.equal(await admin.hGet(`${hash}:subs`, '/p'), null, 'no position for a pattern the session left');
        // Shard logs' positions by node: a join names the node, a leave removes it; the seen is written after them.
        await write([], 'j1', [`${prefix}{t0}:seen:node1`, '10000000000002-1023', '600000']);
        assert.equal(await admin.hGet(hash, 'sn'), null, 'no join: the node counts a subscription Redis no longer has');
        await write([], 'j0', [`${prefix}{t0}:seen:node1`, '10000000000002-1023', '600000']);
        assert.equal(await admin.hGet(hash, 'sn'), 'node1');
        assert.equal(await admin.get(`${prefix}{t0}:seen:node1`), '10000000000002-1023');
        assert.ok(Number(await admin.pTTL(`${prefix}{t0}:seen:node1`)) > 500_000, 'the seen has its ttl');
        await write([['', '10000000000003-0']], 'l');
        assert.equal(await admin.hGet(hash, 'sn'), null);
        assert.equal(await admin.hGet(hash, 'bp'), '10000000000003-0', 'a leave writes its positions too');
      } finally {
        await admin.close().catch(() => undefined);
        await engine.close();
        await redis.stop();
      }
    });
  });
}
