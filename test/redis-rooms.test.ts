/**
 * Rooms, session data, except-sender and server-side disconnect across two
 * nodes sharing one Redis: a client is held by node A, and node B manages
 * it (join, leave, subscribers, session data, publish except, disconnect).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { BayeuxError } from '../lib/index.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { get, startServer, type TestServer } from './helpers/http-server.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { openWire, wireSession, type Kind, type Msg, type Wire } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';
import { testChannelLogs } from './helpers/channel-logs.js';

const fast = { reconnectMaxDelay: 100, commandTimeout: 2000, openTimeout: 3000, ...testChannelLogs() };

if (!findRedisServer()) {
  const message = announceRedisSkip();
  it('rooms across Redis nodes', { skip: message }, () => {});
} else {
  for (const kind of ['long-polling', 'websocket'] as Kind[]) {
    describe(`rooms, session data and except across two Redis nodes (client on ${kind})`, () => {
      let redis: RedisServer;
      let a: TestServer;
      let b: TestServer;
      const wires: Wire[] = [];
      before(async () => {
        redis = await startRedisServer();
        const prefix = `rooms-${process.pid}-${kind}:`;
        a = await startServer({ timeout: 1500, engine: new RedisEngine({ url: redis.url }, { ...fast, prefix }) });
        b = await startServer({ timeout: 1500, engine: new RedisEngine({ url: redis.url }, { ...fast, prefix }) });
      });
      after(async () => {
        for (const w of wires) w.close();
        await a?.close();
        await b?.close();
        await redis?.stop();
      });

      async function clientOnA(): Promise<{ wire: Wire; clientId: string }> {
        const wire = await openWire(kind, a.url);
        wires.push(wire);
        return { wire, clientId: await wireSession(wire) };
      }

      /** Deliveries for a client on A: pushed on a socket, or in connect replies. */
      async function received(wire: Wire, clientId: string, n: number): Promise<Msg[]> {
        if (kind === 'long-polling') {
          const end = Date.now() + 5000;
          while (wire.delivered.length < n && Date.now() < end) {
            await wire.send({ channel: '/meta/connect', clientId, connectionType: kind, advice: { timeout: 0 } });
            if (wire.delivered.length < n) await sleep(30);
          }
        }
        return wire.waitDelivered(n, 5000);
      }

      it('node B joins a client of node A to a room, lists it, publishes to it except someone, and makes it leave', async () => {
        const alice = await clientOnA();
        const bob = await clientOnA();
        assert.equal(await b.cometd.join(alice.clientId, '/rooms/r1'), true);
        assert.equal(await b.cometd.join(bob.clientId, '/rooms/r1'), true);
        assert.deepEqual((await b.cometd.subscribers('/rooms/r1')).sort(), [alice.clientId, bob.clientId].sort());
        await b.cometd.publish('/rooms/r1', 'hello', { except: bob.clientId, ext: { from: 'b' } });
        const [got] = await received(alice.wire, alice.clientId, 1);
        assert.deepEqual(got, { channel: '/rooms/r1', data: 'hello', ext: { from: 'b' } });
        assert.equal(await b.cometd.leave(alice.clientId, '/rooms/r1'), true);
        assert.deepEqual(await b.cometd.subscribers('/rooms/r1'), [bob.clientId]);
        await b.cometd.publish('/rooms/r1', 'for bob');
        const bobs = await received(bob.wire, bob.clientId, 1);
        assert.deepEqual(bobs.map((m) => m['data']), ['for bob'], 'bob was excepted from the first');
        assert.equal(await b.cometd.join('no-such-session', '/rooms/r1'), false);
      });

      it('session data set on one node is read on the other, and goes with the session', async () => {
        const carol = await clientOnA();
        await a.cometd.session(carol.clientId).set('nick', 'carol');
        assert.equal(await b.cometd.session(carol.clientId).get('nick'), 'carol');
        await b.cometd.session(carol.clientId).set('room', { id: 2 });
        assert.deepEqual(await a.cometd.session(carol.clientId).all(), { nick: 'carol', room: { id: 2 } });
        await carol.wire.send({ channel: '/meta/disconnect', clientId: carol.clientId });
        await assert.rejects(b.cometd.session(carol.clientId).get('nick'), (err: unknown) => err instanceof BayeuxError && err.code === 402);
      });

      it('node B ends a session node A holds; its client is told to handshake', async () => {
        const dave = await clientOnA();
        let answer: Msg | undefined;
        if (kind === 'long-polling') {
          const held = dave.wire.send({ channel: '/meta/connect', clientId: dave.clientId, connectionType: kind });
          // The connect is held on A (the earlier sessions' connects were answered at once).
          await waitFor(async () => (await a.cometd.stats()).heldConnections === 1, { what: 'the connect held on A' });
          assert.equal(await b.cometd.disconnect(dave.clientId), true);
          [answer] = await held;
          assert.match(String(answer?.['error']), /^402:/);
        } else {
          assert.equal(await b.cometd.disconnect(dave.clientId), true);
          const [refused] = await dave.wire.send({ channel: '/x', clientId: dave.clientId, data: 1 });
          answer = refused;
          assert.match(String(answer?.['error']), /^402:/);
        }
        assert.equal(answer?.['advice']?.reconnect, 'handshake');
      });
    });
  }
}

if (findRedisServer()) {
  describe('the admin page on Redis', () => {
    it('lists every node of the cluster, each with the sessions it holds', async () => {
      const redis = await startRedisServer();
      const prefix = `nodes-${process.pid}:`;
      let admin: ((req: IncomingMessage, res: ServerResponse, next: () => void) => void) | undefined;
      const a = await startServer({ engine: new RedisEngine({ url: redis.url }, { ...fast, prefix }) }, {
        configure: (app) => app.use('/admin', (req, res, next) => (admin ? admin(req, res, next) : next())),
      });
      const b = await startServer({ engine: new RedisEngine({ url: redis.url }, { ...fast, prefix }) });
      admin = a.cometd.admin();
      const wire = await openWire('long-polling', b.url);
      try {
        await wireSession(wire);
        type Nodes = { nodes: Array<{ pid: number; sessions?: number; self?: boolean }> };
        let data: Nodes = { nodes: [] };
        const end = Date.now() + 8000;
        while (Date.now() < end) {
          data = (await get(a.origin + '/admin/data.json')).json as Nodes;
          if (data.nodes.length === 2 && data.nodes.some((n) => n.sessions === 1)) break;
          await sleep(250);
        }
        assert.equal(data.nodes.length, 2, JSON.stringify(data.nodes));
        assert.deepEqual(data.nodes.map((n) => n.sessions ?? -1).sort(), [0, 1], 'B holds the session');
      } finally {
        wire.close();
        await a.close();
        await b.close();
        await redis.stop();
      }
    });
  });
}
