/** RedisEngine's options: types, defaults, validation. */
import type { EngineLogger } from '../engine.js';

/** A Pub/Sub message listener, as node-redis calls it. */
type PubSubListener = (message: string, channel: string) => unknown;

/** What the engine uses of both a node-redis client (v5 or v6) and a cluster client. */
interface RedisConnectionLike {
  readonly isOpen: boolean;
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: PubSubListener): Promise<void>;
  sSubscribe(channel: string, listener: PubSubListener): Promise<void>;
  sUnsubscribe(channel: string): Promise<void>;
  /** Used for `error` and `ready`. */
  on(event: string, listener: (err: Error) => void): unknown;
  off(event: string, listener: (err: Error) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

/**
 * The parts of a node-redis (`redis` v5 or v6) client the engine uses. A client
 * from `createClient()` fits.
 */
export interface RedisClientLike extends RedisConnectionLike {
  readonly isReady: boolean;
  sendCommand(args: readonly string[], options?: { timeout?: number }): Promise<unknown>;
  duplicate(): RedisClientLike;
}

/** The parts of a node-redis v5 or v6 cluster client (`createCluster()`) the engine uses. */
export interface RedisClusterLike extends RedisConnectionLike {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: readonly string[]): Promise<unknown>;
  /** The primaries, as the client knows them now. */
  readonly masters: ReadonlyArray<{ readonly address: string }>;
  /** The primary serving a slot. */
  getSlotMaster(slot: number): { readonly address: string } | undefined;
}

/** Where the engine finds Redis: a URL, a client you made, or a Redis Cluster. */
export type RedisEngineSource =
  | {
      /**
       * `redis[s]://[[user][:password]@]host[:port][/db]`. The engine makes
       * and owns the client (and closes it), with an offline queue turned
       * off so that operations fail fast during an outage. The password is
       * never logged or put in an error message.
       */
      url: string;
    }
  | {
      /**
       * A node-redis v5 or v6 client (RESP2 or RESP3). It stays yours: the engine connects it if
       * it is not open, listens to its `error` events while the engine is
       * open, and never closes it. The engine opens one more connection,
       * `client.duplicate()`, for Pub/Sub, and closes that one.
       */
      client: RedisClientLike;
    }
  | {
      /**
       * Redis Cluster: node-redis `createCluster()` options, at least
       * `rootNodes: [{ url }]`. The engine makes and owns the cluster
       * client. Needs Redis 7 (sharded Pub/Sub).
       */
      cluster: { rootNodes: ReadonlyArray<{ url: string }>; [option: string]: unknown };
    };

/** See {@link RedisEngineOptions.channelLogs}. */
export type ChannelLogs = 'pattern' | 'shard';

export interface RedisEngineOptions {
  /**
   * Prepended to every key and Pub/Sub channel, so several applications (or
   * test runs) can share one Redis. Non-empty. A prefix with a hash tag
   * (`app{1}:`) puts every key in one slot: fine on one Redis, but it
   * forgoes the spread over a Redis Cluster.
   * @default 'bayeux:'
   */
  prefix?: string;
  /**
   * How long `open()` waits for the first connection to Redis, in ms,
   * before it rejects with `EngineUnavailableError`.
   * @default 10000
   */
  openTimeout?: number;
  /**
   * How long one operation waits for Redis's answer, in ms, before it
   * rejects with `EngineUnavailableError`. One timer per engine checks
   * every quarter of this (at most every 250 ms). Time is counted in
   * ticks, so a blocked event loop does not time out answers that arrived
   * meanwhile. Once one has timed out, operations fail at once until Redis
   * answers again. `0` waits as long as the connection lasts.
   * @default 5000
   */
  commandTimeout?: number;
  /**
   * Longest pause between two reconnection attempts, in ms, for the client
   * the engine makes from a `url`. Attempts start 50 ms apart and double up
   * to this, with up to 10% jitter.
   * @default 2000
   */
  reconnectMaxDelay?: number;
  /**
   * Most expired sessions one sweep script removes from one bucket; a sweep
   * runs the script again (at most 100 times) while it keeps finding this many.
   * @default 1000
   */
  sweepBatch?: number;
  /**
   * Most entries a pattern's log keeps (trimmed approximately, `MAXLEN ~`),
   * when the Server's `maxQueue` is not smaller. A session that falls
   * further behind than the log reaches loses the oldest messages.
   * @default 10000
   */
  logLength?: number;
  /**
   * Most bytes a pattern's log holds: its messages, publish ids and except
   * lists, plus 100 bytes per entry. Once over, the oldest entries are
   * trimmed (exactly, the newest always stays), as for `logLength`: a
   * session that falls further behind loses the oldest messages. Never
   * more than the Server's `maxQueueBytes` when that is smaller: a session
   * holds no more than that anyway. With `maxSubscriptions` patterns per
   * session, a client can make Redis hold at most about
   * `maxSubscriptions × maxLogBytes` through logs.
   * @default 4194304 (4 MiB)
   */
  maxLogBytes?: number;
  /**
   * Longest time, in ms, a pattern's log keeps an entry (trimmed exactly,
   * by Redis's clock, at each publish to it); every key of the log also
   * expires between this long and 1.5 times this long after its last
   * publish (the expiry is renewed once per half retention, not at every
   * publish). At least the longest time a
   * session may go without connecting (the Server's `timeout` plus
   * `maxInterval`): the engine raises it to the longest `ttl` it is given.
   * @default 60000
   */
  logRetention?: number;
  /**
   * How often, in ms, a node writes to Redis the positions of the sessions
   * it pushed to over WebSocket (sessions without acks), in scripts of up
   * to 100 sessions, instead of one write per push. A session whose socket
   * closes has them written at once, so a client that reconnects through
   * another node gets nothing twice; a session that moves without its
   * socket closing here first (its node killed, a network cut) may get
   * again what it was pushed since the last write. Takes of long-polling
   * connects, and of acked sessions, write at once. Lower bounds those
   * duplicates tighter, at about 4 µs of Redis CPU per pushed session and
   * write (before issue #23 the default was 100). With `channelLogs:
   * 'shard'`, a session that keeps up is written once, not per flush: the
   * node writes one position per flush that stands for all of them.
   * @default 1000
   */
  positionFlush?: number;
  /**
   * With `channelLogs: 'shard'`: most bytes the shard's log holds, every
   * channel's publishes together (their messages, publish ids and except
   * lists, plus 100 bytes per tick's entry). Once over, the oldest
   * entries are trimmed (exactly; the newest always stays): a session
   * that falls further behind (its node died, its connection was gone
   * for long) loses the oldest messages. It bounds what publishes can
   * make Redis hold through the shard, as `maxLogBytes` does per pattern.
   * At least 1024.
   * @default 67108864 (64 MiB)
   */
  maxShardLogBytes?: number;
  /**
   * Where a publish to a channel (a name without `*`) is logged.
   * `'pattern'`: in the channel's own log, as every pattern is: a script
   * reads the channel's subscriber set and writes its log, index and
   * counters per publish. `'shard'`: in one log shared by every channel
   * (a shard), one stream entry per tick of publishes, announced once;
   * wildcard patterns keep their own logs. Much less Redis work per
   * publish on small channels; every node that holds a session on some
   * channel receives every channel publish and keeps what its sessions
   * follow. A publish with `count: false` (every client publish) then
   * resolves to 0 instead of a count. Every node and `RedisPublisher` of
   * a deployment must use the same value: the two lay keys out
   * differently, and sessions do not survive a switch (change `prefix`
   * with it). Not yet on a Redis Cluster (`open()` refuses).
   * @default 'pattern'
   */
  channelLogs?: ChannelLogs;
  /**
   * Where connection trouble is reported (lost, restored; once each per
   * outage). A winston logger fits.
   * @default the Server's logger (`EngineConfig.logger`), or else `console.warn`
   */
  logger?: EngineLogger;
}

export interface ResolvedOptions {
  readonly prefix: string;
  readonly openTimeout: number;
  readonly commandTimeout: number;
  readonly reconnectMaxDelay: number;
  readonly sweepBatch: number;
  readonly logLength: number;
  readonly maxLogBytes: number;
  readonly logRetention: number;
  readonly positionFlush: number;
  readonly channelLogs: ChannelLogs;
  readonly maxShardLogBytes: number;
  readonly logger: EngineLogger | undefined;
}

const OPTION_NAMES = new Set(['prefix', 'openTimeout', 'commandTimeout', 'reconnectMaxDelay', 'sweepBatch', 'logLength', 'maxLogBytes', 'logRetention', 'positionFlush', 'channelLogs', 'maxShardLogBytes', 'logger']);

function checkNumber(name: string, value: unknown, min: number, what = 'RedisEngine'): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`${what} option ${name} must be a finite number >= ${min}`);
  }
  return value;
}

/**
 * Validate the options once; a bad or unknown one throws a TypeError naming
 * it. `what` names the class in the messages (`RedisPublisher` takes some
 * of the same options, `known` says which).
 */
export function resolveOptions(options: RedisEngineOptions, what = 'RedisEngine', known: ReadonlySet<string> = OPTION_NAMES): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${what} options must be an object`);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`${what}: unknown option ${key}`);
  }
  const prefix = options.prefix ?? 'bayeux:';
  if (typeof prefix !== 'string' || prefix === '') {
    throw new TypeError(`${what} option prefix must be a non-empty string`);
  }
  if (options.logger !== undefined && typeof options.logger?.warn !== 'function') {
    throw new TypeError(`${what} option logger must have a warn(message) method`);
  }
  const channelLogs = options.channelLogs ?? 'pattern';
  if (channelLogs !== 'pattern' && channelLogs !== 'shard') {
    throw new TypeError(`${what} option channelLogs must be 'pattern' or 'shard'`);
  }
  return {
    prefix,
    channelLogs,
    openTimeout: checkNumber('openTimeout', options.openTimeout, 1, what) ?? 10_000,
    commandTimeout: checkNumber('commandTimeout', options.commandTimeout, 0, what) ?? 5000,
    reconnectMaxDelay: checkNumber('reconnectMaxDelay', options.reconnectMaxDelay, 1, what) ?? 2000,
    sweepBatch: Math.floor(checkNumber('sweepBatch', options.sweepBatch, 1, what) ?? 1000),
    logLength: Math.floor(checkNumber('logLength', options.logLength, 1, what) ?? 10_000),
    maxLogBytes: Math.floor(checkNumber('maxLogBytes', options.maxLogBytes, 1024, what) ?? 4 * 1_048_576),
    logRetention: checkNumber('logRetention', options.logRetention, 1, what) ?? 60_000,
    positionFlush: checkNumber('positionFlush', options.positionFlush, 1, what) ?? 1000,
    maxShardLogBytes: Math.floor(checkNumber('maxShardLogBytes', options.maxShardLogBytes, 1024, what) ?? 64 * 1_048_576),
    logger: options.logger,
  };
}

/** `channelLogs: 'shard'` is not built for a Redis Cluster yet: refused at construction, with what to do. */
export function checkChannelLogs(source: RedisEngineSource, options: ResolvedOptions, what: string): void {
  if (options.channelLogs === 'shard' && source !== null && typeof source === 'object' && 'cluster' in source) {
    throw new TypeError(`${what} option channelLogs: 'shard' is not supported on a Redis Cluster yet: leave it 'pattern' (the default)`);
  }
}
