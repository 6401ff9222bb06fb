/**
 * The multi-process tests, run on one Redis (redis-cluster.test.ts) and on
 * a Redis Cluster (redis-cluster-nodes.test.ts). Many nodes on one Redis, as users run them: two server processes
 * (helpers/redis-node.ts, Express + bayeux + RedisEngine) and one real
 * `redis-server`, sometimes behind a round-robin TCP balancer with no
 * session affinity (helpers/tcp-balancer.ts). Covered: cross-node publish
 * over long-polling and WebSocket; a session that handshakes on one node
 * and subscribes and connects on the other; `kill -9` of the node holding
 * a client while messages wait for it; cluster-wide expiry, reported once;
 * a Redis restart in the middle of traffic; and the ack extension across a
 * node's death (BayeuxClient, which drops the copies a lost ack causes).
 *
 * Without `redis-server` on PATH the file says loudly that it skipped.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import { BayeuxClient, type BayeuxMessage } from '../../lib/client/node.js';
import { killAllNodes, NodeProcess, type NodeOptions } from './node-process.js';
import { announceRedisSkip, findRedisServer } from './redis-server.js';
import { startBalancer, type TcpBalancer } from './tcp-balancer.js';
import { sleep, waitFor } from './wait.js';

type Msg = Record<string, any>;
export type Kind = 'long-polling' | 'websocket';
const KINDS: readonly Kind[] = ['long-polling', 'websocket'];

// ---------------------------------------------------------------- a raw Bayeux peer

/**
 * (Exported for the other multi-process files: test/redis-publisher.test.ts.)
 * One raw Bayeux peer on one transport: POSTs (long-polling) or one
 * WebSocket. `send` resolves to the replies to the messages sent (those
 * with `successful` or on `/meta/`); other messages are deliveries.
 */
export interface Peer {
  readonly kind: Kind;
  readonly delivered: Msg[];
  readonly closed: boolean;
  send(messages: Msg | Msg[], timeoutMs?: number): Promise<Msg[]>;
  close(): void;
}

let ids = 0;

function isReply(m: Msg): boolean {
  return typeof m['channel'] === 'string' && (m['channel'].startsWith('/meta/') || 'successful' in m);
}

export async function openPeer(kind: Kind, url: string): Promise<Peer> {
  const delivered: Msg[] = [];
  if (kind === 'long-polling') {
    return {
      kind,
      delivered,
      closed: false,
      async send(messages, timeoutMs = 5000) {
        const list = (Array.isArray(messages) ? messages : [messages]).map((m) => ({ id: `p${++ids}`, ...m }));
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(list),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text}`);
        const replies: Msg[] = [];
        for (const m of JSON.parse(text) as Msg[]) (isReply(m) ? replies : delivered).push(m);
        return replies;
      },
      close() {},
    };
  }
  const ws = new WebSocket(url.replace(/^http/, 'ws'));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('websocket did not open within 3 s')), 3000);
    ws.once('open', () => (clearTimeout(timer), resolve()));
    ws.once('error', (err) => (clearTimeout(timer), reject(err)));
  });
  const replies: Msg[] = [];
  let closed = false;
  ws.on('close', () => (closed = true));
  ws.on('message', (data) => {
    for (const m of JSON.parse(String(data)) as Msg[]) (isReply(m) ? replies : delivered).push(m);
  });
  return {
    kind,
    delivered,
    get closed() {
      return closed;
    },
    async send(messages, timeoutMs = 5000) {
      const list = (Array.isArray(messages) ? messages : [messages]).map((m) => ({ id: `p${++ids}`, ...m }));
      if (closed) throw new Error('socket closed');
      ws.send(JSON.stringify(list));
      const want = list.map((m) => m['id'] as string);
      await waitFor(() => closed || want.every((id) => replies.some((r) => r['id'] === id)), { timeout: timeoutMs, what: `replies ${want.join(',')}`, every: 2 });
      if (!want.every((id) => replies.some((r) => r['id'] === id))) throw new Error('socket closed before the replies');
      return want.map((id) => replies.splice(replies.findIndex((r) => r['id'] === id), 1)[0] as Msg);
    },
    close() {
      ws.terminate();
    },
  };
}

export async function handshake(peer: Peer): Promise<string> {
  const [reply] = await peer.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [peer.kind] });
  assert.equal(reply?.['successful'], true, JSON.stringify(reply));
  return reply?.['clientId'] as string;
}

export function connect(peer: Peer, clientId: string, immediate = false, timeoutMs = 5000): Promise<Msg[]> {
  const message: Msg = { channel: '/meta/connect', clientId, connectionType: peer.kind };
  if (immediate) message['advice'] = { timeout: 0 };
  return peer.send(message, timeoutMs);
}

export async function subscribe(peer: Peer, clientId: string, subscription: string): Promise<void> {
  const [reply] = await peer.send({ channel: '/meta/subscribe', clientId, subscription });
  assert.equal(reply?.['successful'], true, JSON.stringify(reply));
}

/** The `data` of the deliveries on `channel`, in arrival order. */
export function dataOn(peer: Peer, channel: string): unknown[] {
  return peer.delivered.filter((m) => m['channel'] === channel).map((m) => m['data']);
}

/** Long-polling: connect until `n` deliveries arrived (bounded); WebSocket: wait for pushes. */
export async function collect(peer: Peer, clientId: string, channel: string, n: number, ms = 5000): Promise<unknown[]> {
  const end = Date.now() + ms;
  for (let i = 0; i < 200 && dataOn(peer, channel).length < n; i++) {
    if (Date.now() > end) break;
    if (peer.kind === 'long-polling') {
      const [reply] = await connect(peer, clientId, false, Math.max(100, end - Date.now()));
      assert.equal(reply?.['successful'], true, JSON.stringify(reply));
    } else {
      await sleep(10);
    }
  }
  const got = dataOn(peer, channel);
  assert.ok(got.length >= n, `${n} deliveries on ${channel}, got ${got.length}: ${JSON.stringify(got)}`);
  return got;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---------------------------------------------------------------- the cluster

let clusters = 0;

export type Cluster = [NodeProcess, NodeProcess] & { prefix: string };

/** Where the nodes find Redis: one server, or a Redis Cluster. */
export interface RedisTarget {
  /** How the nodes reach it: `redisUrl` or `redisCluster`. */
  readonly nodeOptions: Pick<NodeOptions, 'redisUrl' | 'redisCluster'>;
  /** Stop Redis (every primary of a cluster). */
  stop(): Promise<void>;
  /** Start it again, empty, where it was. */
  restart(): Promise<void>;
}

/** Two nodes on one Redis, sharing a key prefix of their own. */
export async function startCluster(redis: RedisTarget, options: Omit<NodeOptions, 'redisUrl' | 'redisCluster' | 'prefix'> = {}): Promise<Cluster> {
  const prefix = `cluster-${process.pid}-${++clusters}:`;
  const common: NodeOptions = { ...redis.nodeOptions, prefix, timeout: 2000, maxInterval: 5000, ...options };
  const nodes = await Promise.all([NodeProcess.start('A', common), NodeProcess.start('B', common)]);
  return Object.assign(nodes, { prefix });
}

/** The one node holding a connect now (bounded wait until exactly one does). */
async function holderOf(nodes: readonly NodeProcess[], ms = 3000): Promise<NodeProcess> {
  let holder: NodeProcess | undefined;
  await waitFor(
    async () => {
      const held = await Promise.all(nodes.map(async (n) => (await n.stats()).heldConnections));
      const holding = nodes.filter((_, i) => held[i] === 1);
      holder = holding.length === 1 && held.reduce((a, b) => a + b, 0) === 1 ? holding[0] : undefined;
      return holder !== undefined;
    },
    { timeout: ms, what: 'exactly one node to hold a connect', every: 20 },
  );
  return holder as NodeProcess;
}

/**
 * Register the multi-process tests against `target`: `shared` for most,
 * `fresh()` for the ones that stop Redis. `label` names the set-up.
 */
export async function multiProcessSuite(
  label: string,
  shared: () => Promise<RedisTarget>,
  fresh: () => Promise<RedisTarget>,
): Promise<void> {
  if (!findRedisServer()) {
    const message = announceRedisSkip();
    it(`Redis multi-process (${label})`, { skip: message }, () => {});
    return;
  }
  const redis = await shared();
  const balancers: TcpBalancer[] = [];
  const peers: Peer[] = [];
  const clients: BayeuxClient[] = [];
  const balance = async (nodes: readonly NodeProcess[]) => {
    const balancer = await startBalancer(nodes.map((n) => n.port), { downMs: 2000 });
    balancers.push(balancer);
    return balancer;
  };
  const peer = async (kind: Kind, url: string) => {
    const p = await openPeer(kind, url);
    peers.push(p);
    return p;
  };

  after(async () => {
    for (const client of clients) await client.disconnect().catch(() => undefined);
    for (const p of peers) p.close();
    await killAllNodes();
    for (const balancer of balancers) await balancer.close();
    await redis.stop();
  });

  describe(`${label}: two nodes on one Redis`, () => {
    let a: NodeProcess;
    let b: NodeProcess;

    it('starts two nodes', async () => {
      [a, b] = await startCluster(redis);
      assert.notEqual(a.nodeId, b.nodeId);
    });

    for (const kind of KINDS) {
      it(`publish on one node reaches a subscriber on the other (${kind})`, async () => {
        const channel = `/cross/${kind}`;
        const sub = await peer(kind, a.url);
        const subId = await handshake(sub);
        await subscribe(sub, subId, channel);
        await connect(sub, subId, true);
        // The subscriber waits on A (long-polling: a held connect; WebSocket: its socket).
        const held = connect(sub, subId).catch(() => []);

        const pub = await peer(kind, b.url);
        const pubId = await handshake(pub);
        const replies = await pub.send(range(1, 10).map((i) => ({ channel, clientId: pubId, data: i })));
        assert.deepEqual(replies.map((r) => r['successful']), range(1, 10).map(() => true));
        // A server-side publish on B, too.
        assert.equal(await b.publish(channel, 'from B'), 1);

        if (kind === 'long-polling') await held;
        const got = await collect(sub, subId, channel, 11);
        assert.deepEqual(got, [...range(1, 10), 'from B']);
        // And the other way round: a publish on A reaches B's subscriber.
        const back = await peer(kind, b.url);
        const backId = await handshake(back);
        await subscribe(back, backId, channel + '/back');
        await connect(back, backId, true);
        assert.equal(await a.publish(channel + '/back', 'from A'), 1);
        assert.deepEqual(await collect(back, backId, channel + '/back', 1), ['from A']);

        assert.equal(a.eventsOf('handshake', subId).length, 1);
        assert.equal(a.eventsOf('subscribe', subId)[0]?.detail, channel);
        assert.equal(b.eventsOf('handshake', pubId).length, 1);
        assert.equal(b.eventsOf('handshake', subId).length, 0);
      });

      it(`handshake on A, subscribe and connect on B (${kind})`, async () => {
        const channel = `/moved/${kind}`;
        const onA = await peer(kind, a.url);
        const id = await handshake(onA);
        onA.close();
        const onB = await peer(kind, b.url);
        await subscribe(onB, id, channel);
        const [first] = await connect(onB, id, true);
        assert.equal(first?.['successful'], true, JSON.stringify(first));
        const held = connect(onB, id).catch(() => []);
        if (kind === 'long-polling') {
          assert.equal((await holderOf([a, b])).name, 'B', 'B holds the connect');
        }
        assert.equal(await a.publish(channel, 'x'), 1);
        if (kind === 'long-polling') await held;
        assert.deepEqual(await collect(onB, id, channel, 1), ['x']);

        assert.equal(a.eventsOf('handshake', id).length, 1);
        assert.equal(b.eventsOf('handshake', id).length, 0);
        assert.equal(b.eventsOf('subscribe', id)[0]?.detail, channel);
        assert.equal(b.eventsOf('connect', id).length, 1);
        assert.equal(a.eventsOf('subscribe', id).length + a.eventsOf('connect', id).length, 0);
      });
    }
  });

  describe(`${label}: kill -9 of the node that holds a client`, () => {
    for (const kind of KINDS) {
      it(`messages queued while its node froze and died reach the client on the survivor, in order (${kind})`, async () => {
        const [a, b] = await startCluster(redis);
        const balancer = await balance([a, b]);
        const channel = `/queued/${kind}`;
        const client = await peer(kind, `${balancer.origin}/cometd`);
        const id = await handshake(client);
        await subscribe(client, id, channel);
        await connect(client, id, true);
        // A node answers a session's first connect on it at once; through the
        // balancer the next connect may land on the other node. Connect until
        // one is held (at most a few times).
        let pending: Promise<string> | undefined;
        let holder: NodeProcess | undefined;
        for (let i = 0; i < 5 && !holder; i++) {
          pending = connect(client, id, false, 8000).then(
            () => 'answered',
            (err: Error) => `failed: ${err.message}`,
          );
          holder = await holderOf([a, b], 1000).catch(() => undefined);
          if (!holder) assert.equal(await pending, 'answered');
        }
        assert.ok(holder && pending, 'a node holds the connect');
        const survivor = holder === a ? b : a;

        // The holder stops answering: what is published now waits in Redis.
        holder.freeze();
        await sleep(50);
        for (const i of range(1, 20)) assert.equal(await survivor.publish(channel, i), 1);
        await holder.kill();
        assert.match(await pending, /^failed/, 'the held connect died with its node');
        assert.deepEqual(dataOn(client, channel), []);

        // The client goes on through the balancer, which skips the dead node.
        const again = kind === 'websocket' ? await peer(kind, `${balancer.origin}/cometd`) : client;
        const [reply] = await connect(again, id, true);
        assert.equal(reply?.['successful'], true, JSON.stringify(reply));
        assert.deepEqual(await collect(again, id, channel, 20), range(1, 20));
        assert.equal(survivor.eventsOf('connect', id).length, 1, 'the survivor served the session');
        assert.equal(survivor.alive, true);
      });
    }
  });

  describe(`${label}: expiry`, () => {
    it('an expired session is reported once in the cluster, and is gone on both nodes', async () => {
      const [a, b] = await startCluster(redis, { timeout: 300, maxInterval: 1000 });
      const nodes = [a, b];
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) {
        const home = nodes[i % 2] as NodeProcess;
        const other = nodes[(i + 1) % 2] as NodeProcess;
        const p = await peer('long-polling', home.url);
        const id = await handshake(p);
        // Half of them connect once on the other node, then go quiet.
        if (i % 4 < 2) await connect(await peer('long-polling', other.url), id, true);
        ids.push(id);
      }
      // A control session handshakes on A and stays alive by connecting on B
      // until it disconnects, right after its last connect.
      const keeper = await peer('long-polling', b.url);
      const keeperId = await handshake(await peer('long-polling', a.url));
      let keep = true;
      let bye: Msg | undefined;
      const keeping = (async () => {
        for (let i = 0; keep && i < 200; i++) {
          const [reply] = await connect(keeper, keeperId, true);
          assert.equal(reply?.['successful'], true, `the control session stays alive: ${JSON.stringify(reply)}`);
          await sleep(100);
        }
        [bye] = await keeper.send({ channel: '/meta/disconnect', clientId: keeperId });
      })();

      const timeouts = () => [...a.eventsOf('disconnect'), ...b.eventsOf('disconnect')].filter((e) => e.detail === 'timeout');
      try {
        await waitFor(() => ids.every((id) => timeouts().some((e) => e.clientId === id)), { timeout: 6000, what: 'every session to expire' });
        await sleep(400); // time for a second report, if there were to be one
        for (const id of ids) {
          assert.equal(timeouts().filter((e) => e.clientId === id).length, 1, `one timeout for ${id}`);
        }
        assert.deepEqual(timeouts().map((e) => e.clientId).sort(), [...ids].sort(), 'no other session expired');
        // Gone on both nodes.
        for (const node of nodes) {
          const p = await peer('long-polling', node.url);
          for (const id of ids.slice(0, 3)) {
            const [reply] = await connect(p, id, true);
            assert.equal(reply?.['successful'], false);
            assert.equal(reply?.['error'], '402::session_unknown');
            assert.equal(reply?.['advice']?.['reconnect'], 'handshake');
          }
        }
      } finally {
        keep = false;
        await keeping;
      }
      // The control session ended by itself: reported once, as 'client', by the node that ended it.
      assert.equal(bye?.['successful'], true, JSON.stringify(bye));
      await b.waitForEvent((e) => e.event === 'disconnect' && e.clientId === keeperId, 2000, 'the disconnect');
      await sleep(300);
      const byes = [...a.eventsOf('disconnect', keeperId), ...b.eventsOf('disconnect', keeperId)];
      assert.deepEqual(byes.map((e) => e.detail), ['client']);
    });
  });

  describe(`${label}: Redis restarts in the middle of traffic`, () => {
    it('requests during the outage get 503::engine_unavailable with retry advice; afterwards everything works without restarting the nodes', async (t) => {
      const own = await fresh();
      t.after(() => own.stop());
      const [a, b] = await startCluster(own, { timeout: 1000, commandTimeout: 500, reconnectMaxDelay: 100 });
      const pids = [a.pid, b.pid];
      const balancer = await balance([a, b]);
      const channel = '/traffic';

      // Traffic: a BayeuxClient through the balancer, publishes alternating between the nodes.
      const got: number[] = [];
      const client = new BayeuxClient(`${balancer.origin}/cometd`, { transports: ['websocket'], retryDelay: 100, maxRetryDelay: 500, maxNetworkDelay: 2000 });
      client.on('error', () => undefined);
      clients.push(client);
      await client.subscribe<number>(channel, (n) => got.push(n));
      const firstSession = client.clientId;
      let seq = 0;
      let running = true;
      const accepted: number[] = [];
      const refused: string[] = [];
      const publishing = (async () => {
        for (let i = 0; running && i < 2000; i++) {
          const node = i % 2 === 0 ? a : b;
          const n = ++seq;
          try {
            await node.publish(channel, n, 3000);
            accepted.push(n);
          } catch (err) {
            refused.push((err as Error).message);
          }
          await sleep(20);
        }
      })();
      try {
        await waitFor(() => got.length >= 5, { timeout: 5000, what: 'traffic before the outage' });

        // A session made before the outage, to try afterwards.
        const old = await peer('long-polling', b.url);
        const oldId = await handshake(old);
        const ws = await peer('websocket', a.url);
        const wsId = await handshake(ws);

        await own.stop();
        const expect503 = (reply: Msg | undefined, what: string) => {
          assert.equal(reply?.['successful'], false, `${what}: ${JSON.stringify(reply)}`);
          assert.equal(reply?.['error'], '503::engine_unavailable', what);
          assert.equal(reply?.['advice']?.['reconnect'], 'retry', what);
          assert.ok((reply?.['advice']?.['interval'] as number) >= 1000, `${what}: interval >= 1000`);
        };
        const lpA = await peer('long-polling', a.url);
        const [hs] = await lpA.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
        expect503(hs, 'handshake on A');
        const [c] = await connect(old, oldId, true);
        expect503(c, 'connect on B');
        const [s] = await old.send({ channel: '/meta/subscribe', clientId: oldId, subscription: '/x' });
        expect503(s, 'subscribe on B');
        const [p] = await ws.send({ channel: '/other', clientId: wsId, data: 1 });
        expect503(p, 'publish over WebSocket on A');
        await assert.rejects(a.publish(channel, 'nope'), /EngineUnavailableError/);
        await waitFor(() => refused.length >= 2, { timeout: 3000, what: 'publishes to fail during the outage' });
        const receivedDuringOutage = got.length;
        await sleep(300);
        assert.equal(a.alive && b.alive, true, 'the nodes keep running');

        await own.restart();
        const restartedAt = seq;
        await waitFor(async () => (await Promise.all([a, b].map((n) => n.stats(2000).then(() => true, () => false)))).every(Boolean), { timeout: 5000, what: 'both nodes to reach Redis again', every: 50 });

        // The restarted Redis kept nothing: old sessions must handshake again.
        const [gone] = await connect(old, oldId, true);
        assert.equal(gone?.['error'], '402::session_unknown');
        // New sessions work across nodes: handshake on A, subscribe and connect on B, publish and deliver from A.
        const fresh = await peer('long-polling', a.url);
        const freshId = await handshake(fresh);
        const onB = await peer('long-polling', b.url);
        await subscribe(onB, freshId, '/after');
        await connect(onB, freshId, true);
        assert.equal(await a.publish('/after', 'published'), 1);
        assert.deepEqual(await collect(onB, freshId, '/after', 1), ['published']);
        assert.equal(await a.deliver(freshId, '/direct', 'delivered'), true);
        assert.deepEqual(await collect(onB, freshId, '/direct', 1), ['delivered']);
        // The BayeuxClient handshook again by itself and receives the traffic published since.
        await waitFor(() => got.some((n) => n > restartedAt), { timeout: 8000, what: 'the client to receive traffic after the restart' });
        assert.notEqual(client.clientId, firstSession, 'the client has a new session');
        assert.ok(receivedDuringOutage >= 5);
        const before = got.filter((n) => n <= restartedAt);
        assert.deepEqual(before, [...before].sort((x, y) => x - y), 'in order');
        const afterRestart = got.filter((n) => n > restartedAt);
        assert.deepEqual(afterRestart, [...afterRestart].sort((x, y) => x - y), 'in order');
        t.diagnostic(`publishes accepted ${accepted.length}, refused during the outage ${refused.length}; client received ${got.length}`);
      } finally {
        running = false;
        await publishing;
      }
      assert.ok(refused.every((m) => /EngineUnavailableError/.test(m)), refused.join('\n'));
      assert.deepEqual([a.alive, b.alive, a.pid, b.pid], [true, true, pids[0], pids[1]], 'the same node processes throughout');
    });
  });

  describe(`${label}: ack extension across the death of a node (issue 6)`, () => {
    for (const kind of KINDS) {
      it(`kill -9 of the node holding the connect while publishing: every message arrives once, in order (${kind})`, async (t) => {
        const cluster = await startCluster(redis, { timeout: 2000, maxInterval: 5000 });
        const [a, b] = cluster;
        const balancer = await balance([a, b]);
        const channel = `/acked/${kind}`;
        const got: number[] = [];
        const raw: number[] = [];
        let failures = 0;
        const client = new BayeuxClient(`${balancer.origin}/cometd`, {
          transports: [kind],
          retryDelay: 50,
          maxRetryDelay: 300,
          maxNetworkDelay: 3000,
          // Sees every delivery before the ack tracker drops copies.
          extensions: [{
            incoming(message: BayeuxMessage) {
              if (message.channel === channel) raw.push(message.data as number);
              return message;
            },
          }],
        });
        clients.push(client);
        client.on('error', () => undefined);
        client.on('disconnected', (event) => {
          if (event.reason === 'network') failures++;
        });
        await client.subscribe<number>(channel, (n) => got.push(n));
        assert.equal(client.ackEnabled, true, 'the server offered acks');
        const session = client.clientId;

        const victim = await holderOf([a, b]);
        const survivor = victim === a ? b : a;
        const N = 150;
        const KILL_AT = 50;
        let killed: Promise<void> | undefined;
        for (const i of range(1, N)) {
          assert.equal(await survivor.publish(channel, i), 1, `message ${i} accepted`);
          if (i === KILL_AT) {
            // Right after a publish: the victim may be between taking a batch and writing it.
            killed = victim.kill();
          }
          await sleep(3);
        }
        await killed;
        await waitFor(() => got.length >= N, { timeout: 10_000, what: `all ${N} messages (got ${got.length})` });
        await sleep(200);
        assert.deepEqual(got, range(1, N), 'each message once, in order');
        // On the wire, copies may come again (where an ack was lost), but never out of order.
        const firsts = raw.filter((n, i) => !raw.slice(0, i).includes(n));
        assert.deepEqual(firsts, range(1, N));
        // A socket is on the victim when it dies. A long-poll client between two connects (it is
        // handling a reply, likely on a loaded machine) sends the next one to the survivor without a failure.
        if (kind === 'websocket') assert.ok(failures >= 1, 'the client lost its connection when its node died');
        assert.equal(client.clientId, session, 'the same session went on, on the survivor');
        assert.ok(victim.eventsOf('connect', session).length >= 1, 'the victim served the session first');
        assert.ok(survivor.eventsOf('connect', session).length === 1, 'the survivor served the session');
        t.diagnostic(
          `${kind}: ${raw.length - N} redelivered copies dropped by the client; ${failures} network failure(s)`,
        );
      });
    }
  });
}
