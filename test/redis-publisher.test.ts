/**
 * `RedisPublisher` (`express-bayeux/redis`): publishing from a process
 * that runs no server. Two nodes on one Redis, and on a Redis Cluster of
 * three primaries, a WebSocket subscriber on one and a long-polling
 * subscriber on the other, and a separate worker process
 * (helpers/publisher-worker.ts) that publishes: both receive every
 * message once, in order. `deliver` reaches a session held by either
 * node; in-process subscribers see `info.client` undefined; Redis hung or
 * stopped: `publish` rejects with `EngineUnavailableError` within
 * `commandTimeout`, and works again when Redis is back.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'redis';
import { bayeux, BayeuxError, EngineUnavailableError, type BayeuxMiddleware } from '../lib/index.js';
import { RedisEngine, RedisPublisher } from '../lib/engines/redis/index.js';
import { finish, runNode } from './helpers/cli-run.js';
import { killAllNodes } from './helpers/node-process.js';
import {
  collect, connect, dataOn, handshake, openPeer, startCluster, subscribe, type Cluster, type Kind, type Peer, type RedisTarget,
} from './helpers/redis-multiprocess.js';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';
import { channelLogsMode, onClusterSkip, testChannelLogs } from './helpers/channel-logs.js';

const worker = fileURLToPath(new URL('./helpers/publisher-worker.js', import.meta.url));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('RedisPublisher options are checked like RedisEngine\'s', () => {
  it('a bad source or option throws a TypeError naming it; nothing connects', () => {
    const make = (source: unknown, options?: unknown) => new RedisPublisher(source as never, options as never);
    assert.throws(() => make(undefined), { name: 'TypeError', message: /RedisPublisher needs \{ url \}/ });
    assert.throws(() => make({}), { name: 'TypeError', message: /RedisPublisher needs \{ url \}/ });
    assert.throws(() => make({ url: '' }), { name: 'TypeError', message: /RedisPublisher needs \{ url \}/ });
    assert.throws(() => make({ cluster: { rootNodes: [] } }), { name: 'TypeError', message: /RedisPublisher needs/ });
    const url = { url: 'redis://127.0.0.1:1' };
    assert.throws(() => make(url, null), { name: 'TypeError', message: /RedisPublisher options must be an object/ });
    assert.throws(() => make(url, { sweepBatch: 10 }), { name: 'TypeError', message: /RedisPublisher: unknown option sweepBatch/ });
    assert.throws(() => make(url, { commandTimeout: -1 }), { name: 'TypeError', message: /RedisPublisher option commandTimeout must be a finite number >= 0/ });
    assert.throws(() => make(url, { prefix: '' }), { name: 'TypeError', message: /RedisPublisher option prefix/ });
    assert.throws(() => make(url, { maxLogBytes: 10 }), { name: 'TypeError', message: /maxLogBytes must be a finite number >= 1024/ });
    assert.throws(() => make(url, { maxMessageBytes: 1.5 }), { name: 'TypeError', message: /maxMessageBytes must be an integer >= 64/ });
    assert.ok(make(url, { prefix: 'app:', commandTimeout: 100, logLength: 10, logRetention: 1000, maxMessageBytes: 64 }) instanceof RedisPublisher);
  });

  it('a channel one cannot publish to, bad options and an oversized message reject before Redis is asked', async () => {
    // Nothing listens on port 1: a call that reached Redis would reject with EngineUnavailableError instead.
    const publisher = new RedisPublisher({ url: 'redis://127.0.0.1:1' }, { openTimeout: 200, maxMessageBytes: 100 });
    for (const channel of ['/a/*', '/a/**', '/meta/connect', '/service/x', 'nope', '']) {
      await assert.rejects(publisher.publish(channel, 1), (err: unknown) => err instanceof BayeuxError && err.code === 405, channel);
    }
    await assert.rejects(publisher.deliver('x'.repeat(27), '/meta/x', 1), (err: unknown) => err instanceof BayeuxError && err.code === 405);
    await assert.rejects(publisher.publish('/a', 1, { bogus: 1 } as never), { name: 'TypeError', message: /unknown publish option bogus/ });
    await assert.rejects(publisher.publish('/a', 1, { ext: [] as never }), { name: 'TypeError', message: /ext must be an object/ });
    await assert.rejects(publisher.publish('/a', 1, { except: [1] as never }), { name: 'TypeError', message: /except/ });
    await assert.rejects(publisher.publish('/a', 'x'.repeat(100)), (err: unknown) => err instanceof BayeuxError && err.code === 413 && err.message === 'message_too_large');
    // Not of the shape the engines issue: no session, no call.
    assert.equal(await publisher.deliver('not-an-id', '/a', 1), false);
    // Redis is not there: the first call rejects once the connection attempt gives up (openTimeout).
    await assert.rejects(within(publisher.publish('/a', 1), 5000, 'publish without Redis'), EngineUnavailableError);
    await publisher.close();
    await assert.rejects(publisher.publish('/a', 1), { name: 'EngineUnavailableError', message: /RedisPublisher is closed/ });
  });
});

if (!findRedisServer()) {
  it('RedisPublisher across nodes', { skip: announceRedisSkip() }, () => {});
} else {
  after(() => killAllNodes());

  /** The tests that run the same on one Redis and on a Redis Cluster. */
  const acrossNodes = (
    label: string,
    target: () => Promise<RedisTarget & { source: ConstructorParameters<typeof RedisPublisher>[0]; flags: string[] }>,
    options: { skip?: string } = {},
  ) => {
    describe(`RedisPublisher, ${label}`, options, () => {
      let redis: Awaited<ReturnType<typeof target>>;
      let nodes: Cluster;
      const peers: Peer[] = [];
      const publishers: RedisPublisher[] = [];
      const servers: BayeuxMiddleware[] = [];
      const peer = async (kind: Kind, url: string) => {
        const p = await openPeer(kind, url);
        peers.push(p);
        return p;
      };
      const newPublisher = (options: ConstructorParameters<typeof RedisPublisher>[1] = {}) => {
        const publisher = new RedisPublisher(redis.source, { prefix: nodes.prefix, ...testChannelLogs(), ...options });
        publishers.push(publisher);
        return publisher;
      };

      before(async () => {
        redis = await target();
        nodes = await startCluster(redis);
      });
      after(async () => {
        for (const p of peers) p.close();
        for (const publisher of publishers) await publisher.close();
        for (const cometd of servers) await cometd.close();
        for (const node of nodes ?? []) await node.stop();
        await redis?.stop();
      });

      /** A subscriber on `node`'s `url` over `kind`, waiting (held connect, or its socket) for `channel`. */
      const subscriber = async (kind: Kind, url: string, channel: string) => {
        const p = await peer(kind, url);
        const id = await handshake(p);
        await subscribe(p, id, channel);
        await connect(p, id, true);
        return { p, id };
      };

      it('a worker process publishes; a WebSocket subscriber on one node and a long-polling one on the other get every message once, in order', async () => {
        const [a, b] = nodes;
        const channel = '/jobs/done';
        const ws = await subscriber('websocket', a.url, channel);
        const lp = await subscriber('long-polling', b.url, '/jobs/*');
        const held = connect(lp.p, lp.id).catch(() => []);
        // WebSocket: a connect that stays held, so pushes come on the socket.
        void connect(ws.p, ws.id, false, 10_000).catch(() => []);

        const run = runNode(worker, [...redis.flags, `--prefix=${nodes.prefix}`, `--channel=${channel}`, '--count=30']);
        const { code, stdout, stderr } = await finish(run, 30_000);
        assert.equal(code, 0, stderr);
        assert.match(stdout, new RegExp(`^CHANNEL_LOGS ${channelLogsMode()}$`, 'm'), 'the worker publishes with this run\'s channelLogs');
        const counts = JSON.parse(/PUBLISHED (.*)/.exec(stdout)?.[1] ?? '[]') as number[];
        assert.deepEqual(counts, range(1, 30).map(() => 2), 'each publish reached both sessions');

        await held;
        assert.deepEqual(await collect(ws.p, ws.id, channel, 30), range(1, 30));
        assert.deepEqual(await collect(lp.p, lp.id, channel, 30), range(1, 30));
        // Once: nothing more comes.
        await sleep(200);
        await connect(lp.p, lp.id, true);
        assert.deepEqual(dataOn(ws.p, channel), range(1, 30));
        assert.deepEqual(dataOn(lp.p, channel), range(1, 30));
        assert.ok([...ws.p.delivered, ...lp.p.delivered].every((m) => m['clientId'] === undefined && m['id'] === undefined));
      });

      it('deliver reaches a session held by either node', async () => {
        const [a, b] = nodes;
        const publisher = newPublisher();
        const onA = await subscriber('long-polling', a.url, '/unused/a');
        const onB = await subscriber('websocket', b.url, '/unused/b');
        const held = connect(onA.p, onA.id).catch(() => []);
        void connect(onB.p, onB.id, false, 10_000).catch(() => []);
        assert.equal(await publisher.deliver(onA.id, '/direct', 'to A'), true);
        assert.equal(await publisher.deliver(onB.id, '/direct', 'to B'), true);
        await held;
        assert.deepEqual(await collect(onA.p, onA.id, '/direct', 1), ['to A']);
        assert.deepEqual(await collect(onB.p, onB.id, '/direct', 1), ['to B']);
        // An id of the right shape that no session has.
        assert.equal(await publisher.deliver('A'.repeat(27), '/direct', 'nobody'), false);
      });

      it('in-process subscribers see info.client undefined; ext, id and except are carried as cometd.publish carries them', async () => {
        const [a] = nodes;
        const engine = new RedisEngine(redis.source, { prefix: nodes.prefix, ...testChannelLogs() });
        const cometd = bayeux({ engine, logLevel: 'error' });
        servers.push(cometd);
        const seen: Array<{ data: unknown; client: string | undefined; ext: unknown; id: unknown }> = [];
        await cometd.subscribe('/inproc/**', (data, message, info) => seen.push({ data, client: info.client, ext: message.ext, id: message.id })).ready;
        const skipped = await subscriber('long-polling', a.url, '/inproc/x');
        const kept = await subscriber('long-polling', a.url, '/inproc/x');
        const publisher = newPublisher();
        assert.equal(await publisher.publish('/inproc/x', { n: 1 }, { ext: { from: 'worker' }, id: 'w1', except: skipped.id }), 2);
        await waitFor(() => seen.length === 1, { timeout: 5000, what: 'the in-process subscriber' });
        assert.deepEqual(seen, [{ data: { n: 1 }, client: undefined, ext: { from: 'worker' }, id: 'w1' }]);
        await connect(kept.p, kept.id, true);
        await connect(skipped.p, skipped.id, true);
        assert.deepEqual(kept.p.delivered.filter((m) => m['channel'] === '/inproc/x'), [{ channel: '/inproc/x', data: { n: 1 }, id: 'w1', ext: { from: 'worker' } }]);
        assert.deepEqual(dataOn(skipped.p, '/inproc/x'), [], 'except');
      });
    });
  };

  acrossNodes('two nodes on one Redis', async () => {
    const server = await startRedisServer();
    return { nodeOptions: { redisUrl: server.url }, stop: () => server.stop(), restart: () => server.restart(), source: { url: server.url }, flags: [`--redis=${server.url}`] };
  });
  acrossNodes('two nodes on a Redis Cluster of three primaries', async () => {
    const cluster: RedisCluster = await startRedisCluster();
    return {
      nodeOptions: { redisCluster: cluster.urls.join(',') },
      stop: () => cluster.stop(),
      restart: () => cluster.restart(),
      source: { cluster: { rootNodes: cluster.rootNodes } },
      flags: [`--cluster=${cluster.urls.join(',')}`],
    };
  }, onClusterSkip());

  describe('RedisPublisher on a Redis of its own: your client, and outages', () => {
    let server: RedisServer;
    let pid = 0;
    let paused = false;
    before(async () => {
      server = await startRedisServer();
      const admin = createClient({ url: server.url });
      await admin.connect();
      pid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1]);
      await admin.close();
      assert.ok(pid > 0);
    });
    after(async () => {
      if (paused) process.kill(pid, 'SIGCONT');
      await server.stop();
    });

    it('{ client }: your client is used (connected if needed) and left open by close()', async () => {
      const client = createClient({ url: server.url });
      client.on('error', () => undefined);
      const publisher = new RedisPublisher({ client }, { prefix: 'own:', ...testChannelLogs() });
      try {
        assert.equal(await publisher.publish('/own', 1), 0);
        assert.equal(await publisher.deliver('A'.repeat(27), '/own', 2), false);
      } finally {
        await publisher.close();
      }
      assert.equal(client.isOpen, true);
      assert.equal(await client.ping(), 'PONG');
      await client.close();
    });

    it('history: given the nodes\' history option, a publish to a history channel gets its position and is kept, as a node\'s is', async () => {
      const history = { '/h/**': { size: 10, ttl: 60_000 } };
      const cometd = bayeux({ engine: new RedisEngine({ url: server.url }, { prefix: 'hist:', ...testChannelLogs() }), history });
      const publisher = new RedisPublisher({ url: server.url }, { prefix: 'hist:', history, ...testChannelLogs() });
      try {
        await cometd.publish('/h/a', 'from the node');
        for (let i = 1; i <= 3; i++) await publisher.publish('/h/a', i, { ext: { position: 'forged', other: true } });
        const kept = await cometd.history('/h/a');
        assert.deepEqual(kept.messages.map((m) => m.data), ['from the node', 1, 2, 3]);
        assert.deepEqual(kept.messages.map((m) => m.position.offset), [1, 2, 3, 4]);
        assert.equal(new Set(kept.messages.map((m) => m.position.epoch)).size, 1, 'one epoch');
        assert.deepEqual(kept.messages[1]?.ext, { other: true, position: kept.messages[1]?.position }, 'a forged position is replaced');
        // A channel without history: no position.
        assert.equal(await publisher.publish('/plain', 1), 0);
        assert.throws(() => new RedisPublisher({ url: server.url }, { history: { '/meta/x': {} } }), /history/);
      } finally {
        await publisher.close();
        await cometd.close();
      }
    });

    it('Redis hangs: publish rejects within commandTimeout, then works again when Redis answers', async () => {
      const warnings: string[] = [];
      const publisher = new RedisPublisher({ url: server.url }, { prefix: 'hang:', commandTimeout: 400, ...testChannelLogs(), logger: { warn: (m) => warnings.push(m), info: () => {} } });
      try {
        assert.equal(await publisher.publish('/h', 0), 0, 'no subscribers yet');
        process.kill(pid, 'SIGSTOP');
        paused = true;
        const err = await within(publisher.publish('/h', 1).then(() => undefined, (e: unknown) => e), 5000, 'publish while Redis hangs');
        assert.ok(err instanceof EngineUnavailableError, String(err));
        assert.match(err.message, /no answer within 400 ms/);
        // Known to be hung now: the next ones fail at once.
        await assert.rejects(within(publisher.publish('/h', 2), 5000, 'second publish'), EngineUnavailableError);
        await assert.rejects(within(publisher.deliver('A'.repeat(27), '/h', 3), 5000, 'deliver'), EngineUnavailableError);
        process.kill(pid, 'SIGCONT');
        paused = false;
        await waitFor(() => publisher.publish('/h', 4).then(() => true, () => false), { timeout: 5000, what: 'publish to work again', every: 50 });
        assert.ok(warnings.some((w) => /stopped answering/.test(w)), warnings.join('\n'));
      } finally {
        await publisher.close();
      }
    });

    it('Redis stops: publish rejects (the process neither hangs nor crashes), then works after Redis returns', async () => {
      const publisher = new RedisPublisher({ url: server.url }, { prefix: 'stop:', commandTimeout: 400, reconnectMaxDelay: 100, ...testChannelLogs(), logger: { warn: () => {}, info: () => {} } });
      try {
        assert.equal(await publisher.publish('/s', 0), 0);
        await server.stop();
        for (let i = 1; i <= 3; i++) {
          await assert.rejects(within(publisher.publish('/s', i), 5000, `publish ${i} while Redis is stopped`), EngineUnavailableError);
        }
        await server.restart();
        await waitFor(() => publisher.publish('/s', 4).then(() => true, () => false), { timeout: 10_000, what: 'publish to work after the restart', every: 50 });
        assert.equal(await publisher.publish('/s', 5), 0);
      } finally {
        await publisher.close();
      }
    });
  });
}
