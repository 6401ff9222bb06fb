/**
 * channelLogs: 'shard', positions by node (issue #23; lib/engines/redis/
 * positions.ts): a session pushed to over WebSocket that keeps up costs
 * its node no write per flush: its hash names the node (`sn`), whose seen
 * (`{t0}:seen:<node>`) is its channels' position; one that falls behind
 * leaves the seen first, with its own positions; a node that takes a
 * session over starts from the seen. Real redis-server, two nodes in this
 * process.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { bucketOf } from '../lib/engines/redis/keys.js';
import { expand } from '../lib/server/expand.js';
import { RecordingHost } from './engine-suite.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { waitFor } from './helpers/wait.js';

if (!findRedisServer()) {
  it('positions by node', { skip: announceRedisSkip() }, () => {});
} else {
  const server = await startRedisServer();
  after(() => server.stop());
  let counter = 0;

  async function nodes(t: TestContext) {
    const prefix = `seen-${process.pid}-${++counter}:`;
    const open = async () => {
      const engine = new RedisEngine({ url: server.url }, { prefix, channelLogs: 'shard', positionFlush: 30, reconnectMaxDelay: 100, commandTimeout: 2000 });
      await engine.open(new RecordingHost(), { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 1000 });
      t.after(() => engine.close());
      return engine;
    };
    const client = createClient({ url: server.url });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.close().catch(() => {}));
    const a = await open();
    const b = await open();
    const hash = (id: string) => `${prefix}{s${bucketOf(id)}}:${id}`;
    return {
      a,
      b,
      /** The node whose seen applies to the session ('' none). */
      seenNode: async (id: string) => (await client.hGet(hash(id), 'sn')) ?? '',
      seen: async (node: string) => (await client.get(`${prefix}{t0}:seen:${node}`)) ?? '',
      position: async (id: string, channel: string) => (await client.hGet(`${hash(id)}:subs`, channel)) ?? '',
    };
  }

  /** `a` before `b` as positions ('<ms>-<seq>'). */
  const before = (a: string, b: string) => {
    const [am, as] = a.split('-').map(Number) as [number, number];
    const [bm, bs] = b.split('-').map(Number) as [number, number];
    return am < bm || (am === bm && as < bs);
  };

  describe('channelLogs shard: positions by node', () => {
    it('a session that keeps up is not written per flush; the node that takes it over starts from the seen', async (t) => {
      const { a, b, seenNode, seen, position } = await nodes(t);
      const id = await a.createSession({ ack: false, ttl: 30_000 });
      await a.subscribe(id, '/c');
      const start = await position(id, '/c');
      await a.publish(expand('/c'), '"1"');
      assert.deepEqual((await a.takeMany([id]))[0]?.messages, ['"1"']);
      await waitFor(async () => (await seenNode(id)) === a.nodeId, { timeout: 5000 });
      const first = await seen(a.nodeId);
      assert.ok(before(start, first), `the seen ${first} is past the subscription's start ${start}`);
      await a.publish(expand('/c'), '"2"');
      await a.publish(expand('/c'), '"3"');
      assert.deepEqual((await a.takeMany([id]))[0]?.messages, ['"2"', '"3"']);
      await waitFor(async () => before(first, await seen(a.nodeId)), { timeout: 5000 });
      assert.equal(await position(id, '/c'), start, 'the session\'s own position is not written while it follows the seen');
      // b takes it over: the seen is its position, nothing comes again.
      assert.deepEqual((await b.take(id))?.messages, []);
      assert.equal(await seenNode(id), '', 'b\'s positions are its own');
      assert.ok(!before(await position(id, '/c'), await seen(a.nodeId)), 'the seen was written as its position');
      await a.publish(expand('/c'), '"4"');
      await waitFor(async () => ((await b.take(id))?.messages ?? []).includes('"4"'), { timeout: 5000 });
    });

    it('a session that falls behind leaves the seen first: the node that takes it over gets what it was not pushed', async (t) => {
      const { a, b, seenNode, seen } = await nodes(t);
      const id = await a.createSession({ ack: false, ttl: 30_000 });
      // Another session that keeps up: the seen moves on for it.
      const other = await a.createSession({ ack: false, ttl: 30_000 });
      await a.subscribe(id, '/c');
      await a.subscribe(other, '/c');
      await a.publish(expand('/c'), '"1"');
      assert.deepEqual((await a.takeMany([id, other])).map((r) => r?.messages), [['"1"'], ['"1"']]);
      await waitFor(async () => (await seenNode(id)) === a.nodeId && (await seenNode(other)) === a.nodeId, { timeout: 5000 });
      const first = await seen(a.nodeId);
      // Published, pushed to the other only: the session's queue holds them at the next flushes, while the seen moves past them.
      await a.publish(expand('/c'), '"2"');
      await a.publish(expand('/c'), '"3"');
      assert.deepEqual((await a.takeMany([other]))[0]?.messages, ['"2"', '"3"']);
      await waitFor(async () => (await seenNode(id)) === '' && before(first, await seen(a.nodeId)), { timeout: 5000 });
      assert.equal(await seenNode(other), a.nodeId);
      assert.deepEqual((await b.take(id))?.messages, ['"2"', '"3"']);
    });

    it('a new subscription, from any node, stops a session following the seen: its channels at the seen, the new one from its own start', async (t) => {
      // The holder may apply a publish to the new channel before it follows it for the session, and write a seen past it:
      // the seen must not stand for the new channel.
      const { a, b, seenNode, seen, position } = await nodes(t);
      const id = await a.createSession({ ack: false, ttl: 30_000 });
      await a.subscribe(id, '/c');
      await a.publish(expand('/c'), '"1"');
      await a.takeMany([id]);
      await waitFor(async () => (await seenNode(id)) === a.nodeId, { timeout: 5000 });
      const atSeen = await seen(a.nodeId);
      assert.equal(await b.subscribe(id, '/d'), true);
      assert.equal(await seenNode(id), '');
      assert.ok(!before(await position(id, '/c'), atSeen), 'the seen written as /c\'s position');
      const start = await position(id, '/d');
      await b.publish(expand('/d'), '"2"');
      // Taken over by b before a pushed it: it comes from /d's own start.
      assert.deepEqual((await b.take(id))?.messages, ['"2"']);
      assert.ok(before(start, await position(id, '/d')), '/d moved on from its start with the take');
    });

    it('a session whose socket closed leaves at once', async (t) => {
      const { a, seenNode } = await nodes(t);
      const id = await a.createSession({ ack: false, ttl: 30_000 });
      await a.subscribe(id, '/c');
      await a.publish(expand('/c'), '"1"');
      await a.takeMany([id]);
      await waitFor(async () => (await seenNode(id)) === a.nodeId, { timeout: 5000 });
      a.detached(id);
      await waitFor(async () => (await seenNode(id)) === '', { timeout: 5000 });
    });
  });
}
