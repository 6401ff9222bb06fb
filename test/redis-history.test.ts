/**
 * Channel history and recovery on RedisEngine across node processes
 * (issue #20): the history lives in Redis, so a client whose session
 * ended while its node was restarted, or killed with `kill -9`, recovers
 * everything published meanwhile through any node. Two nodes
 * (helpers/redis-node.ts) on one `redis-server`, then on a three-primary
 * Redis Cluster; each package client reaches them through a TCP balancer
 * whose backends the test sets.
 *
 * Without `redis-server` on PATH the file says loudly that it skipped.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { BayeuxClient, RecoverOutcome } from '../lib/client/node.js';
import { testClients } from './helpers/clients.js';
import { killAllNodes, NodeProcess, type NodeOptions } from './helpers/node-process.js';
import { startRedisCluster } from './helpers/redis-cluster.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { startBalancer } from './helpers/tcp-balancer.js';
import { waitFor } from './helpers/wait.js';
import { shardLogs } from './helpers/channel-logs.js';

const MAX_INTERVAL = 500;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

if (!findRedisServer()) {
  describe('RedisEngine history across processes', { skip: announceRedisSkip() }, () => {
    it('needs redis-server', () => {});
  });
} else {
  const { client, cleanup } = testClients();
  const server = await startRedisServer();
  // The shard layout is refused on a Redis Cluster for now: a shard run tests one Redis only.
  const cluster = shardLogs() ? undefined : await startRedisCluster();
  after(async () => {
    await killAllNodes();
    await server.stop();
    await cluster?.stop();
  });
  let prefixes = 0;
  const targets: Array<[string, Pick<NodeOptions, 'redisUrl' | 'redisCluster'>]> = [
    ['one Redis', { redisUrl: server.url }],
    ...(cluster ? [['a Redis Cluster', { redisCluster: cluster.urls.join(',') }] as [string, Pick<NodeOptions, 'redisCluster'>]] : []),
  ];
  for (const [where, target] of targets) {
    const options = (): NodeOptions => ({
      ...target,
      prefix: `hist-${process.pid}-${++prefixes}:`,
      maxInterval: MAX_INTERVAL,
      timeout: 2000,
      reconnectMaxDelay: 100,
      history: '/chat/**:1000:60000',
    });

    /** A package client through its own balancer to `node`, subscribed with recover: true. */
    async function subscriber(node: NodeProcess, channel: string, transport: 'websocket' | 'long-polling') {
      const balancer = await startBalancer([node.port], { downMs: 100, connectTimeout: 1000 });
      cleanup(() => balancer.close());
      const c = client(`${balancer.origin}/cometd`, { transports: [transport] });
      const got: unknown[] = [];
      const recovers: Array<[string, RecoverOutcome]> = [];
      c.on('recover', (ch, outcome) => recovers.push([ch, outcome]));
      await c.subscribe(channel, (data) => got.push(data), { recover: true });
      return { c, balancer, got, recovers };
    }

    /** Wait until `node` reports the session of `c` ended by timeout (it expired while cut off). */
    async function expiredOn(node: NodeProcess, c: BayeuxClient): Promise<void> {
      const id = c.clientId as string;
      await node.waitForEvent((e) => e.event === 'disconnect' && e.clientId === id && e.detail === 'timeout', 10_000, `the expiry of ${id}`);
    }

    describe(`RedisEngine history across processes, on ${where}`, () => {
      it('every node restarted one after the other while Redis stays up: clients whose sessions expired meanwhile recover, nothing lost', async () => {
        const common = options();
        let a = await NodeProcess.start('A', common);
        let b = await NodeProcess.start('B', common);
        const onA = await subscriber(a, '/chat/room', 'websocket');
        const onB = await subscriber(b, '/chat/room', 'long-polling');
        let n = 0;
        const publish = async (node: NodeProcess, count: number) => {
          for (let i = 0; i < count; i++) await node.publish('/chat/room', ++n);
        };
        await publish(a, 3);
        await waitFor(() => onA.got.length === 3 && onB.got.length === 3, { timeout: 5000, what: 'the first messages' });
        // A restarts, on the same port; its client's session expires meanwhile (B sweeps it).
        const firstA = onA.c.clientId;
        await a.stop();
        await publish(b, 10);
        await expiredOn(b, onA.c);
        await publish(b, 10);
        a = await NodeProcess.start('A2', { ...common, port: a.port });
        await waitFor(() => onA.recovers.length === 1, { timeout: 10_000, what: 'the recovery through A2' });
        assert.notEqual(onA.c.clientId, firstA, 'a new session');
        // Then B, while A2 serves the publishes.
        const firstB = onB.c.clientId;
        await b.stop();
        await publish(a, 10);
        await expiredOn(a, onB.c);
        await publish(a, 10);
        b = await NodeProcess.start('B2', { ...common, port: b.port });
        await waitFor(() => onB.recovers.length === 1, { timeout: 10_000, what: 'the recovery through B2' });
        assert.notEqual(onB.c.clientId, firstB, 'a new session');
        await publish(b, 3);
        await waitFor(() => onA.got.length >= n && onB.got.length >= n, { timeout: 10_000, what: `${n} messages each (have ${onA.got.length}, ${onB.got.length})` });
        assert.deepEqual(onA.recovers, [['/chat/room', { recovered: true, missed: 20 }]]);
        assert.deepEqual(onB.recovers, [['/chat/room', { recovered: true, missed: 20 }]]);
        assert.deepEqual(onA.got, range(1, n), 'A\'s client: each once, in order');
        assert.deepEqual(onB.got, range(1, n), 'B\'s client: each once, in order');
      });

      it('the node holding a client is killed with kill -9 and its session expires: the client recovers through the other node', async () => {
        const common = options();
        const a = await NodeProcess.start('A', common);
        const b = await NodeProcess.start('B', common);
        const s = await subscriber(a, '/chat/kill', 'websocket');
        for (let i = 1; i <= 3; i++) await b.publish('/chat/kill', i);
        await waitFor(() => s.got.length === 3, { timeout: 5000, what: 'the first messages' });
        const first = s.c.clientId;
        await a.kill();
        for (let i = 4; i <= 20; i++) await b.publish('/chat/kill', i);
        await expiredOn(b, s.c);
        for (let i = 21; i <= 30; i++) await b.publish('/chat/kill', i);
        s.balancer.setBackends([b.port]);
        await waitFor(() => s.recovers.length === 1, { timeout: 10_000, what: 'the recovery through B' });
        assert.notEqual(s.c.clientId, first, 'a new session');
        assert.deepEqual(s.recovers, [['/chat/kill', { recovered: true, missed: 27 }]]);
        for (let i = 31; i <= 33; i++) await b.publish('/chat/kill', i);
        await waitFor(() => s.got.length >= 33, { timeout: 10_000, what: `33 messages (have ${s.got.length})` });
        assert.deepEqual(s.got, range(1, 33));
      });
    });
  }
}
