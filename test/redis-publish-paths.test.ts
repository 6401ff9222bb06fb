/**
 * The publish script's two paths in the shard layout (issue #23, "a
 * cheaper publish script"): a tick with no history and no wildcard pattern
 * with subscribers takes the common path (the node's entry logged and
 * announced as it came, `Logged`); any other tick the general one. Both
 * must leave Redis in the same state and answer the same counts. Here the
 * same ticks go through both, on two prefixes of one `redis-server`: on
 * B a session follows `/c/*` and every publish excludes it, which sends B
 * down the general path (it reads the pattern's `:last` and `:bytes`:
 * MGET) while nothing reaches that pattern's log. The shard's entries,
 * index, `:last` (with its byte count, trimmed to a small
 * `maxShardLogBytes`), announcements and the publishes' results must be
 * the same. Without `redis-server` on PATH the file says loudly that it
 * skipped.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createClient } from 'redis';
import { RedisEngine, type RedisEngineOptions } from '../lib/engines/redis/index.js';
import { expand } from '../lib/server/expand.js';
import { RecordingHost } from './engine-suite.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { waitFor } from './helpers/wait.js';

const fast: RedisEngineOptions = { reconnectMaxDelay: 100, commandTimeout: 5000, openTimeout: 5000, logger: { warn() {}, info() {} } };

if (!findRedisServer()) {
  it('the publish script\'s paths', { skip: announceRedisSkip() }, () => {});
} else {
  let server: RedisServer;
  before(async () => {
    server = await startRedisServer();
  });
  after(() => server.stop());

  it('with a shard, the common tick and the general path write the same entries, index, :last and announcements, and answer the same counts', async (t) => {
    const client = createClient({ url: server.url });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.close());
    const listener = client.duplicate();
    listener.on('error', () => {});
    await listener.connect();
    t.after(() => listener.close());
    const mgets = async () => Number(/cmdstat_mget:calls=(\d+)/.exec(String(await client.sendCommand(['INFO', 'commandstats'])))?.[1] ?? 0);

    const nodes = await Promise.all(['pa:', 'pb:'].map(async (prefix) => {
      // A small shard, so the ticks below trim it (by bytes) on both paths.
      const engine = new RedisEngine({ url: server.url }, { ...fast, prefix, channelLogs: 'shard', maxShardLogBytes: 2048 });
      await engine.open(new RecordingHost(), { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 60_000 });
      t.after(() => engine.close());
      for (const channel of ['/c/0', '/c/1', '/c/1', '/c/2']) await engine.subscribe(await engine.createSession({ ack: false, ttl: 60_000 }), channel);
      const announced: string[] = [];
      await listener.sSubscribe(`${prefix}{t0}`, (message) => announced.push(message));
      return { prefix, engine, announced, results: [] as number[][] };
    }));
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    // B's wildcard follower, excluded by every publish on both (the same except lists, so the same entries).
    const wild = await b.engine.createSession({ ack: false, ttl: 60_000 });
    await b.engine.subscribe(wild, '/c/*');

    const ticks: Array<Array<[string, string, boolean]>> = [];
    for (let tick = 0; tick < 12; tick++) {
      ticks.push(Array.from({ length: 1 + (tick % 5) }, (_, i) => [`/c/${(tick + i) % 4}`, JSON.stringify({ n: tick * 10 + i, d: 'é'.repeat(i) + 'x'.repeat(20 + 7 * tick) }), (tick + i) % 3 === 0]));
    }
    for (const node of [a, b]) {
      const before = await mgets();
      for (const tick of ticks) {
        node.results.push(await Promise.all(tick.map(([channel, text, count]) => node.engine.publish(expand(channel), text, { except: [wild, 'nobody'], count }))));
      }
      const reads = (await mgets()) - before;
      // A: no wildcard pattern with subscribers, the common path (no MGET); B: the general path, every tick.
      if (node === a) assert.equal(reads, 0, 'A took the common path');
      else assert.equal(reads, ticks.length, 'B took the general path');
    }
    await waitFor(() => a.announced.length === ticks.length && b.announced.length === ticks.length, { timeout: 5000 });

    // The same state, but for stream ids (Redis's clock) and each node's publish id prefix (the same length).
    const state = async (node: typeof a) => {
      const ids = new Map<string, string>();
      const norm = (text: string) => text.replace(/ [A-Za-z0-9_-]{8}\.([0-9a-z]+) /g, ' PUB.$1 ').replace(/\d{10,}-\d+/g, (id) => {
        if (!ids.has(id)) ids.set(id, `#${ids.size}`);
        return ids.get(id) as string;
      });
      const log = await client.sendCommand<Array<[string, string[]]>>(['XRANGE', `${node.prefix}{t0}:log`, '-', '+']);
      const entries = log.map(([id, fields]) => norm(`${id} ${fields.join(' ')}`));
      const index = (await client.sendCommand<string[]>(['LRANGE', `${node.prefix}{t0}:index`, '0', '-1'])).map(norm);
      const last = String(await client.sendCommand(['GET', `${node.prefix}{t0}:last`])).split(' ');
      return { entries, index, last: [norm(last[0] as string), last[2]], announced: node.announced.map(norm), results: node.results };
    };
    const [fromA, fromB] = [await state(a), await state(b)];
    assert.ok(fromA.entries.length > 1 && fromA.entries.length < ticks.length, `the shard was trimmed by bytes (${fromA.entries.length} entries kept)`);
    assert.deepEqual(fromA, fromB);
    assert.deepEqual(fromA.results[0], [1], 'a counted publish: its channel\'s subscriber');
    assert.ok(fromA.results.flat().includes(2), 'a counted publish to /c/1: its two subscribers');
    // Nothing reached the wildcard pattern's log: every publish excluded its one subscriber.
    assert.equal(Number(await client.sendCommand(['EXISTS', `${b.prefix}{p:/c/*}:log`])), 0);
  });
}
