/**
 * One server under test with long-polling subscribers on it, for the burst
 * and held scenarios: the server in its own process, a publisher session,
 * the subscribers in load-client processes, heap measured before and after
 * they joined, and completion of each published batch tracked with the
 * time its last delivery arrived.
 */
import { sleep, usesRedis, type ServerKind, type TransportKind } from './common.js';
import { waitForQuiet } from './machine.js';
import { LoadClients, ServerProcess } from './procs.js';
import { Publisher } from './publisher.js';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';

export interface RigOptions {
  kind: ServerKind;
  transport: TransportKind;
  subscribers: number;
  /** Messages per published batch: a batch is done when every subscriber has them all. */
  batch: number;
  clients: number;
  payload: number;
  setupTimeoutMs: number;
  profileDir?: string;
  /** Names the CPU profile. */
  tag: string;
  /** Write heap snapshots `<prefix>-without.heapsnapshot` and `<prefix>-with.heapsnapshot` (after the heap figures are taken). */
  snapshot?: string;
}

type DoneMap = Map<number, { count: number; at: number }>;

export class Rig {
  readonly server: ServerProcess;
  readonly clients: LoadClients;
  readonly publisher: Publisher;
  /** Heap (after GC) with the subscribers minus without, per subscriber, KiB. */
  readonly heapKiBPerSub: number;
  readonly rssKiBPerSub: number;
  /** seq → load-client processes done with it, and the latest arrival time among them (µs). */
  readonly #done: Map<number, { count: number; at: number }>;
  /** bayeux-redis, bayeux-redis-shard: its own throw-away redis-server. */
  readonly #redis: RedisServer | undefined;

  private constructor(server: ServerProcess, clients: LoadClients, publisher: Publisher, heap: number, rss: number, done: DoneMap, redis: RedisServer | undefined) {
    this.#redis = redis;
    this.server = server;
    this.clients = clients;
    this.publisher = publisher;
    this.heapKiBPerSub = heap;
    this.rssKiBPerSub = rss;
    this.#done = done;
  }

  static async up(o: RigOptions): Promise<Rig> {
    await waitForQuiet();
    const redis = usesRedis(o.kind) ? await startRedisServer() : undefined;
    let server: ServerProcess;
    try {
      server = await ServerProcess.start(o.kind, o.profileDir, o.tag, redis ? [redis.url] : []);
    } catch (err) {
      await redis?.stop();
      throw err;
    }
    try {
      const publisher = await Publisher.open({ transport: o.transport, port: server.port, path: server.path }, o.payload);
      publisher.batch(o.batch); // warm the publish path with nobody subscribed
      await sleep(300);
      const before = await server.heap();
      if (o.snapshot) await server.snapshot(`${o.snapshot}-without.heapsnapshot`);
      const done: DoneMap = new Map();
      const clients = await LoadClients.start(
        o.clients,
        {
          server: o.kind,
          transport: o.transport,
          port: server.port,
          path: server.path,
          subscribers: o.subscribers,
          batch: o.batch,
          setupTimeoutMs: o.setupTimeoutMs,
          lifetimeMs: 10 * 60_000,
        },
        (seq, at) => {
          const entry = done.get(seq) ?? { count: 0, at: 0 };
          entry.count++;
          entry.at = Math.max(entry.at, at);
          done.set(seq, entry);
        },
      );
      if (clients.failed > 0) console.error(`  ${clients.failed} of ${o.subscribers} subscribers failed to set up`);
      const rig = new Rig(server, clients, publisher, NaN, NaN, done, redis);
      await rig.settle(20_000);
      const after = await server.heap();
      if (o.snapshot) {
        await server.snapshot(`${o.snapshot}-with.heapsnapshot`);
        console.log(`  heap snapshots: ${o.snapshot}-without.heapsnapshot, ${o.snapshot}-with.heapsnapshot (${clients.subscribers} subscribers)`);
        await rig.settle(15_000);
      }
      return Object.assign(rig, {
        heapKiBPerSub: (after.heapUsed - before.heapUsed) / 1024 / clients.subscribers,
        rssKiBPerSub: (after.rss - before.rss) / 1024 / clients.subscribers,
      });
    } catch (err) {
      server.kill();
      await redis?.stop();
      throw err;
    }
  }

  /**
   * Wait (bounded) until every long-polling subscriber has a connect in
   * flight again, then a little longer for the server to take them all in.
   */
  async settle(limitMs: number): Promise<{ sessions: number; connecting: number }> {
    const deadline = Date.now() + limitMs;
    let status = await this.clients.status();
    while (status.connecting < status.sessions && Date.now() < deadline) {
      await sleep(200);
      status = await this.clients.status();
    }
    await sleep(500);
    if (status.connecting < status.sessions) console.error(`  only ${status.connecting} of ${status.sessions} connects in flight`);
    return status;
  }

  /** Wait (bounded) until every load-client process has all of batches `from..to`; the latest arrival (µs), or NaN on timeout. */
  async complete(from: number, to: number, limitMs: number): Promise<number> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      let at = 0;
      let all = true;
      for (let seq = from; seq <= to; seq++) {
        const e = this.#done.get(seq);
        if (!e || e.count < this.clients.count) {
          all = false;
          break;
        }
        at = Math.max(at, e.at);
      }
      if (all) return at;
      if (Date.now() > deadline) return NaN;
      await sleep(5);
    }
  }

  async down(): Promise<void> {
    this.publisher.close();
    await this.clients.exit();
    await this.server.stop();
    await this.#redis?.stop();
  }
}
