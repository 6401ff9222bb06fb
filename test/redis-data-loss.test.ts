/**
 * A Redis, or a Redis Cluster primary, restarted empty (issue 25 #3): on a
 * Cluster, a subscriber whose session lives on another primary than its
 * channel's keys was silently dropped from the channel's subscribers and
 * heard nothing more, with no 402 to make it handshake again. The engine
 * notices the loss (a marker key per primary), says so in the log and in
 * `RedisEngine.dataLoss`, and puts the remaining sessions back in their
 * patterns' subscriber sets. On one Redis the sessions are gone with the
 * data: the engine says so, and their clients get 402.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { createClient } from 'redis';
import type { EngineLogger } from '../lib/engines/engine.js';
import { RedisEngine, type RedisEngineOptions, type RedisEngineSource } from '../lib/engines/redis/index.js';
import { Keys } from '../lib/engines/redis/keys.js';
import { expand } from '../lib/server/expand.js';
import { BayeuxClient } from '../lib/client/node.js';
import { RecordingHost } from './engine-suite.js';
import { killAllNodes, NodeProcess } from './helpers/node-process.js';
import { startRedisCluster } from './helpers/redis-cluster.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { onClusterSkip, testChannelLogs } from './helpers/channel-logs.js';

class Lines implements EngineLogger {
  readonly lines: string[] = [];
  warn(message: string): void {
    this.lines.push(message);
  }
  info(message: string): void {
    this.lines.push(message);
  }
}

const fast: RedisEngineOptions = { reconnectMaxDelay: 100, commandTimeout: 2000, openTimeout: 5000, ...testChannelLogs() };

async function node(t: TestContext, source: RedisEngineSource, prefix: string) {
  const logger = new Lines();
  const engine = new RedisEngine(source, { ...fast, prefix, logger });
  const host = new RecordingHost();
  await engine.open(host, { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 200 });
  t.after(() => engine.close());
  return { engine, host, logger };
}

/** The index of the primary that serves a key (the others answer MOVED). */
async function primaryOf(urls: readonly string[], key: string): Promise<number> {
  for (let i = 0; i < urls.length; i++) {
    const client = createClient({ url: urls[i] as string });
    client.on('error', () => {});
    await client.connect();
    try {
      await client.sendCommand(['EXISTS', key]);
      return i;
    } catch {
      // MOVED: not this one
    } finally {
      await client.close().catch(() => {});
    }
  }
  throw new Error(`no primary serves ${key}`);
}

if (!findRedisServer()) {
  const message = announceRedisSkip();
  it('Redis data loss', { skip: message }, () => {});
} else {
  describe('a Redis Cluster primary restarted empty', onClusterSkip(), () => {
    it('a subscriber whose channel lived there receives again; the loss is logged and reported', async (t) => {
      const cluster = await startRedisCluster();
      after(() => cluster.stop());
      const prefix = `loss-${process.pid}:`;
      const keys = new Keys(prefix);
      const ownerOf = (key: string) => primaryOf(cluster.urls, key);
      const source = { cluster: { rootNodes: cluster.rootNodes } };
      const a = await node(t, source, prefix);
      const b = await node(t, source, prefix);
      const id = await a.engine.createSession({ ack: false, ttl: 120_000 });
      const home = await ownerOf(keys.bucket(id));
      let channel = '';
      let shard = -1;
      for (let i = 0; i < 100 && shard < 0; i++) {
        const owner = await ownerOf(keys.patternBase(`/shard/${i}`));
        if (owner !== home) [channel, shard] = [`/shard/${i}`, owner];
      }
      assert.ok(shard >= 0, 'a channel on another primary than the session');
      assert.equal(await a.engine.subscribe(id, channel), true);
      assert.equal(await b.engine.publish(expand(channel), '"before"'), 1);
      await waitFor(async () => ((await a.engine.take(id))?.messages ?? []).includes('"before"'), { timeout: 5000, what: 'the first message' });
      // Both nodes have seen the markers before the loss.
      await sleep(100);

      await cluster.restartOne(shard);
      const killed = new URL(cluster.urls[shard] as string).port;

      // Publish until the subscriber hears again (bounded: 30 s, 300 publishes).
      let heard = false;
      let published = 0;
      const until = Date.now() + 30_000;
      for (let i = 0; i < 300 && !heard && Date.now() < until; i++) {
        try {
          await b.engine.publish(expand(channel), `"after ${i}"`);
          published++;
        } catch {
          // the cluster settling down
        }
        const taken = await a.engine.take(id).catch(() => null);
        if (taken?.messages.some((m) => m.startsWith('"after'))) heard = true;
        else await sleep(100);
      }
      assert.ok(heard, `the subscriber receives again (after ${published} publishes)`);
      assert.equal(await a.engine.exists(id), true, 'its session lived on another primary');
      const reports = [a.engine.dataLoss, b.engine.dataLoss];
      assert.ok(reports.some((r) => r.count >= 1 && r.last?.where.endsWith(`:${killed}`)), JSON.stringify(reports));
      assert.ok(reports.some((r) => (r.last?.restored ?? 0) >= 1), 'one node put the subscription back');
      const lines = [...a.logger.lines, ...b.logger.lines].filter((line) => line.includes('lost its data'));
      assert.ok(lines.length >= 1 && lines.some((line) => line.includes(`:${killed}`)), lines.join('\n'));
      t.diagnostic(lines[0] ?? '');
    });
  });

  describe('a Redis Cluster primary restarted empty, two node processes, WebSocket clients (the incident)', onClusterSkip(), () => {
    it('every subscriber on channels of that primary receives again while publishes go on', async (t) => {
      const cluster = await startRedisCluster();
      const clients: BayeuxClient[] = [];
      after(async () => {
        for (const client of clients) await client.disconnect().catch(() => undefined);
        await killAllNodes();
        await cluster.stop();
      });
      const prefix = `incident-${process.pid}:`;
      const keys = new Keys(prefix);
      const shard = 1;
      const channels: string[] = [];
      for (let i = 0; i < 200 && channels.length < 2; i++) {
        if ((await primaryOf(cluster.urls, keys.patternBase(`/room/${i}`))) === shard) channels.push(`/room/${i}`);
      }
      assert.equal(channels.length, 2, 'two channels whose keys live on the primary to restart');
      const common = { redisCluster: cluster.urls.join(','), prefix, timeout: 5000, maxInterval: 5000, commandTimeout: 1000, reconnectMaxDelay: 100 };
      const nodes = await Promise.all([NodeProcess.start('A', common), NodeProcess.start('B', common)]);
      // Four subscribers, two per node, on the two channels.
      const got = new Map<number, number[]>();
      for (let i = 0; i < 4; i++) {
        const node = nodes[i % 2] as NodeProcess;
        const client = new BayeuxClient(node.url, { transports: ['websocket'], retryDelay: 100, maxRetryDelay: 500, maxNetworkDelay: 3000 });
        client.on('error', () => undefined);
        clients.push(client);
        const seen: number[] = [];
        got.set(i, seen);
        await client.subscribe<number>(channels[i % 2] as string, (n) => seen.push(n));
      }
      let seq = 0;
      const publishAll = async () => {
        const n = ++seq;
        for (const channel of channels) await (nodes[1]).publish(channel, n, 3000).catch(() => 0);
        return n;
      };
      await publishAll();
      await waitFor(() => [...got.values()].every((seen) => seen.includes(1)), { timeout: 5000, what: 'every subscriber receives before the restart' });

      await cluster.restartOne(shard);
      const restartedAt = seq;
      const until = Date.now() + 30_000;
      for (let i = 0; i < 300 && Date.now() < until; i++) {
        await publishAll();
        if ([...got.values()].every((seen) => seen.some((n) => n > restartedAt))) break;
        await sleep(100);
      }
      const deaf = [...got].filter(([, seen]) => !seen.some((n) => n > restartedAt)).map(([i]) => i);
      assert.deepEqual(deaf, [], `subscribers that heard nothing after the restart (${seq - restartedAt} publishes to each channel)`);
      assert.ok(nodes.every((n) => n.alive));
      t.diagnostic(`every subscriber heard again after at most ${seq - restartedAt} publishes per channel`);
    });
  });

  describe('one Redis restarted empty', () => {
    it('its sessions are gone (their clients get 402); the loss is logged and reported', async (t) => {
      const server = await startRedisServer();
      after(() => server.stop());
      const prefix = `loss1-${process.pid}:`;
      const a = await node(t, { url: server.url }, prefix);
      const id = await a.engine.createSession({ ack: false, ttl: 120_000 });
      await a.engine.subscribe(id, '/one');
      await sleep(100);
      await server.stop();
      await server.restart();
      await waitFor(async () => a.engine.dataLoss.count >= 1, { timeout: 15_000, what: 'the loss noticed' });
      assert.equal(await a.engine.exists(id), false, 'the session is unknown: its client gets 402 and handshakes again');
      assert.equal(a.engine.dataLoss.last?.where, '');
      assert.ok(a.logger.lines.some((line) => line.includes('lost its data')), a.logger.lines.join('\n'));
      // New sessions work.
      const fresh = await a.engine.createSession({ ack: false, ttl: 10_000 });
      await a.engine.subscribe(fresh, '/one');
      assert.equal(await a.engine.publish(expand('/one'), '"x"'), 1);
    });
  });
}
