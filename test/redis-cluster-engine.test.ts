/**
 * RedisEngine on a real Redis Cluster of three primaries, started once
 * for this file (helpers/redis-cluster.ts): the engine suite, and what
 * several nodes do across shards. Without `redis-server` and `redis-cli`
 * on PATH the file says loudly that it skipped.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { expand } from '../lib/server/expand.js';
import type { EngineConfig } from '../lib/engines/engine.js';
import { RedisEngine, type RedisEngineOptions } from '../lib/engines/redis/index.js';
import { engineSuite, RecordingHost } from './engine-suite.js';
import { startRedisCluster } from './helpers/redis-cluster.js';
import { announceRedisSkip, findRedisServer } from './helpers/redis-server.js';
import { checkRecoverThroughOtherNode } from './helpers/redis-history-checks.js';
import { sleep, waitFor } from './helpers/wait.js';

if (!findRedisServer()) {
  const message = announceRedisSkip();
  it('RedisEngine on Redis Cluster', { skip: message }, () => {});
} else {
  const cluster = await startRedisCluster();
  after(() => cluster.stop());
  let counter = 0;
  const uniquePrefix = () => `cl-${process.pid}-${++counter}:`;
  const fast: RedisEngineOptions = { reconnectMaxDelay: 100, commandTimeout: 3000, openTimeout: 5000, logger: { warn() {}, info() {} } };
  const source = () => ({ cluster: { rootNodes: cluster.rootNodes } });

  engineSuite({
    name: 'RedisEngine on Redis Cluster',
    create: async () => new RedisEngine(source(), { ...fast, prefix: uniquePrefix() }),
    history: true,
    presence: true,
    checksPublisher: false,
  });

  async function node(t: TestContext, prefix: string, config: Partial<EngineConfig> = {}) {
    const engine = new RedisEngine(source(), { ...fast, prefix });
    const host = new RecordingHost();
    await engine.open(host, { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50, ...config });
    t.after(() => engine.close());
    return { engine, host };
  }

  describe('RedisEngine on Redis Cluster: several nodes', () => {
    it('keys are spread over the three primaries', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, prefix);
      for (let i = 0; i < 40; i++) {
        const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
        await a.engine.subscribe(id, `/spread/${i}`);
      }
      const { createClient } = await import('redis');
      let withKeys = 0;
      for (const url of cluster.urls) {
        const client = createClient({ url });
        client.on('error', () => {});
        await client.connect();
        const keys = await client.keys(`${prefix}*`);
        await client.close();
        if (keys.length > 0) withKeys++;
      }
      assert.equal(withKeys, 3);
    });

    it('handshake on A, subscribe on B, publish on C: A\'s session gets it; then it moves to B', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, prefix);
      const b = await node(t, prefix);
      const c = await node(t, prefix);
      const id = await a.engine.createSession({ ack: true, ttl: 10_000 });
      await a.engine.touch(id, 10_000);
      assert.equal(await b.engine.subscribe(id, '/x/**'), true);
      await sleep(50);
      assert.equal(await c.engine.publish(expand('/x/y'), '"1"'), 1);
      await waitFor(() => a.host.woken().has(id), { timeout: 3000, what: 'A woken' });
      const first = await a.engine.take(id);
      assert.deepEqual(first?.messages, ['"1"']);
      await c.engine.publish(expand('/x/z'), '"2"');
      // The reply to `first` was lost; the client reconnects through B.
      assert.equal(await b.engine.touch(id, 10_000), true);
      const again = await b.engine.take(id, (first?.batch as number) - 1);
      assert.deepEqual(again?.messages, ['"1"', '"2"']);
      assert.deepEqual((await b.engine.take(id, again?.batch))?.messages, []);
      b.host.clear();
      assert.equal(await c.engine.deliver(id, '"3"'), true);
      await waitFor(() => b.host.woken().has(id), { timeout: 3000, what: 'B woken by the deliver' });
      // A late notification of '"2"' may wake B too (wakes may be spurious): take until the deliver is in.
      let messages: string[] | undefined = [];
      const end = Date.now() + 3000;
      while (!messages?.includes('"3"') && Date.now() < end) {
        messages = (await b.engine.take(id))?.messages;
        if (!messages?.includes('"3"')) await sleep(20);
      }
      assert.deepEqual(messages, ['"3"']);
    });

    it('history under two concurrent publishers: the exact channel\'s subscribers get offset order; a wildcard\'s, each node\'s publishes in its order', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, prefix);
      const b = await node(t, prefix);
      // The subscribers are held by a third node, which does not publish.
      const c = await node(t, prefix);
      // Each node's scripts loaded on every primary first: a script's first EVALSHA on a primary is refused
      // (NOSCRIPT) and sent again as EVAL, which a later script of the same node may overtake.
      for (const n of [a, b]) await n.engine.publish(expand('/o/a'), '"warm-up"');
      const exact = await c.engine.createSession({ ack: false, ttl: 10_000 });
      const wild = await c.engine.createSession({ ack: false, ttl: 10_000 });
      await c.engine.subscribe(exact, '/o/a');
      await c.engine.subscribe(wild, '/o/*');
      const history = { channel: '/o/a', size: 500, ttl: 60_000, tail: 2 };
      const text = (from: string, n: number) => JSON.stringify({ from, n }).slice(0, -1) + ',"ext":{"position":}}';
      const publishes: Array<Promise<number>> = [];
      // Batches of a few per tick from each node, interleaved, so the scripts of the two nodes cross.
      for (let i = 1; i <= 60; i++) {
        publishes.push(a.engine.publish(expand('/o/a'), text('a', i), { history }));
        publishes.push(b.engine.publish(expand('/o/a'), text('b', i), { history }));
        if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(publishes);
      type Got = { from: string; n: number; ext: { position: { offset: number } } };
      const collect = async (engine: RedisEngine, id: string) => {
        const got: Got[] = [];
        for (let round = 0; round < 100 && got.length < 120; round++) {
          got.push(...((await engine.take(id))?.messages ?? []).map((m) => JSON.parse(m) as Got));
          if (got.length < 120) await sleep(20);
        }
        return got;
      };
      const onExact = await collect(c.engine, exact);
      const onWild = await collect(c.engine, wild);
      assert.deepEqual(onExact.map((m) => m.ext.position.offset), Array.from({ length: 120 }, (_, i) => i + 1), 'the exact channel: offset order');
      assert.equal(onWild.length, 120);
      assert.deepEqual(new Set(onWild.map((m) => m.ext.position.offset)).size, 120, 'the wildcard: each once');
      for (const from of ['a', 'b']) {
        const mine = onWild.filter((m) => m.from === from);
        assert.deepEqual(mine.map((m) => m.n), Array.from({ length: 60 }, (_, i) => i + 1), `the wildcard: ${from}'s publishes in its order`);
        const offsets = mine.map((m) => m.ext.position.offset);
        assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), `the wildcard: ${from}'s offsets rise`);
      }
    });

    it('recover through a node that does not hold the session: the holder queues the recovered messages first, then live ones', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, prefix);
      const b = await node(t, prefix);
      await checkRecoverThroughOtherNode(a.engine, b.engine, { size: 100, ttl: 60_000 });
    });


    // A loss found in issue #20's work (single Redis passed the same test): on a Cluster, this node's own
    // publishes are applied when every slot's script of their tick answered, while B's announcements come on
    // the channel at once; during a gap read, a B announcement chained after A's not yet applied publishes was
    // applied from the backlog without a gap check, and A's entries were then dropped as already applied
    // (log.ts #fill; test/unit/redis-gap-fill.test.ts plays the same order). Lost a tick's batch most runs.
    it('a node publishing while another does: its own subscribers get every message', async (t) => {
      const prefix = uniquePrefix();
      const a = await node(t, prefix);
      const b = await node(t, prefix);
      for (const n of [a, b]) await n.engine.publish(expand('/l/a'), '"warm-up"');
      const id = await a.engine.createSession({ ack: false, ttl: 10_000 });
      await a.engine.subscribe(id, '/l/a');
      const publishes: Array<Promise<number>> = [];
      for (let i = 1; i <= 60; i++) {
        publishes.push(a.engine.publish(expand('/l/a'), JSON.stringify({ from: 'a', n: i })));
        publishes.push(b.engine.publish(expand('/l/a'), JSON.stringify({ from: 'b', n: i })));
        if (i % 3 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(publishes);
      // Up to 10 s for all 120: B's announcements come over Pub/Sub, late on a loaded machine. A lost entry
      // never comes (nothing publishes after it to reveal the gap), so waiting longer cannot hide a loss.
      const got: string[] = [];
      const started = Date.now();
      while (got.length < 120 && Date.now() - started < 10_000) {
        got.push(...((await a.engine.take(id))?.messages ?? []));
        if (got.length < 120) await sleep(20);
      }
      if (Date.now() - started > 2000) t.diagnostic(`all ${got.length} taken after ${Date.now() - started} ms`);
      const missing = Array.from({ length: 60 }, (_, i) => i + 1).filter((n) => !got.includes(JSON.stringify({ from: 'a', n })));
      assert.deepEqual(missing, [], `A's own publishes missing for A's subscriber: ${missing.join(',')}`);
      for (const from of ['a', 'b']) {
        const mine = got.map((m) => JSON.parse(m) as { from: string; n: number }).filter((m) => m.from === from).map((m) => m.n);
        assert.deepEqual(mine, Array.from({ length: 60 }, (_, i) => i + 1), `${from}'s publishes, each once, in its order`);
      }
      assert.equal(got.length, 120);
    });

    it('each expired session is reported once across nodes', async (t) => {
      const prefix = uniquePrefix();
      const nodes = [await node(t, prefix, { sweepInterval: 10 }), await node(t, prefix, { sweepInterval: 13 })];
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        const id = await nodes[i % 2]!.engine.createSession({ ack: i % 2 === 0, ttl: 80 });
        await nodes[(i + 1) % 2]!.engine.subscribe(id, `/e/${i % 3}`);
        ids.push(id);
      }
      const all = () => nodes.flatMap((n) => n.host.expiredIds);
      await waitFor(() => all().length >= ids.length, { timeout: 5000, what: 'every session expired' });
      await sleep(100);
      assert.deepEqual(all().sort(), [...ids].sort());
      assert.deepEqual(await nodes[0]!.engine.stats(), { sessions: 0, subscriptions: 0 });
      assert.deepEqual(await nodes[0]!.engine.subscribers('/e/0'), []);
    });
  });
}
