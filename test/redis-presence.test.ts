/**
 * Presence by user across nodes (issue #21) on one Redis and on a Redis
 * Cluster: a user's tabs spread over two nodes are one user, `join` and
 * `leave` fire once per cluster, addressing a user reaches every node,
 * and the sessions of a node killed with `kill -9` leave once when they
 * expire, reported by a surviving node.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { BayeuxClient, PresentUser } from '../lib/client/node.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { BayeuxError, type BayeuxOptions, type Message } from '../lib/index.js';
import { testClients } from './helpers/clients.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { killAllNodes, NodeProcess } from './helpers/node-process.js';
import { startRedisCluster } from './helpers/redis-cluster.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { shardLogs, testChannelLogs } from './helpers/channel-logs.js';

const MAX_INTERVAL = 600;
const fast = { reconnectMaxDelay: 100, commandTimeout: 3000, openTimeout: 5000, ...testChannelLogs() };
const noop = () => undefined;

if (!findRedisServer()) {
  describe('presence across Redis nodes', { skip: announceRedisSkip() }, () => {
    it('needs redis-server', () => {});
  });
} else {
  const { client } = testClients();
  const redis = await startRedisServer();
  // The shard layout is refused on a Redis Cluster for now: a shard run tests one Redis only.
  const cluster = shardLogs() ? undefined : await startRedisCluster();
  const servers: TestServer[] = [];
  after(async () => {
    await killAllNodes();
    for (const s of servers) await s.close().catch(noop);
    await redis.stop();
    await cluster?.stop();
  });
  let prefixes = 0;
  const targets: Array<[string, () => RedisEngine, { redisUrl?: string; redisCluster?: string }]> = [];
  for (const [where, target] of [
    ['one Redis', { redisUrl: redis.url }],
    ...(cluster ? [['a Redis Cluster', { redisCluster: cluster.urls.join(',') }]] as const : []),
  ] as const) {
    targets.push([where, () => new RedisEngine(
      target.redisUrl ? { url: target.redisUrl } : { cluster: { rootNodes: (cluster?.urls ?? []).map((url) => ({ url })) } },
      { ...fast, prefix: `presence-${process.pid}-${prefixes}:` },
    ), target]);
  }

  const identify: BayeuxOptions['identify'] = (m: Message) => {
    const user = (m.ext as { user?: string } | undefined)?.user;
    return user === undefined ? undefined : { id: user, info: { name: user.toUpperCase() } };
  };

  for (const [where, engine, target] of targets) {
    describe(`presence across nodes, on ${where}`, () => {
      /**
       * Two in-process nodes on one store. No test here waits for an expiry: the default maxInterval
       * keeps every tab alive however long a loaded machine takes between two connects.
       */
      async function twoNodes(options: BayeuxOptions = {}): Promise<[TestServer, TestServer]> {
        prefixes++;
        const a = await startServer({ engine: engine(), identify, presence: ['/chat/**'], ...options });
        const b = await startServer({ engine: engine(), identify, presence: ['/chat/**'], ...options });
        servers.push(a, b);
        return [a, b];
      }

      function userClient(server: TestServer, user: string | undefined, kind: 'websocket' | 'long-polling' = 'websocket'): BayeuxClient {
        return client(server.url, {
          transports: [kind],
          extensions: [{ outgoing: (m) => (m.channel === '/meta/handshake' && user !== undefined ? { ...m, ext: { ...m.ext, user } } : m) }],
        });
      }

      function events(...nodes: TestServer[]): string[] {
        const seen: string[] = [];
        nodes.forEach((node, i) => {
          node.cometd.on('join', (channel, user) => seen.push(`${i} join ${channel} ${user ?? '-'}`));
          node.cometd.on('leave', (channel, user) => seen.push(`${i} leave ${channel} ${user ?? '-'}`));
        });
        return seen;
      }

      it('one user with three tabs on two nodes: one join, one entry of three clients, no leave until the last tab is gone', async () => {
        const [a, b] = await twoNodes();
        const seen = events(a, b);
        const tabs = [userClient(a, 'alice'), userClient(b, 'alice', 'long-polling'), userClient(b, 'alice')];
        for (const tab of tabs) await tab.subscribe('/chat/room', noop);
        for (const node of [a, b]) {
          const present = await node.cometd.presence('/chat/room');
          assert.equal(present.length, 1);
          assert.equal(present[0]?.user, 'alice');
          assert.deepEqual(present[0]?.info, { name: 'ALICE' });
          assert.deepEqual([...(present[0]?.clients ?? [])].sort(), tabs.map((c) => c.clientId).sort());
          assert.deepEqual(await node.cometd.presenceCount('/chat/room'), { users: 1, clients: 3 });
        }
        assert.deepEqual((await a.cometd.sessionsOf('alice')).sort(), tabs.map((c) => c.clientId).sort());
        await waitFor(() => seen.length >= 1, { timeout: 3000, what: 'the join' });
        await tabs[0]?.disconnect();
        await tabs[1]?.unsubscribe('/chat/room');
        await sleep(100);
        assert.deepEqual(seen, ['0 join /chat/room alice']);
        await tabs[2]?.disconnect();
        await waitFor(() => seen.length === 2, { timeout: 3000, what: 'the leave' });
        assert.deepEqual(seen, ['0 join /chat/room alice', '1 leave /chat/room alice']);
        assert.deepEqual(await a.cometd.presenceCount('/chat/room'), { users: 0, clients: 0 });
      });

      it('a client with presence: true on one node sees joins and leaves made on the other', async () => {
        const [a, b] = await twoNodes();
        const watcher = userClient(a, 'wendy', 'long-polling');
        const joins: PresentUser[] = [];
        const leaves: unknown[] = [];
        watcher.on('join', (_ch, user) => joins.push(user));
        watcher.on('leave', (_ch, user) => leaves.push(user));
        await watcher.subscribe('/chat/watch', noop, { presence: true });
        assert.deepEqual(await watcher.presence('/chat/watch'), [{ user: 'wendy', info: { name: 'WENDY' } }]);
        const other = userClient(b, 'otto');
        await other.subscribe('/chat/watch', noop);
        await waitFor(() => joins.length === 1, { timeout: 5000, what: "otto's join" });
        assert.deepEqual(joins, [{ user: 'otto', info: { name: 'OTTO' } }]);
        await other.disconnect();
        await waitFor(() => leaves.length === 1, { timeout: 5000, what: "otto's leave" });
        assert.deepEqual(leaves, [{ user: 'otto' }]);
      });

      it('deliverToUser reaches every tab across nodes; disconnectUser ends them all; maxSessionsPerUser counts both nodes', async () => {
        const [a, b] = await twoNodes({ maxSessionsPerUser: 2 });
        const tabs = [userClient(a, 'gus'), userClient(b, 'gus', 'long-polling')];
        const got: unknown[][] = [[], []];
        await Promise.all(tabs.map((c, i) => c.subscribe('/notes/gus', (data) => got[i]?.push(data))));
        assert.equal(await a.cometd.deliverToUser('gus', '/notes/gus', 'hi'), 2);
        await waitFor(() => got.every((g) => g.length === 1), { timeout: 5000, what: 'both tabs' });
        const third = userClient(a, 'gus');
        await assert.rejects(third.subscribe('/notes/gus', noop), (err: Error) => /too_many_sessions/.test(String(err)));
        const ids = tabs.map((c) => c.clientId as string);
        const ended: string[] = [];
        // The documented way to keep a user out: each ended client is told to
        // handshake again, so the next handshake is refused.
        const banned = new Set<string>();
        for (const node of [a, b]) {
          node.cometd.on('disconnect', (id, reason) => ended.push(`${id} ${reason}`));
          node.cometd.use('/meta/handshake', (m) => {
            if (banned.has(String((m.ext as { user?: string } | undefined)?.user))) throw new BayeuxError(403, 'logged out');
          });
        }
        banned.add('gus');
        assert.equal(await b.cometd.disconnectUser('gus'), 2);
        await waitFor(() => ended.length >= 2, { timeout: 5000, what: `both ended (${ended.join(', ')})` });
        assert.deepEqual(ended.sort(), ids.map((id) => `${id} server`).sort());
        assert.deepEqual(await a.cometd.sessionsOf('gus'), []);
      });

      it('kill -9 of the node that held a user\'s only session: it leaves once, reported by the surviving node', async () => {
        prefixes++;
        const common = { ...target, prefix: `presence-kill-${process.pid}-${prefixes}:`, maxInterval: MAX_INTERVAL, timeout: 2000, reconnectMaxDelay: 100, presence: '/chat/**' };
        const a = await NodeProcess.start('A', common);
        const b = await NodeProcess.start('B', common);
        const c = client(`http://127.0.0.1:${a.port}/cometd`, {
          transports: ['websocket'],
          extensions: [{ outgoing: (m) => (m.channel === '/meta/handshake' ? { ...m, ext: { ...m.ext, user: 'kate' } } : m) }],
        });
        await c.subscribe('/chat/kill', noop);
        await a.waitForEvent((e) => e.event === 'join' && e.detail === '/chat/kill kate', 5000, 'the join on A');
        const id = c.clientId as string;
        // The client stays connected to A, which dies: B must find the session expired.
        const killedAt = Date.now();
        await a.kill();
        const left = await b.waitForEvent((e) => e.event === 'leave' && e.clientId === id, 10_000, 'the leave on B');
        assert.equal(left.detail, '/chat/kill kate');
        assert.ok(left.at - killedAt < 10_000);
        await sleep(MAX_INTERVAL * 2);
        assert.equal(b.events.filter((e) => e.event === 'leave').length, 1, 'once');
      });
    });
  }
}
