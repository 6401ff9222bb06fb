/**
 * What one client can make Redis hold through a pattern's log (issue 27):
 * a log is bounded in bytes (`maxLogBytes`, at most the Server's
 * `maxQueueBytes`) as well as in entries and age, its keys expire
 * `logRetention` after its last publish, and a publish's `except` list is
 * stored reduced to the pattern's subscribers and refused beyond
 * MAX_EXCEPT ids. On one `redis-server` and on a Redis Cluster of three
 * primaries; without `redis-server` on PATH the file says loudly that it
 * skipped.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { createClient, createCluster } from 'redis';
import type { EngineConfig } from '../lib/engines/engine.js';
import { RedisEngine, type RedisEngineOptions, type RedisEngineSource } from '../lib/engines/redis/index.js';
import { MAX_EXCEPT } from '../lib/engines/redis/publish.js';
import { expand } from '../lib/server/expand.js';
import { RecordingHost } from './engine-suite.js';
import { startRedisCluster } from './helpers/redis-cluster.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { onClusterSkip, shardLogs, testChannelLogs } from './helpers/channel-logs.js';

const fast: RedisEngineOptions = { reconnectMaxDelay: 100, commandTimeout: 5000, openTimeout: 5000, logger: { warn() {}, info() {} }, ...testChannelLogs() };
/**
 * A channel whose publishes are written to a pattern's log in this run: the channel itself in the pattern
 * layout; in the shard layout (where channels share the shard's log) a channel under a wildcard pattern.
 */
const logged = (name: string) => (shardLogs() ? { pattern: `${name}/*`, channel: `${name}/x` } : { pattern: name, channel: name });
const MiB = 1_048_576;
/** The flood of issue 27: 900 KiB messages. */
const BIG = JSON.stringify('x'.repeat(900 * 1024));
/** MEMORY USAGE counts allocator slack and the stream's own nodes: allowed beyond the bound. */
const SLACK = 256 * 1024;

/** One command on the node that holds `key`. */
type Send = (key: string, args: string[]) => Promise<unknown>;

function suite(label: string, setUp: () => Promise<{ source: () => RedisEngineSource; send: Send; stop: () => Promise<void> }>, options: { skip?: string } = {}): void {
  describe(`pattern logs are bounded (${label})`, options, () => {
    let source: () => RedisEngineSource;
    let send: Send;
    let stop: (() => Promise<void>) | undefined;
    let counter = 0;
    const prefix = () => `logs-${process.pid}-${++counter}:`;

    after(() => stop?.());

    async function node(t: TestContext, options: RedisEngineOptions, config: Partial<EngineConfig> = {}) {
      if (!stop) ({ source, send, stop } = await setUp());
      const engine = new RedisEngine(source(), { ...fast, ...options });
      const host = new RecordingHost();
      await engine.open(host, { maxQueue: Infinity, maxQueueBytes: 4 * MiB, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 1000, ...config });
      t.after(() => engine.close());
      return { engine, host };
    }

    const memory = async (key: string) => Number(await send(key, ['MEMORY', 'USAGE', key, 'SAMPLES', '0'])) || 0;

    it('a client publishing 900 KiB messages to its own channel in a loop: the log stays under maxLogBytes (default 4 MiB; the shard\'s under maxShardLogBytes)', async (t) => {
      const p = prefix();
      // The shard holds every channel's publishes: its own bound, set to 4 MiB here (64 MiB by default).
      const bound = shardLogs() ? { maxShardLogBytes: 4 * MiB } : {};
      const a = await node(t, { prefix: p, ...bound });
      const b = await node(t, { prefix: p, ...bound });
      const attacker = await a.engine.createSession({ ack: false, ttl: 30_000 });
      assert.equal(await a.engine.subscribe(attacker, '/flood'), true);
      // A session that subscribed and never came back, held by no node.
      const idle = await b.engine.createSession({ ack: false, ttl: 30_000 });
      assert.equal(await b.engine.subscribe(idle, '/flood'), true);
      // The shard layout: the channel's publishes go to the shard's log, bounded the same way.
      const log = shardLogs() ? `${p}{t0}:log` : `${p}{p:/flood}:log`;
      let most = 0;
      for (let i = 0; i < 24; i++) {
        assert.equal(await a.engine.publish(expand('/flood'), BIG.slice(0, -1) + `${i}"`), 2);
        if (i % 4 === 3) most = Math.max(most, await memory(log));
        // The attacker's own queue is bounded by maxQueueBytes, as on MemoryEngine.
        if (i % 6 === 5) await a.engine.take(attacker);
      }
      t.diagnostic(`log: most ${(most / MiB).toFixed(2)} MiB, ${String(await send(log, ['XLEN', log]))} entries`);
      assert.ok(most > 0, 'the log was measured');
      assert.ok(most <= 4 * MiB + BIG.length + SLACK, `log memory ${most} bytes within 4 MiB and one message`);
      assert.ok(Number(await send(log, ['XLEN', log])) <= 5);
      // The idle session's position fell off the trimmed log: a node that takes it over gives what is left, the newest last.
      const c = await node(t, { prefix: p, ...bound });
      assert.equal(await c.engine.touch(idle, 30_000), true);
      const taken = (await c.engine.take(idle))?.messages ?? [];
      assert.ok(taken.length >= 1 && taken.length <= 5, `${taken.length} messages left for the idle session`);
      assert.equal(taken.at(-1)?.endsWith('23"'), true, 'the newest message stays');
    });

    it('maxLogBytes, and the Server\'s maxQueueBytes when smaller, bound the log', async (t) => {
      const p = prefix();
      const a = await node(t, { prefix: p, maxLogBytes: 2 * MiB }, { maxQueueBytes: 1 * MiB });
      const id = await a.engine.createSession({ ack: false, ttl: 30_000 });
      await a.engine.subscribe(id, '/small/*');
      const message = JSON.stringify('y'.repeat(100 * 1024));
      const log = `${p}{p:/small/*}:log`;
      let most = 0;
      for (let i = 0; i < 40; i++) {
        await a.engine.publish(expand('/small/x'), message);
        if (i % 5 === 4) most = Math.max(most, await memory(log));
      }
      assert.ok(most <= 1 * MiB + message.length + SLACK, `log memory ${most} bytes within 1 MiB and one message`);
      // `<bytes> <when the keys expire>`
      const bytes = Number(String(await send(`${p}{p:/small/*}:bytes`, ['GET', `${p}{p:/small/*}:bytes`])).split(' ')[0]);
      assert.ok(bytes > 0 && bytes <= 1 * MiB, `counted ${bytes} bytes`);
      assert.equal(Number(await send(`${p}{p:/small/*}:index`, ['LLEN', `${p}{p:/small/*}:index`])), Number(await send(log, ['XLEN', log])), 'index and log agree');
      assert.throws(() => new RedisEngine(source(), { maxLogBytes: 10 }), (err: unknown) => err instanceof TypeError && /maxLogBytes/.test(err.message));
      assert.throws(() => new RedisEngine(source(), { maxLogBytes: Number.NaN }), /maxLogBytes/);
      assert.throws(() => new RedisEngine(source(), { maxShardLogBytes: 1000 }), /maxShardLogBytes/);
    });

    it('a session\'s box (what deliver sends it alone) is bounded the same way, and taken entries leave it', async (t) => {
      const p = prefix();
      const a = await node(t, { prefix: p });
      const b = await node(t, { prefix: p });
      const id = await b.engine.createSession({ ack: false, ttl: 30_000 });
      const { Keys } = await import('../lib/engines/redis/keys.js');
      const box = `${new Keys(p).bucket(id)}:${id}:box`;
      const index = `${new Keys(p).bucket(id)}:${id}:bi`;
      let most = 0;
      for (let i = 0; i < 24; i++) {
        assert.equal(await a.engine.deliver(id, BIG.slice(0, -1) + `${i}"`), true);
        if (i % 4 === 3) most = Math.max(most, await memory(box));
      }
      assert.ok(most > 0 && most <= 4 * MiB + BIG.length + SLACK, `box memory ${most} bytes within 4 MiB and one message`);
      assert.equal(Number(await send(index, ['LLEN', index])), Number(await send(box, ['XLEN', box])), 'index and box agree');
      // B hears of each deliver on its node channel, a moment after A's deliver resolved. A deliver to
      // another session B holds comes after them on that channel: once B was woken for it, B has them all.
      const marker = await b.engine.createSession({ ack: false, ttl: 30_000 });
      b.host.clear();
      assert.equal(await a.engine.deliver(marker, '"marker"'), true);
      await waitFor(() => b.host.woken().has(marker), { timeout: 10_000, what: 'B hears of the delivers' });
      const taken = (await b.engine.take(id))?.messages ?? [];
      assert.ok(taken.length >= 1 && taken.length <= 5 && taken.at(-1)?.endsWith('23"'), `${taken.length} messages, the newest last`);
      await a.engine.deliver(id, '"small"');
      // B hears of the deliver on its node channel.
      const later: string[] = [];
      await waitFor(async () => {
        later.push(...((await b.engine.take(id))?.messages ?? []));
        return later.length > 0;
      }, { timeout: 5000, what: 'the small deliver' });
      assert.deepEqual(later, ['"small"']);
      // The next take writes the position: what was taken leaves the box.
      await b.engine.take(id);
      assert.ok(Number(await send(box, ['XLEN', box])) <= 1);
      assert.equal(Number(await send(index, ['LLEN', index])), Number(await send(box, ['XLEN', box])), 'index and box agree');
    });

    it('a log\'s keys expire together, between logRetention and 1.5 x logRetention after its last publish, and older entries are trimmed', async (t) => {
      const p = prefix();
      const a = await node(t, { prefix: p, logRetention: 1500 });
      // Below logRetention, which a longer ttl would raise; as close to it as that allows, so a loaded machine's
      // stalls fit between the touches below (with 1000 there were 600 ms to spare).
      const ttl = 1400;
      const id = await a.engine.createSession({ ack: false, ttl });
      const keptLog = logged('/kept');
      await a.engine.subscribe(id, keptLog.pattern);
      await a.engine.publish(expand(keptLog.channel), '"old"');
      const base = `${p}{p:${keptLog.pattern}}`;
      const ttls: number[] = [];
      for (const key of [`${base}:log`, `${base}:last`, `${base}:index`, `${base}:bytes`]) {
        const ttl = Number(await send(key, ['PTTL', key]));
        assert.ok(ttl > 1500 - 500 && ttl <= 2250, `${key} expires within 1.5 x logRetention (PTTL ${ttl})`);
        ttls.push(ttl);
      }
      assert.ok(Math.max(...ttls) - Math.min(...ttls) < 500, `the keys expire together: ${ttls.join(' ')}`);
      // A publish between renewals keeps the expiry of :last and :bytes (KEEPTTL); one that finds :last
      // missing (evicted) gives every key a new one, never a key without expiry.
      const expiries = async () => Promise.all([`${base}:log`, `${base}:last`, `${base}:index`, `${base}:bytes`].map(async (key) => Number(await send(key, ['PTTL', key]))));
      await a.engine.publish(expand(keptLog.channel), '"again"');
      const kept = await expiries();
      assert.ok(kept.every((ttl) => ttl > 0 && ttl <= 2250) && Math.max(...kept) - Math.min(...kept) < 500, `kept together: ${kept.join(' ')}`);
      await send(`${base}:last`, ['DEL', `${base}:last`]);
      await a.engine.publish(expand(keptLog.channel), '"after an eviction"');
      const renewed = await expiries();
      assert.ok(renewed.every((ttl) => ttl > 1500 - 500 && ttl <= 2250) && Math.max(...renewed) - Math.min(...renewed) < 500, `renewed together: ${renewed.join(' ')}`);
      // Keep the session alive (its ttl is below logRetention, which it would raise) and publish once in the middle.
      for (let i = 0; i < 4; i++) {
        await sleep(400);
        assert.equal(await a.engine.touch(id, ttl), true);
        if (i === 1) await a.engine.publish(expand(keptLog.channel), '"middle"');
      }
      await a.engine.publish(expand(keptLog.channel), '"new"');
      const entries = (await send(`${base}:log`, ['XRANGE', `${base}:log`, '-', '+'])) as Array<[string, string[]]>;
      const messages = entries.map(([, fields]) => String(fields[1]));
      // "middle" may be gone too on a slow machine; "old" is older than logRetention for sure.
      assert.equal(messages.includes('"old"'), false, `the entry older than logRetention is gone: ${messages.join(' ')}`);
      assert.equal(messages.at(-1), '"new"');
    });

    it(`a publish's except list is stored reduced to subscribers, and more than ${MAX_EXCEPT} ids are refused`, async (t) => {
      const p = prefix();
      const a = await node(t, { prefix: p });
      const one = await a.engine.createSession({ ack: false, ttl: 30_000 });
      const two = await a.engine.createSession({ ack: false, ttl: 30_000 });
      const ex = logged('/ex');
      await a.engine.subscribe(one, ex.pattern);
      await a.engine.subscribe(two, ex.pattern);
      const strangers = Array.from({ length: MAX_EXCEPT - 1 }, (_, i) => `stranger${i}`);
      assert.equal(await a.engine.publish(expand(ex.channel), '"1"', { except: [one, ...strangers] }), 1);
      const log = `${p}{p:${ex.pattern}}:log`;
      const entries = (await send(log, ['XRANGE', log, '-', '+'])) as Array<[string, string[]]>;
      assert.equal(entries.length, 1);
      const fields = entries[0]![1].map(String);
      assert.equal(fields[fields.indexOf('x') + 1], one, 'only the subscriber is stored');
      await assert.rejects(
        a.engine.publish(expand(ex.channel), '"2"', { except: [one, ...strangers, 'onemore'] }),
        (err: unknown) => err instanceof RangeError && err.message.includes(`at most ${MAX_EXCEPT}`),
      );
      assert.equal(Number(await send(log, ['XLEN', log])), 1, 'nothing published');
      assert.deepEqual((await a.engine.take(two))?.messages, ['"1"']);
      assert.deepEqual((await a.engine.take(one))?.messages, []);
    });
  });
}

if (!findRedisServer()) {
  const message = announceRedisSkip();
  it('Redis pattern logs', { skip: message }, () => {});
} else {
  suite('one Redis', async () => {
    const server = await startRedisServer();
    const client = createClient({ url: server.url });
    client.on('error', () => {});
    await client.connect();
    return {
      source: () => ({ url: server.url }),
      send: (_key, args) => client.sendCommand(args),
      stop: async () => {
        await client.close().catch(() => {});
        await server.stop();
      },
    };
  });
  suite('Redis Cluster', async () => {
    const cluster = await startRedisCluster();
    const client = createCluster({ rootNodes: cluster.rootNodes.map((n) => ({ url: n.url })) });
    client.on('error', () => {});
    await client.connect();
    return {
      source: () => ({ cluster: { rootNodes: cluster.rootNodes } }),
      send: (key, args) => client.sendCommand(key, false, args),
      stop: async () => {
        await client.close().catch(() => {});
        await cluster.stop();
      },
    };
  }, onClusterSkip());
}
