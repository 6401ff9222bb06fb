/**
 * RedisEngine: the engine suite, then what only a networked engine has —
 * several nodes on one Redis, notifications, cluster-wide expiry, options,
 * credentials, and the loss of the Redis connection. Every test talks to a
 * real `redis-server` started on 127.0.0.1 (see helpers/redis-server.ts);
 * without one on PATH the file says loudly that it skipped.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { createClient } from 'redis';
import { createClient as createClient5 } from 'redis5';
import { expand } from '../lib/server/expand.js';
import { EngineUnavailableError, type EngineConfig, type EngineLogger } from '../lib/engines/engine.js';
import { RedisEngine, redactUrl, type RedisEngineOptions, type RedisEngineSource } from '../lib/engines/redis/index.js';
import { engineSuite, RecordingHost } from './engine-suite.js';
import { announceRedisSkip, findRedisServer, freePort, startRedisServer } from './helpers/redis-server.js';
import { redisMajor } from './helpers/redis-v5.js';
import { startDelayProxy, startSwitchProxy } from './helpers/tcp-proxy.js';
import { checkRecoverThroughOtherNode, marked } from './helpers/redis-history-checks.js';
import { channelLogsMode, shardLogs, testChannelLogs } from './helpers/channel-logs.js';
import { sleep, waitFor } from './helpers/wait.js';

/** Errors that escaped to the process: there must be none. */
const escaped: unknown[] = [];
process.on('uncaughtException', (err) => escaped.push(err));
process.on('unhandledRejection', (err) => escaped.push(err));

class CapturingLogger implements EngineLogger {
  readonly lines: string[] = [];
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  info(message: string): void {
    this.lines.push(`info: ${message}`);
  }
}

if (!findRedisServer()) {
  const message = announceRedisSkip();
  it('RedisEngine', { skip: message }, () => {});
} else {
  const server = await startRedisServer();
  after(() => server.stop());

  let counter = 0;
  const uniquePrefix = () => `test-${process.pid}-${++counter}:`;
  /** Fast reconnection and short timeouts: tests should not wait on Redis; and this run's channel logs (helpers/channel-logs.ts). */
  const fast: RedisEngineOptions = { reconnectMaxDelay: 100, commandTimeout: 2000, openTimeout: 3000, ...testChannelLogs() };

  engineSuite({
    name: shardLogs() ? 'RedisEngine (channelLogs shard)' : 'RedisEngine',
    create: async () => new RedisEngine({ url: server.url }, { ...fast, prefix: uniquePrefix() }),
    history: true,
    presence: true,
    checksPublisher: true,
  });

  /** An opened engine ("a node") whose close() runs when the test ends. */
  async function node(
    t: TestContext,
    source: RedisEngineSource,
    options: RedisEngineOptions = {},
    config: Partial<EngineConfig> = {},
  ) {
    const engine = new RedisEngine(source, { ...fast, ...options });
    const host = new RecordingHost();
    await engine.open(host, { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50, ...config });
    t.after(() => engine.close());
    return { engine, host };
  }

  /** Pub/Sub messages Redis sent so far (PUBLISH and SPUBLISH, from scripts or not). */
  async function announcements(redis: Awaited<ReturnType<typeof admin>>): Promise<number> {
    const stats = String(await redis.sendCommand(['INFO', 'commandstats']));
    let n = 0;
    for (const [, calls] of stats.matchAll(/cmdstat_s?publish:calls=(\d+)/g)) n += Number(calls);
    return n;
  }

  /** Take from a session until `count` messages have arrived (within 3 s), and give them in order. */
  async function takeAll(engine: RedisEngine, id: string, count: number, what: string): Promise<string[]> {
    const taken: string[] = [];
    await waitFor(async () => {
      taken.push(...((await engine.take(id))?.messages ?? []));
      return taken.length >= count;
    }, { timeout: 3000, what });
    return taken;
  }

  /**
   * Two nodes on one prefix, a session held on each subscribed to `patterns`,
   * a warm-up publish on `warm` announced to B and taken on both: what is
   * published next is all the sessions get.
   */
  async function warmPair(t: TestContext, patterns: readonly string[], warm: string) {
    const prefix = uniquePrefix();
    const a = await node(t, { url: server.url }, { prefix });
    const b = await node(t, { url: server.url }, { prefix });
    const here = await a.engine.createSession({ ack: false, ttl: 10_000 });
    const there = await b.engine.createSession({ ack: false, ttl: 10_000 });
    for (const id of [here, there]) for (const pattern of patterns) await a.engine.subscribe(id, pattern);
    await a.engine.publish(expand(warm), '"warm"');
    await waitFor(() => b.host.woken().has(there), { timeout: 2000, what: 'warm-up announced' });
    await a.engine.take(here);
    await b.engine.take(there);
    return { a, b, here, there };
  }

  async function admin(t: TestContext, url = server.url) {
    const client = createClient({ url });
    client.on('error', () => {});
    await client.connect();
    t.after(() => client.close().catch(() => {}));
    return client;
  }

  describe('RedisEngine: several nodes', () => {
    it('any node serves any session; wakes go to the node that last touched it, and only there', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      const c = await node(t, { url: server.url }, { prefix });

      // Handshake on A, connect on B.
      const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
      assert.equal(await b.engine.exists(id), true);
      assert.equal(await b.engine.touch(id, 10_000), true);
      assert.equal(await c.engine.subscribe(id, '/chat/**'), true);
      assert.deepEqual(await a.engine.subscriptions(id), ['/chat/**']);

      assert.equal(await a.engine.publish(expand('/chat/room'), '"m1"'), 1);
      await waitFor(() => b.host.woken().has(id), { timeout: 2000, what: 'B woken' });
      assert.equal(await c.engine.deliver(id, '"m2"'), true);
      await waitFor(() => b.host.wakes.length >= 2, { timeout: 2000, what: 'B woken twice' });
      await sleep(50);
      assert.deepEqual(a.host.wakes, []);
      assert.deepEqual(c.host.wakes, []);
      assert.deepEqual((await b.engine.take(id))?.messages, ['"m1"', '"m2"']);

      // The session moves to A: A wakes itself.
      b.host.clear();
      assert.equal(await a.engine.touch(id, 10_000), true);
      assert.equal(await c.engine.publish(expand('/chat/room'), '"m3"'), 1);
      await waitFor(() => a.host.woken().has(id), { timeout: 2000, what: 'A woken' });
      a.host.clear();
      assert.equal(await a.engine.publish(expand('/chat/room'), '"m4"'), 1);
      await waitFor(() => a.host.woken().has(id), { timeout: 2000, what: 'A woken by its own publish, without a notification' });
      assert.deepEqual(a.host.wakes, [[id]]);
      await sleep(50);
      assert.deepEqual(b.host.wakes, []);
      assert.deepEqual((await c.engine.take(id))?.messages, ['"m3"', '"m4"']);
    });

    it('one publish costs Redis the same commands for 10 and 2,000 subscribers, spread over two nodes', async (t) => {
      const own = await startRedisServer();
      t.after(() => own.stop());
      const redis = await admin(t, own.url);
      const prefix = uniquePrefix();
      const a = await node(t, { url: own.url }, { prefix }, { sweepInterval: 60_000 });
      const b = await node(t, { url: own.url }, { prefix }, { sweepInterval: 60_000 });
      /** Commands Redis ran (scripts and the commands inside them), by name, during `work`. */
      const commandsOf = async (work: () => Promise<unknown>) => {
        await redis.sendCommand(['CONFIG', 'RESETSTAT']);
        await work();
        const stats = String(await redis.sendCommand(['INFO', 'commandstats']));
        const counts = new Map<string, number>();
        for (const [, name, calls] of stats.matchAll(/cmdstat_([a-z|_]+):calls=(\d+)/g)) {
          if (name !== 'info' && name !== 'config') counts.set(name as string, Number(calls));
        }
        return counts;
      };
      const sessionsOf = async (n: number, channel: string) => {
        const ids: string[] = [];
        for (let start = 0; start < n; start += 200) {
          ids.push(...(await Promise.all(Array.from({ length: Math.min(200, n - start) }, async (_, i) => {
            const holder = (start + i) % 2 === 0 ? a : b;
            const id = await holder.engine.createSession({ ack: false, ttl: 60_000 });
            await holder.engine.subscribe(id, channel);
            return id;
          }))));
        }
        return ids;
      };
      const small = await sessionsOf(10, '/few');
      const large = await sessionsOf(2000, '/many');
      // Warm up: scripts loaded, channels listened to.
      await a.engine.publish(expand('/few'), '"warm"');
      await a.engine.publish(expand('/many'), '"warm"');
      const few = await commandsOf(() => a.engine.publish(expand('/few'), '"x"'));
      const many = await commandsOf(() => a.engine.publish(expand('/many'), '"x"'));
      assert.deepEqual([...many].sort(), [...few].sort());
      const total = [...few.values()].reduce((x, y) => x + y, 0);
      assert.ok(total <= 4 * 12, `a publish to 4 patterns ran ${total} commands: ${JSON.stringify([...few])}`);
      // And every subscriber got it, on both nodes.
      for (const id of [large[0], large[1], large[1998], large[1999], small[0], small[1]]) {
        const holder = large.indexOf(id as string) % 2 === 0 || small.indexOf(id as string) % 2 === 0 ? a : b;
        const taken = await holder.engine.take(id as string);
        assert.deepEqual(taken?.messages.at(-1), '"x"');
      }
    });

    it('a publish is announced once per pattern with subscribers; a node follows only its sessions\' patterns', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      const idle = await node(t, { url: server.url }, { prefix });
      const onA = await a.engine.createSession({ ack: false, ttl: 10_000 });
      const onB = await b.engine.createSession({ ack: false, ttl: 10_000 });
      await idle.engine.subscribe(onA, '/n/**');
      await idle.engine.subscribe(onB, '/n/x');
      await idle.engine.subscribe(onB, '/n/**');
      const watcher = createClient({ url: server.url });
      watcher.on('error', () => {});
      await watcher.connect();
      t.after(() => watcher.close().catch(() => {}));
      const seen: string[] = [];
      await watcher.sSubscribe([`${prefix}{p:/n/x}`, `${prefix}{p:/n/*}`, `${prefix}{p:/n/**}`, `${prefix}{p:/**}`], (_message, channel) => seen.push(channel));
      await sleep(100);
      assert.equal(await idle.engine.publish(expand('/n/x'), '"1"'), 2);
      await waitFor(() => a.host.woken().has(onA) && b.host.woken().has(onB), { timeout: 2000, what: 'both holders woken' });
      if (shardLogs()) {
        // The shard layout: the channel's publish is announced with the shard's tick, never on the channel's own.
        await sleep(200);
        assert.ok(!seen.includes(`${prefix}{p:/n/x}`), `no announcement on the channel's own Pub/Sub channel: ${seen.join(' ')}`);
      } else {
        // The watcher is a connection of its own: its copies may come after the holders' wakes.
        await waitFor(() => seen.length >= 2, { timeout: 5000, what: `the watcher's copies (have ${seen.join(' ')})` });
        await sleep(50);
        assert.deepEqual(seen.sort(), [`${prefix}{p:/n/**}`, `${prefix}{p:/n/x}`]);
      }
      assert.deepEqual(idle.host.wakes, []);
      // One copy for B, though two of its patterns matched.
      assert.deepEqual((await b.engine.take(onB))?.messages, ['"1"']);
      assert.deepEqual((await a.engine.take(onA))?.messages, ['"1"']);
    });

    it('the publishes of one tick to one channel go to Redis in one script, and reach their subscribers on the other node', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      const redis = await admin(t);
      const onB = async (...patterns: string[]) => {
        const id = await b.engine.createSession({ ack: false, ttl: 10_000 });
        for (const pattern of patterns) await b.engine.subscribe(id, pattern);
        return id;
      };
      const x = await onB('/t/x');
      const y = await onB('/t/y');
      const both = await onB('/t/x', '/t/*');
      const deep = await onB('/t/**');
      const texts = ['"with spaces and 5 10 digits"', JSON.stringify('héllo ✓ 😀 \u2028 "q" \\ a,b'), JSON.stringify('z'.repeat(70_000)), '[]'];
      // Warm up: scripts loaded, channels listened to.
      await a.engine.publish(expand('/t/x'), '"warm"');
      await waitFor(() => b.host.woken().has(deep), { timeout: 2000, what: 'warm-up announced' });
      for (const id of [x, y, both, deep]) await b.engine.take(id);
      const before = await announcements(redis);
      const sent: Array<Promise<number>> = [];
      const all: string[] = [];
      const notBoth: string[] = [];
      for (let i = 0; i < 40; i++) {
        const text = texts[i % texts.length] as string;
        const message = `${text.slice(0, -1)}${i}${text.slice(-1)}`;
        const except = i % 5 === 0 ? [both] : undefined;
        sent.push(a.engine.publish(expand('/t/x'), message, except ? { except } : undefined));
        all.push(message);
        if (!except) notBoth.push(message);
      }
      const counts = await Promise.all(sent);
      if (shardLogs()) {
        // One script: at most one announcement per log written (the shard's, /t/*, /t/**), not one per publish.
        const announced = (await announcements(redis)) - before;
        assert.ok(announced >= 1 && announced <= 3, `${announced} announcements for 40 publishes in one tick`);
      } else {
        // One script: one announcement per pattern with subscribers (/t/x, /t/*, /t/**), not one per publish.
        assert.equal(await announcements(redis), before + 3);
      }
      assert.deepEqual(counts, counts.map((_, i) => (i % 5 === 0 ? 2 : 3)));
      await waitFor(() => [x, both, deep].every((id) => b.host.woken().has(id)), { timeout: 2000, what: 'B woken' });
      assert.deepEqual((await b.engine.take(x))?.messages, all);
      assert.deepEqual((await b.engine.take(both))?.messages, notBoth);
      assert.deepEqual((await b.engine.take(deep))?.messages, all);
      assert.deepEqual((await b.engine.take(y))?.messages, []);
    });

    it('publishes to several channels in one tick keep their order for a session subscribed to overlapping patterns', async (t) => {
      const { a, b, here, there } = await warmPair(t, ['/o/x', '/o/*'], '/o/x');
      const channels = ['/o/y', '/o/x', '/o/x', '/o/y', '/o/z', '/o/x', '/o/y', '/o/y', '/o/x'];
      const messages = channels.map((channel, i) => JSON.stringify({ channel, i }));
      assert.deepEqual(await Promise.all(messages.map((m, i) => a.engine.publish(expand(channels[i] as string), m))), messages.map(() => 2));
      assert.deepEqual((await a.engine.take(here))?.messages, messages);
      assert.deepEqual(await takeAll(b.engine, there, messages.length, 'all announced to B'), messages);
    });

    it('publishes to different channels in one tick share announcements where order allows, and keep their order for a session on two exact channels', async (t) => {
      const { a, b, here, there } = await warmPair(t, ['/q/a', '/q/b'], '/q/a');
      const redis = await admin(t);
      const before = await announcements(redis);
      const channels = ['/q/a', '/q/b', '/q/c', '/q/b', '/q/a', '/q/a', '/q/c', '/q/b', '/q/a', '/q/b'];
      const messages = channels.map((channel, i) => JSON.stringify({ channel, i }));
      const counts = await Promise.all(messages.map((m, i) => a.engine.publish(expand(channels[i] as string), m)));
      assert.deepEqual(counts, channels.map((channel) => (channel === '/q/c' ? 0 : 2)));
      if (shardLogs()) {
        // The shard layout: the tick's publishes to channels are one entry of the shard's log, announced once.
        assert.equal((await announcements(redis)) - before, 1);
      } else {
        // Reached: a b b | a a b | a | b. The script cuts before a publish to /q/a while /q/b, after it, holds
        // what /q/a lacks: three rounds of one announcement per channel.
        assert.equal((await announcements(redis)) - before, 6);
      }
      const reached = messages.filter((_, i) => channels[i] !== '/q/c');
      assert.deepEqual((await a.engine.take(here))?.messages, reached);
      assert.deepEqual(await takeAll(b.engine, there, reached.length, 'all announced to B'), reached);
    });

    it('a tick of publishes to mixed channels, with and without except, reaches every session in call order (seeded, 5 rounds)', async (t) => {
      // Sessions on B follow overlapping patterns; A publishes 60 messages in one tick to channels picked by a
      // seeded generator, some excluding sessions. Each session must get exactly its messages, in call order,
      // whatever way the script cut its announcements.
      let seed = 7;
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      const follows = [['/m/a', '/m/*'], ['/m/a', '/m/b'], ['/m/*'], ['/m/b', '/m/**'], ['/m/a', '/m/b', '/m/*', '/m/**']];
      const channels = ['/m/a', '/m/b', '/m/c', '/m/d/e'];
      const { a, b } = await warmPair(t, ['/m/none'], '/m/none');
      const ids: string[] = [];
      for (const patterns of follows) {
        const id = await b.engine.createSession({ ack: false, ttl: 10_000 });
        for (const pattern of patterns) await b.engine.subscribe(id, pattern);
        ids.push(id);
      }
      for (let round = 0; round < 5; round++) {
        const expected = ids.map((): string[] => []);
        const sent: Array<Promise<number>> = [];
        for (let i = 0; i < 60; i++) {
          const channel = channels[random(channels.length)] as string;
          const except = random(3) === 0 ? [ids[random(ids.length)] as string] : [];
          const message = JSON.stringify({ round, i, channel });
          sent.push(a.engine.publish(expand(channel), message, except.length > 0 ? { except } : undefined));
          const reached = new Set(expand(channel));
          follows.forEach((patterns, s) => {
            if (!except.includes(ids[s] as string) && patterns.some((p) => reached.has(p))) (expected[s] as string[]).push(message);
          });
        }
        await Promise.all(sent);
        for (let s = 0; s < ids.length; s++) {
          const want = expected[s] as string[];
          const got = want.length === 0 ? [] : await takeAll(b.engine, ids[s] as string, want.length, `round ${round}, session ${s}`);
          assert.deepEqual(got, want, `round ${round}, session ${s} follows ${(follows[s] as string[]).join(' ')}`);
        }
      }
    });

    it('a loop of publishes in one tick goes to Redis in parts, in order', async (t) => {
      const { a, b, here: onA, there: onB } = await warmPair(t, ['/loop'], '/loop');
      const redis = await admin(t);
      const before = await announcements(redis);
      const messages = Array.from({ length: 250 }, (_, i) => String(i));
      assert.deepEqual(await Promise.all(messages.map((m) => a.engine.publish(expand('/loop'), m))), messages.map(() => 2));
      const scripts = (await announcements(redis)) - before;
      // The shard layout may take them in one part: what counts is that they are not one script each.
      assert.ok(scripts >= (shardLogs() ? 1 : 2) && scripts <= 10, `${scripts} scripts for 250 publishes`);
      assert.deepEqual((await a.engine.take(onA))?.messages, messages);
      assert.deepEqual(await takeAll(b.engine, onB, messages.length, 'all announced to B'), messages);
    });

    it('destroy on one node wakes the node that holds the session; its take gives null', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      const id = await a.engine.createSession({ ack: true, ttl: 10_000 });
      await b.engine.touch(id, 10_000);
      await b.engine.subscribe(id, '/d');
      await a.engine.publish(expand('/d'), '"1"');
      await waitFor(() => b.host.woken().has(id), { timeout: 2000, what: 'B woken by the publish' });
      b.host.clear();
      assert.equal(await a.engine.destroy(id), true);
      await waitFor(() => b.host.woken().has(id), { timeout: 2000, what: 'B woken by the destroy' });
      assert.equal(await b.engine.take(id), null);
      assert.deepEqual(await b.engine.subscribers('/d'), []);
    });

    it('a session moves between nodes without losing or repeating messages (round robin)', async (t) => {
      const prefix = uniquePrefix();
      const nodes = [await node(t, { url: server.url }, { prefix }), await node(t, { url: server.url }, { prefix })];
      const publisher = await node(t, { url: server.url }, { prefix });
      const id = await nodes[0]!.engine.createSession({ ack: false, ttl: 10_000 });
      await nodes[1]!.engine.subscribe(id, '/rr');
      const got: string[] = [];
      for (let round = 0; round < 10; round++) {
        const n = nodes[round % 2]!;
        for (let i = 0; i < 3; i++) await publisher.engine.publish(expand('/rr'), String(round * 3 + i));
        assert.equal(await n.engine.touch(id, 10_000), true);
        got.push(...((await n.engine.take(id))?.messages ?? []));
      }
      assert.deepEqual(got, Array.from({ length: 30 }, (_, i) => String(i)));
    });

    it('a session\'s positions survive a takeover as its patterns go from one to many (past the small array) to one to none, with and without acks', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      const plain = await a.engine.createSession({ ack: false, ttl: 10_000 });
      const acked = await a.engine.createSession({ ack: true, ttl: 10_000 });
      const many = Array.from({ length: 12 }, (_, i) => `/p/${i}`);
      let batch: number | undefined;
      /** Take both on `n`: the plain session's messages, and the acked one's new batch (acknowledging the last). */
      const takeBoth = async (n: RedisEngine, expected: string[], what: string): Promise<void> => {
        assert.deepEqual((await n.take(plain))?.messages, expected, `plain: ${what}`);
        const result = await n.take(acked, batch);
        assert.deepEqual(result?.messages, expected, `acked: ${what}`);
        batch = result?.batch;
      };
      for (const id of [plain, acked]) await a.engine.subscribe(id, '/p/0');
      await a.engine.publish(expand('/p/0'), '"1"');
      await takeBoth(a.engine, ['"1"'], 'one pattern');
      for (const id of [plain, acked]) for (const pattern of many.slice(1)) await a.engine.subscribe(id, pattern);
      await a.engine.publish(expand('/p/5'), '"2"');
      await a.engine.publish(expand('/p/11'), '"3"');
      await takeBoth(a.engine, ['"2"', '"3"'], 'twelve patterns');
      for (const id of [plain, acked]) for (const pattern of many.slice(1)) if (pattern !== '/p/7') await a.engine.unsubscribe(id, pattern);
      await a.engine.publish(expand('/p/7'), '"4"');
      await a.engine.publish(expand('/p/3'), '"not subscribed"');
      await a.engine.publish(expand('/p/0'), '"5"');
      await takeBoth(a.engine, ['"4"', '"5"'], 'two patterns left');
      for (const id of [plain, acked]) await a.engine.unsubscribe(id, '/p/7');
      await a.engine.publish(expand('/p/7'), '"not subscribed either"');
      await a.engine.publish(expand('/p/0'), '"6"');
      // B takes both over: it starts from the positions A wrote, so only "6" comes (and nothing again).
      for (const id of [plain, acked]) assert.equal(await b.engine.touch(id, 10_000), true);
      await takeBoth(b.engine, ['"6"'], 'one pattern, taken over');
      for (const id of [plain, acked]) await b.engine.unsubscribe(id, '/p/0');
      await a.engine.publish(expand('/p/0'), '"none"');
      await takeBoth(b.engine, [], 'no pattern');
      for (const id of [plain, acked]) await b.engine.subscribe(id, '/p/0');
      b.host.clear();
      await a.engine.publish(expand('/p/0'), '"7"');
      // Published on A, announced to B.
      await waitFor(() => [plain, acked].every((id) => b.host.woken().has(id)), { timeout: 3000, what: 'B woken for "7"' });
      await takeBoth(b.engine, ['"7"'], 'one again');
      // And back to A: nothing again.
      for (const id of [plain, acked]) assert.equal(await a.engine.touch(id, 10_000), true);
      await a.engine.publish(expand('/p/0'), '"8"');
      await takeBoth(a.engine, ['"8"'], 'back on A');
    });

    it('a session with thousands of subscriptions is taken over and removed a page at a time', async (t) => {
      const own = await startRedisServer();
      t.after(() => own.stop());
      const redis = await admin(t, own.url);
      const prefix = uniquePrefix();
      // About paging, not timing: the takeover's 3,000 pattern subscriptions may queue for seconds on a loaded machine.
      const patient = { prefix, commandTimeout: 20_000 };
      const a = await node(t, { url: own.url }, patient, { sweepInterval: 60_000 });
      const b = await node(t, { url: own.url }, patient, { sweepInterval: 60_000 });
      const id = await a.engine.createSession({ ack: false, ttl: 60_000 });
      const patterns = Array.from({ length: 3000 }, (_, i) => `/many/${i}`);
      for (let i = 0; i < patterns.length; i += 300) await Promise.all(patterns.slice(i, i + 300).map((p) => a.engine.subscribe(id, p)));
      await a.engine.publish(expand('/many/2999'), '"last"');
      const hscans = async () => Number(/cmdstat_hscan:calls=(\d+)/.exec(String(await redis.sendCommand(['INFO', 'commandstats'])))?.[1] ?? 0);
      await redis.sendCommand(['CONFIG', 'RESETSTAT']);
      // B takes the session over: its subscriptions come in pages.
      assert.equal(await b.engine.touch(id, 60_000), true);
      assert.deepEqual((await b.engine.take(id))?.messages, ['"last"']);
      const afterLoad = await hscans();
      assert.ok(afterLoad >= 6, `subscriptions read in pages (${afterLoad} HSCAN)`);
      assert.equal((await b.engine.subscriptions(id)).length, 3000);
      assert.equal(await a.engine.destroy(id), true);
      assert.ok((await hscans()) - afterLoad >= 12, 'removal reads them in pages too');
      assert.deepEqual(await b.engine.subscribers('/many/0'), []);
      assert.deepEqual(await b.engine.subscribers('/many/2999'), []);
      assert.deepEqual(await b.engine.stats(), { sessions: 0, subscriptions: 0 });
    });

    it('queued and unacknowledged messages survive the node that held the session', async (t) => {
      const prefix = uniquePrefix();
      const a = new RedisEngine({ url: server.url }, { ...fast, prefix });
      await a.open(new RecordingHost(), { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50 });
      const b = await node(t, { url: server.url }, { prefix });

      const plain = await a.createSession({ ack: false, ttl: 10_000 });
      const acked = await a.createSession({ ack: true, ttl: 10_000 });
      for (const id of [plain, acked]) {
        await a.touch(id, 10_000);
        await a.subscribe(id, '/q');
      }
      for (let i = 1; i <= 3; i++) await a.publish(expand('/q'), String(i));
      // A sent batch `sent` to the acked session, but the reply never arrived.
      const sent = await a.take(acked);
      assert.deepEqual(sent?.messages, ['1', '2', '3']);
      await a.publish(expand('/q'), '4');
      await a.close();

      // The client reconnects through B.
      assert.equal(await b.engine.touch(plain, 10_000), true);
      assert.equal(await b.engine.touch(acked, 10_000), true);
      await b.engine.publish(expand('/q'), '5');
      assert.deepEqual((await b.engine.take(plain))?.messages, ['1', '2', '3', '4', '5']);
      const again = await b.engine.take(acked, (sent?.batch as number) - 1);
      assert.deepEqual(again?.messages, ['1', '2', '3', '4', '5']);
      const next = await b.engine.take(acked, again?.batch);
      assert.deepEqual(next?.messages, []);
    });

    it('each expired session is reported once in the whole cluster', async (t) => {
      const prefix = uniquePrefix();
      const nodes = [
        await node(t, { url: server.url }, { prefix }, { sweepInterval: 5 }),
        await node(t, { url: server.url }, { prefix }, { sweepInterval: 5 }),
        await node(t, { url: server.url }, { prefix }, { sweepInterval: 7 }),
      ];
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) {
        const n = nodes[i % 3];
        assert.ok(n);
        const id = await n.engine.createSession({ ack: i % 2 === 0, ttl: 60 + (i % 5) * 10 });
        await n.engine.subscribe(id, '/x');
        ids.push(id);
      }
      const all = () => nodes.flatMap((n) => n.host.expiredIds);
      await waitFor(() => all().length >= ids.length, { timeout: 3000, what: 'every session expired' });
      await sleep(100);
      assert.deepEqual(all().sort(), [...ids].sort());
      const first = nodes[0];
      assert.ok(first);
      assert.deepEqual(await first.engine.stats(), { sessions: 0, subscriptions: 0 });
    });

    it('when the Pub/Sub connection comes back, the node wakes the sessions it holds', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
      await b.engine.touch(id, 10_000);
      await b.engine.subscribe(id, '/after');
      const redis = await admin(t);
      await redis.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      await waitFor(() => b.host.woken().has(id), { timeout: 3000, what: 'B wakes its session after resubscribing' });
      // The Server answers a wake with a take: B rebuilds its copy from Redis.
      assert.deepEqual((await b.engine.take(id))?.messages, []);
      // And notifications flow again.
      b.host.clear();
      await a.engine.publish(expand('/after'), '"x"');
      await waitFor(() => b.host.woken().has(id), { timeout: 3000, what: 'B woken by a publish on A' });
      assert.deepEqual((await b.engine.take(id))?.messages, ['"x"']);
    });

    it('a subscribe on another node right after a node took the session over, before that node read the touch\'s answer, reaches the new copy', async (t) => {
      // B's command answers come late (its Pub/Sub ones in time): B's touch is done in Redis, A's subscribe
      // after it tells B (an s on B's node channel), and only then does B read what its touch answered.
      const proxy = await startDelayProxy(server.port);
      t.after(() => proxy.close());
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: `redis://127.0.0.1:${proxy.port}` }, { prefix });
      const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
      const redis = await admin(t);
      const { Keys } = await import('../lib/engines/redis/keys.js');
      const hash = `${new Keys(prefix).bucket(id)}:${id}`;
      proxy.delayFirst(1000);
      const touched = b.engine.touch(id, 10_000);
      await waitFor(async () => String(await redis.sendCommand(['HGET', hash, 'node'])) === b.engine.nodeId, { timeout: 5000, what: 'B\'s touch done in Redis', every: 5 });
      assert.equal(await a.engine.subscribe(id, '/right-after'), true);
      assert.equal(await touched, true);
      proxy.delayFirst(0);
      await a.engine.publish(expand('/right-after'), '"m"');
      const got: string[] = [];
      await waitFor(async () => {
        got.push(...((await b.engine.take(id))?.messages ?? []));
        return got.length > 0;
      }, { timeout: 5000, what: 'the publish on A at B' });
      assert.deepEqual(got, ['"m"']);
    });

    it('what other nodes did to a session while its holder\'s Pub/Sub connection was down (a subscribe, a deliver) reaches it after the reconnection', async (t) => {
      // B reaches Redis through a proxy that can be switched off: an outage for B alone.
      const proxy = await startSwitchProxy(server.port);
      t.after(() => proxy.close());
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: `redis://127.0.0.1:${proxy.port}` }, { prefix });
      const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
      await b.engine.touch(id, 10_000);
      proxy.down();
      // While B is away A subscribes the session, publishes, and delivers: the node messages to B (s, b) are lost.
      assert.equal(await a.engine.subscribe(id, '/while-away'), true);
      await a.engine.publish(expand('/while-away'), '"published"');
      assert.equal(await a.engine.deliver(id, '"delivered"'), true);
      b.host.clear();
      proxy.up();
      await waitFor(() => b.host.woken().has(id), { timeout: 5000, what: 'B wakes its session after resubscribing' });
      await waitFor(() => b.engine.stats().then(() => true, () => false), { timeout: 5000, what: 'B\'s commands to go through again', every: 50 });
      assert.deepEqual((await b.engine.take(id))?.messages.sort(), ['"delivered"', '"published"']);
      // And B follows the channel from then on (its copy, taken from memory: the load's own wake may come first).
      await a.engine.publish(expand('/while-away'), '"after"');
      const later: string[] = [];
      await waitFor(async () => {
        later.push(...((await b.engine.take(id))?.messages ?? []));
        return later.length > 0;
      }, { timeout: 5000, what: 'the publish on A at B' });
      assert.deepEqual(later, ['"after"']);
    });
  });

  describe('RedisEngine: channel history', () => {
    const settings = { size: 100, ttl: 60_000 };
    const publishKept = (engine: RedisEngine, channel: string, data: unknown) =>
      engine.publish(expand(channel), marked(data), { history: { channel, ...settings, tail: 2 } });
    const read = (engine: RedisEngine, channel: string) => engine.history(channel, settings, {});

    it('a fleet restarted while Redis stays up keeps the epoch and the offsets; Redis losing its data starts a new epoch', async (t) => {
      const prefix = uniquePrefix();
      const first = await node(t, { url: server.url }, { prefix });
      for (let i = 1; i <= 3; i++) await publishKept(first.engine, '/k/a', i);
      const before = await read(first.engine, '/k/a');
      await first.engine.close();
      const second = await node(t, { url: server.url }, { prefix });
      await publishKept(second.engine, '/k/a', 4);
      const after = await read(second.engine, '/k/a');
      assert.equal(after.epoch, before.epoch);
      assert.equal(after.offset, 4);
      assert.equal(after.messages.length, 4);
      const id = await second.engine.createSession({ ack: false, ttl: 10_000 });
      assert.deepEqual(await second.engine.recover(id, '/k/a', { epoch: before.epoch, offset: 3 }, settings), { recovered: true, epoch: before.epoch, offset: 4, missed: 1 });
      // Redis loses the channel's keys.
      const redis = await admin(t);
      for (const key of await redis.keys(`${prefix}{p:/k/a}:h*`)) await redis.del(key);
      const lost = await read(second.engine, '/k/a');
      assert.notEqual(lost.epoch, before.epoch);
      assert.deepEqual([lost.offset, lost.messages], [0, []]);
      const late = await second.engine.createSession({ ack: false, ttl: 10_000 });
      assert.equal((await second.engine.recover(late, '/k/a', { epoch: before.epoch, offset: 4 }, settings))?.recovered, false);
    });

    it('recover through a node that does not hold the session: the holder queues the recovered messages first, then live ones', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const b = await node(t, { url: server.url }, { prefix });
      await checkRecoverThroughOtherNode(a.engine, b.engine, settings);
    });


    it('maxHistoryBytes bounds each channel: its oldest messages go first; keys expire with the ttl', async (t) => {
      const prefix = uniquePrefix();
      const { engine } = await node(t, { url: server.url }, { prefix }, { maxHistoryBytes: 1000 });
      const padding = 'x'.repeat(200);
      for (let i = 1; i <= 10; i++) await publishKept(engine, '/k/big', `${i}${padding}`);
      await publishKept(engine, '/k/other', 'small');
      const kept = await read(engine, '/k/big');
      assert.equal(kept.offset, 10);
      assert.ok(kept.messages.length >= 2 && kept.messages.length <= 4, `about 1000 bytes kept (${kept.messages.length} messages)`);
      assert.match(kept.messages.at(-1) ?? '', /"data":"10x/, 'the newest stay');
      assert.equal((await read(engine, '/k/other')).messages.length, 1, 'per channel');
      const redis = await admin(t);
      const ttl = await redis.pTTL(`${prefix}{p:/k/big}:hm`);
      assert.ok(ttl > 0 && ttl <= settings.ttl, `the kept messages expire with the ttl (${ttl})`);
      const positionTtl = await redis.pTTL(`${prefix}{p:/k/big}:h`);
      assert.ok(positionTtl > settings.ttl, `the position outlives them (${positionTtl})`);
    });
  });

  describe(`RedisEngine: node-redis majors (this run: v${redisMajor()})`, () => {
    // v5 speaks RESP2 by default, v6 RESP3 (a hash comes as a map, INFO as a verbatim string, a script's false as a boolean).
    const sources: Array<[string, () => ReturnType<typeof createClient> | ReturnType<typeof createClient5> | undefined]> = [
      [`its own client (v${redisMajor()})`, () => undefined],
      ['a node-redis v5 client (RESP2)', () => createClient5({ url: server.url })],
      ['a client speaking RESP3', () => createClient({ url: server.url, RESP: 3 })],
    ];
    for (const [what, make] of sources) {
      it(`reads every reply it parses, and recognises error replies, with ${what}`, async (t) => {
        const prefix = uniquePrefix();
        const client = make();
        if (client) {
          client.on('error', () => {});
          t.after(() => (client.isOpen ? client.close().catch(() => {}) : undefined));
        }
        const source = (client ? { client } : { url: server.url }) as RedisEngineSource;
        const a = await node(t, source, { prefix });
        const b = await node(t, { url: server.url }, { prefix });
        // HGETALL of the nodes hash: every node lists the others.
        await waitFor(async () => (await a.engine.nodes()).length === 2, { timeout: 5000, what: 'A lists both nodes' });
        assert.deepEqual((await a.engine.nodes()).map((n) => n.id).sort(), [a.engine.nodeId, b.engine.nodeId].sort());
        // Session data (a hash read by a script), subscriptions (HSCAN in a script), subscribers (SSCAN).
        const id = await b.engine.createSession({ ack: true, ttl: 10_000, data: new Map([['k', '"v"']]) });
        assert.equal(await a.engine.setSessionData(id, 'n', '1'), true);
        assert.deepEqual([...((await a.engine.allSessionData(id)) ?? [])].sort(), [['k', '"v"'], ['n', '1']]);
        assert.equal(await a.engine.getSessionData(id, 'missing'), undefined);
        assert.equal(await a.engine.subscribe(id, '/majors/*'), true);
        assert.deepEqual(await a.engine.subscriptions(id), ['/majors/*']);
        assert.deepEqual(await a.engine.subscribers('/majors/*'), [id]);
        // XRANGE of a log and of a box: A takes the session over from B and rebuilds its queue.
        await b.engine.publish(expand('/majors/x'), '"published"');
        await b.engine.deliver(id, '"delivered"');
        assert.equal(await a.engine.touch(id, 10_000), true);
        assert.deepEqual((await a.engine.take(id))?.messages.sort(), ['"delivered"', '"published"']);
        assert.deepEqual(await a.engine.stats(), { sessions: 1, subscriptions: 1 });
        // The script cache lost (NOSCRIPT, an error reply): scripts are sent again.
        const redis = await admin(t);
        await redis.sendCommand(['SCRIPT', 'FLUSH']);
        assert.equal(await a.engine.exists(id), true);
        // An error reply that is not an outage (WRONGTYPE) is an Error naming it, not EngineUnavailableError.
        await redis.sendCommand(['DEL', `${prefix}{nodes}`]);
        await redis.sendCommand(['SET', `${prefix}{nodes}`, 'not a hash']);
        await assert.rejects(a.engine.nodes(), (err: unknown) => err instanceof Error && !(err instanceof EngineUnavailableError) && /WRONGTYPE/.test(err.message));
        await redis.sendCommand(['DEL', `${prefix}{nodes}`]);
      });
    }
  });

  describe(`RedisEngine: where publishes are logged (this run: channelLogs ${channelLogsMode()})`, () => {
    it('a channel\'s publish goes to its own log (pattern) or to the shard\'s (shard); a wildcard pattern keeps its own; count: false', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, { url: server.url }, { prefix });
      const redis = await admin(t);
      const exact = await a.engine.createSession({ ack: false, ttl: 10_000 });
      const wild = await a.engine.createSession({ ack: false, ttl: 10_000 });
      await a.engine.subscribe(exact, '/lay/x');
      await a.engine.subscribe(exact, '/solo');
      await a.engine.subscribe(wild, '/lay/*');
      assert.equal(await a.engine.publish(expand('/lay/x'), '"1"'), 2);
      // Without a count, to a channel no wildcard pattern reaches: an upper bound in the pattern layout (here
      // exact), 0 in the shard layout.
      const uncounted = await a.engine.publish(expand('/solo'), '"2"', { count: false });
      // And to one a wildcard pattern with a subscriber also reaches: the sum (pattern), still 0 (shard).
      const uncountedWild = await a.engine.publish(expand('/lay/x'), '"3"', { count: false });
      assert.equal(uncountedWild, shardLogs() ? 0 : 2);
      assert.deepEqual((await a.engine.take(exact))?.messages, ['"1"', '"2"', '"3"']);
      assert.deepEqual((await a.engine.take(wild))?.messages, ['"1"', '"3"']);
      const type = (key: string) => redis.type(key);
      assert.equal(await type(`${prefix}{p:/lay/*}:log`), 'stream', 'the wildcard pattern\'s own log');
      if (shardLogs()) {
        assert.equal(uncounted, 0);
        assert.equal(await type(`${prefix}{p:/lay/x}:log`), 'none', 'no log of the channel\'s own');
        assert.equal(await type(`${prefix}{t0}:log`), 'stream', 'the shard\'s log');
        assert.notEqual(await type(`${prefix}{t0}:last`), 'none', 'the shard\'s last id');
        const entries = await redis.sendCommand<Array<[string, string[]]>>(['XRANGE', `${prefix}{t0}:log`, '-', '+']);
        assert.ok(entries.length >= 1 && entries.length <= 3, `one entry per tick (${entries.length})`);
        for (const [, fields] of entries) assert.ok(fields.map(String).includes('p'), `field p: ${fields.join(' ')}`);
      } else {
        assert.equal(uncounted, 1);
        assert.equal(await type(`${prefix}{p:/lay/x}:log`), 'stream', 'the channel\'s own log');
        assert.equal(await type(`${prefix}{t0}:log`), 'none', 'no shard');
      }
    });
  });

  describe('RedisEngine: one channel-log layout per prefix', () => {
    it('a node or publisher whose channelLogs differs from a live node\'s refuses to start; the same layout starts', async (t) => {
      const prefix = uniquePrefix();
      const redis = await admin(t);
      await node(t, { url: server.url }, { prefix, channelLogs: 'pattern' });
      const config = { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50 };
      const other = new RedisEngine({ url: server.url }, { ...fast, prefix, channelLogs: 'shard' });
      await assert.rejects(other.open(new RecordingHost(), config), (err: unknown) =>
        err instanceof Error && /logs channels by 'pattern'/.test(err.message) && /this one by 'shard'/.test(err.message) && /channelLogs/.test(err.message));
      await other.close();
      // Its report went with it: the live node alone, and it carries no layout field to the admin page.
      const reports = await redis.hGetAll(`${prefix}{nodes}`);
      assert.equal(Object.keys(reports).length, 1);
      const same = await node(t, { url: server.url }, { prefix, channelLogs: 'pattern' });
      assert.deepEqual((await same.engine.nodes()).map((n) => Object.keys(n).sort()), [0, 1].map(() => ['hostname', 'id', 'pid', 'rss', 'seen', 'sessions', 'uptime']));
      const { RedisPublisher } = await import('../lib/engines/redis/index.js');
      const wrong = new RedisPublisher({ url: server.url }, { prefix, channelLogs: 'shard' });
      t.after(() => wrong.close());
      await assert.rejects(wrong.publish('/x', 1), /RedisPublisher: node .* logs channels by 'pattern'/);
      const right = new RedisPublisher({ url: server.url }, { prefix, channelLogs: 'pattern' });
      t.after(() => right.close());
      assert.equal(await right.publish('/x', 1), 0);
      // A report from a version without the field counts as 'pattern'; a stale one counts for nothing.
      const old = uniquePrefix();
      const seen = Date.now();
      await redis.hSet(`${old}{nodes}`, 'old', JSON.stringify({ id: 'old', hostname: 'h', pid: 1, uptime: 1, rss: 1, sessions: 0, seen }));
      const beside = new RedisEngine({ url: server.url }, { ...fast, prefix: old, channelLogs: 'shard' });
      await assert.rejects(beside.open(new RecordingHost(), config), /logs channels by 'pattern'/);
      await beside.close();
      await redis.hSet(`${old}{nodes}`, 'old', JSON.stringify({ id: 'old', hostname: 'h', pid: 1, uptime: 1, rss: 1, sessions: 0, seen: seen - 60_000 }));
      await node(t, { url: server.url }, { prefix: old, channelLogs: 'shard' });
    });
  });

  describe('RedisEngine: configuration', () => {
    it('keys and channels live under the prefix, bayeux: by default', async (t) => {
      const url = `${server.url}/3`;
      const redis = await admin(t, url);
      await redis.flushDb();
      const n = await node(t, { url });
      const id = await n.engine.createSession({ ack: true, ttl: 10_000 });
      await n.engine.touch(id, 10_000);
      await n.engine.subscribe(id, '/a/**');
      await n.engine.publish(expand('/a/b'), '1');
      await n.engine.take(id);
      await n.engine.publish(expand('/a/b'), '2');
      const keys = await redis.keys('*');
      assert.ok(keys.length >= 5, `keys: ${keys.join(' ')}`);
      for (const key of keys) assert.ok(key.startsWith('bayeux:'), key);
      const channels = await redis.pubSubChannels('bayeux:node:*');
      assert.ok(channels.includes(`bayeux:node:${n.engine.nodeId}`));

      const custom = await node(t, { url }, { prefix: 'my-app{1}:' });
      const other = await custom.engine.createSession({ ack: false, ttl: 10_000 });
      await custom.engine.subscribe(other, '/a/**');
      // Prefixes do not see each other.
      assert.equal(await n.engine.exists(other), false);
      assert.equal(await custom.engine.publish(expand('/a/b'), '3'), 1);
      assert.deepEqual(await n.engine.stats(), { sessions: 1, subscriptions: 1 });
      for (const key of await redis.keys('*')) {
        assert.ok(key.startsWith('bayeux:') || key.startsWith('my-app{1}:'), key);
      }
      await redis.flushDb();
    });

    it('a client you pass is used, connected if needed, and not closed', async (t) => {
      const prefix = uniquePrefix();
      const open = createClient({ url: server.url });
      await open.connect();
      const closed = createClient({ url: server.url });
      t.after(async () => {
        for (const client of [open, closed]) if (client.isOpen) await client.close();
      });
      const a = await node(t, { client: open }, { prefix });
      const b = await node(t, { client: closed }, { prefix });
      assert.equal(closed.isReady, true);
      const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
      await b.engine.touch(id, 10_000);
      await a.engine.deliver(id, '"x"');
      await waitFor(() => b.host.woken().has(id), { timeout: 2000, what: 'B woken' });
      await a.engine.close();
      await b.engine.close();
      assert.equal(open.isReady, true);
      assert.equal(closed.isReady, true);
      assert.equal(await open.ping(), 'PONG');
    });

    it('options are validated, unknown ones named', () => {
      const url = server.url;
      assert.throws(() => new RedisEngine({ url }, { prefx: 'x' } as RedisEngineOptions), (err: unknown) => {
        return err instanceof TypeError && err.message.includes('prefx');
      });
      assert.throws(() => new RedisEngine({ url }, { prefix: '' }), TypeError);
      assert.throws(() => new RedisEngine({ url }, { commandTimeout: -1 }), /commandTimeout/);
      assert.throws(() => new RedisEngine({ url }, { openTimeout: Number.NaN }), /openTimeout/);
      assert.throws(() => new RedisEngine({ url }, { sweepBatch: 0 }), /sweepBatch/);
      assert.throws(() => new RedisEngine({ url }, { logger: {} as EngineLogger }), /logger/);
      assert.throws(() => new RedisEngine({ url: '' }), TypeError);
      assert.throws(() => new RedisEngine({} as RedisEngineSource), TypeError);
    });

    it('open() rejects with EngineUnavailableError when Redis cannot be reached', async () => {
      const port = await freePort();
      const engine = new RedisEngine({ url: `redis://127.0.0.1:${port}` }, { openTimeout: 300, reconnectMaxDelay: 50, ...testChannelLogs() });
      const started = Date.now();
      await assert.rejects(engine.open(new RecordingHost(), { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50 }), (err: unknown) => {
        assert.ok(err instanceof EngineUnavailableError);
        assert.equal(err.type, 'engine.unavailable');
        assert.match(err.message, /ECONNREFUSED|connect/);
        return true;
      });
      assert.ok(Date.now() - started < 2000);
      await assert.rejects(engine.exists('x'), EngineUnavailableError);
    });

    it('redacts passwords in URLs', () => {
      assert.equal(redactUrl('redis://user:pa55@host:6380/2'), 'redis://user:***@host:6380/2');
      assert.equal(redactUrl('rediss://:p%40ss@host'), 'rediss://:***@host');
      assert.equal(redactUrl('redis://host:6379'), 'redis://host:6379');
      assert.equal(redactUrl('not a url'), '<unparsable Redis URL>');
    });
  });

  describe('RedisEngine: open', () => {
    it('a failed open() leaves the engine re-openable: Redis down at the first request, back later', async (t) => {
      const own = await startRedisServer();
      t.after(() => own.stop());
      await own.stop();
      const engine = new RedisEngine({ url: own.url }, { ...fast, openTimeout: 300, logger: new CapturingLogger() });
      t.after(() => engine.close());
      const config = { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50 };
      await assert.rejects(engine.open(new RecordingHost(), config), EngineUnavailableError);
      await assert.rejects(engine.exists('x'), EngineUnavailableError);
      await own.restart();
      await engine.open(new RecordingHost(), config);
      const id = await engine.createSession({ ack: false, ttl: 10_000 });
      assert.equal(await engine.exists(id), true);
      await assert.rejects(engine.open(new RecordingHost(), config), /open\(\) called twice/);
    });
  });

  describe('RedisEngine: outages', () => {
    it('credentials never appear in errors or logs', async (t) => {
      const secured = await startRedisServer({ args: ['--requirepass', 'Right-Pa55'] });
      t.after(() => secured.stop());
      const wrongUrl = `redis://default:Wrong-Pa55@127.0.0.1:${secured.port}`;
      const wrongLog = new CapturingLogger();
      const wrong = new RedisEngine({ url: wrongUrl }, { openTimeout: 400, reconnectMaxDelay: 50, logger: wrongLog, ...testChannelLogs() });
      const error = await wrong.open(new RecordingHost(), { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50 }).then(
        () => assert.fail('open() should reject'),
        (err: unknown) => err,
      );
      assert.ok(error instanceof EngineUnavailableError);
      assert.ok(error.message.includes('***'), error.message);
      assert.ok(!error.message.includes('Wrong-Pa55'), error.message);
      assert.match(error.message, /WRONGPASS|NOAUTH|invalid/i);

      const log = new CapturingLogger();
      const rightUrl = `redis://default:Right-Pa55@127.0.0.1:${secured.port}`;
      const right = await node(t, { url: rightUrl }, { logger: log });
      const id = await right.engine.createSession({ ack: false, ttl: 10_000 });
      assert.equal(await right.engine.exists(id), true);
      await secured.stop();
      const failure = await right.engine.exists(id).then(
        () => assert.fail('exists() should reject'),
        (err: unknown) => err,
      );
      assert.ok(failure instanceof EngineUnavailableError);
      assert.ok(!failure.message.includes('Right-Pa55'), failure.message);
      await waitFor(() => log.lines.length > 0, { timeout: 2000, what: 'the outage logged' });
      for (const line of [...log.lines, ...wrongLog.lines, String(failure.stack), String(error.stack)]) {
        assert.ok(!line.includes('Pa55'), line);
      }
      await right.engine.close();
    });

    it('Redis hangs: operations reject within commandTimeout, then at once until Redis answers again', async (t) => {
      const own = await startRedisServer();
      const redis = await admin(t, own.url);
      const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
      assert.ok(pid > 0);
      let stopped = false;
      t.after(async () => {
        if (stopped) process.kill(pid, 'SIGCONT');
        await own.stop();
      });
      const log = new CapturingLogger();
      const prefix = uniquePrefix();
      const a = await node(t, { url: own.url }, { prefix, logger: log, commandTimeout: 400 }, { sweepInterval: 20 });
      const b = await node(t, { url: own.url }, { prefix, commandTimeout: 400, logger: new CapturingLogger() });
      const id = await a.engine.createSession({ ack: false, ttl: 60_000 });
      await a.engine.touch(id, 60_000);
      await a.engine.subscribe(id, '/h');
      // A follows /h in the background (Pub/Sub, then a read): let it finish.
      await sleep(200);

      process.kill(pid, 'SIGSTOP');
      stopped = true;
      // The first operations wait for commandTimeout (plus at most a quarter of it), not for ever.
      const started = Date.now();
      const settled = (promise: Promise<unknown>) => promise.then(() => assert.fail('should reject'), (err: unknown) => ({ err, at: Date.now() }));
      const waiting: [string, Promise<{ err: unknown; at: number }>][] = [
        ['exists', settled(a.engine.exists(id))],
        ['publish', settled(b.engine.publish(expand('/h'), '1'))],
        ['take', settled(a.engine.take(id))],
      ];
      for (const [name, operation] of waiting) {
        const { err, at } = await operation;
        assert.throws(() => { throw err; }, (err: unknown) => {
          assert.ok(err instanceof EngineUnavailableError, name);
          assert.match(err.message, /no answer within 400 ms/, name);
          return true;
        });
        const elapsed = at - started;
        assert.ok(elapsed >= 390 && elapsed < 1000, `${name} rejected after ${elapsed} ms`);
      }
      // Then at once: Redis is known to be hung.
      for (const [name, operation] of [
        ['take', () => a.engine.take(id)],
        ['takeMany', () => a.engine.takeMany([id])],
        ['deliver', () => a.engine.deliver(id, '2')],
        ['touch', () => a.engine.touch(id, 1000)],
        ['publish', () => b.engine.publish(expand('/h'), '3')],
      ] as const) {
        const at = Date.now();
        await assert.rejects(operation(), EngineUnavailableError, name);
        assert.ok(Date.now() - at < 100, `${name} failed fast`);
      }
      await sleep(200);
      assert.deepEqual(log.lines.map((line) => line.slice(0, 5)), ['warn:'], log.lines.join('\n'));
      assert.match(log.lines[0] ?? '', /stopped answering/);

      process.kill(pid, 'SIGCONT');
      stopped = false;
      // The same connections: no reconnection, the session is still there.
      await waitFor(() => a.engine.exists(id).catch(() => false), { timeout: 3000, what: 'A to get answers again', every: 20 });
      await waitFor(() => b.engine.stats().then(() => true, () => false), { timeout: 3000, what: 'B to get answers again', every: 20 });
      assert.ok((await b.engine.publish(expand('/h'), '4')) === 1);
      // Published on B: it reaches A's session through A's Pub/Sub connection, a moment later.
      const taken: string[] = [];
      await waitFor(async () => {
        taken.push(...((await a.engine.take(id))?.messages ?? []));
        return taken.includes('4');
      }, { timeout: 3000, what: 'message 4 on A', every: 20 });
      await waitFor(() => log.lines.length >= 2, { timeout: 2000, what: 'the recovery logged' });
      assert.deepEqual(log.lines.map((line) => line.slice(0, 5)), ['warn:', 'info:'], log.lines.join('\n'));
      assert.deepEqual(escaped, []);
    });

    it('a blocked event loop does not time out commands Redis answered meanwhile', async (t) => {
      const { engine } = await node(t, { url: server.url }, { prefix: uniquePrefix(), commandTimeout: 100 });
      const id = await engine.createSession({ ack: false, ttl: 60_000 });
      const block = (ms: number) => {
        const end = Date.now() + ms;
        while (Date.now() < end) {
          // busy: no timers, no I/O
        }
      };
      for (let round = 0; round < 5; round++) {
        // Blocked before the command is even written.
        const before = engine.exists(id);
        block(400);
        assert.equal(await before, true);
        // Blocked after it was written: the answer waits, unread, in the socket.
        const after = engine.exists(id);
        await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
        block(400);
        assert.equal(await after, true);
      }
      assert.equal(await engine.touch(id, 60_000), true);
    });

    it('Redis stops: operations reject with EngineUnavailableError, nothing crashes, and service resumes', async (t) => {
      const own = await startRedisServer();
      t.after(() => own.stop());
      const prefix = uniquePrefix();
      const logA = new CapturingLogger();
      const logB = new CapturingLogger();
      const a = await node(t, { url: own.url }, { prefix, logger: logA, commandTimeout: 1000 }, { sweepInterval: 20 });
      const b = await node(t, { url: own.url }, { prefix, logger: logB, commandTimeout: 1000 }, { sweepInterval: 20 });
      const id = await a.engine.createSession({ ack: true, ttl: 10_000 });
      await b.engine.touch(id, 10_000);
      await a.engine.subscribe(id, '/x');

      await own.stop();
      const operations: [string, () => Promise<unknown>][] = [
        ['createSession', () => a.engine.createSession({ ack: false, ttl: 1000 })],
        ['exists', () => a.engine.exists(id)],
        ['touch', () => b.engine.touch(id, 1000)],
        ['subscribe', () => a.engine.subscribe(id, '/y')],
        ['unsubscribe', () => a.engine.unsubscribe(id, '/y')],
        ['subscriptions', () => a.engine.subscriptions(id)],
        ['publish', () => a.engine.publish(expand('/x'), '1')],
        ['deliver', () => a.engine.deliver(id, '1')],
        ['take', () => b.engine.take(id, 1)],
        ['takeMany', () => b.engine.takeMany([id, 'other'])],
        ['stats', () => b.engine.stats()],
        ['destroy', () => a.engine.destroy(id)],
      ];
      for (const [name, operation] of operations) {
        const started = Date.now();
        await assert.rejects(operation(), EngineUnavailableError, name);
        assert.ok(Date.now() - started < 1500, `${name} rejected in time`);
      }
      // Sweeps and reconnection attempts go on for a while without harm.
      await sleep(300);
      assert.deepEqual(escaped, []);
      assert.equal(logA.lines.filter((line) => line.startsWith('warn:')).length, 1, logA.lines.join('\n'));

      await own.restart();
      await waitFor(
        () => a.engine.stats().then(() => true, () => false),
        { timeout: 5000, what: 'A to reconnect', every: 50 },
      );
      await waitFor(
        () => b.engine.stats().then(() => true, () => false),
        { timeout: 5000, what: 'B to reconnect', every: 50 },
      );
      // The restarted Redis had no persistence: the old session is gone.
      assert.equal(await a.engine.exists(id), false);
      // Everything works again, notifications included.
      const fresh = await a.engine.createSession({ ack: true, ttl: 10_000 });
      await b.engine.touch(fresh, 10_000);
      await a.engine.subscribe(fresh, '/x');
      await waitFor(
        async () => {
          b.host.clear();
          await a.engine.publish(expand('/x'), '"again"');
          await sleep(30);
          return b.host.woken().has(fresh);
        },
        { timeout: 3000, what: 'B woken by a publish on A after the restart', every: 0 },
      );
      const taken = await b.engine.take(fresh);
      assert.ok(taken && taken.messages.length >= 1 && taken.messages.every((m) => m === '"again"'), JSON.stringify(taken));
      await waitFor(() => logA.lines.some((line) => line.startsWith('info:')), { timeout: 2000, what: 'A logs the recovery' });
      // Redis came back empty: each node also says once that it lost its data (markers.ts, checked every 2 s).
      await waitFor(() => logA.lines.some((line) => line.includes('lost its data')), { timeout: 5000, what: 'A logs the data loss' });
      assert.deepEqual(
        logA.lines.filter((line) => !line.includes('lost its data')).map((line) => line.slice(0, 5)),
        ['warn:', 'info:'],
        logA.lines.join('\n'),
      );
      assert.equal(logA.lines.filter((line) => line.includes('lost its data')).length, 1, logA.lines.join('\n'));
      assert.equal(a.engine.dataLoss.count, 1);
      assert.deepEqual(escaped, []);
    });
  });
}
