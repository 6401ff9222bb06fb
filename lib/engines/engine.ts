/**
 * The storage contract between the protocol Server and a session store.
 *
 * An engine stores sessions, their subscriptions and their message queues,
 * expires sessions, and tells the node that holds a session's connection
 * that messages are waiting. It never sees a request, a socket or a Bayeux
 * message object: messages reach it as pre-serialized JSON strings, so a
 * networked engine (Redis) can store them as they are and a published
 * message is serialized once however many sessions receive it.
 *
 * Every operation is async so a networked engine fits the same interface.
 * An operation that fails because the store is out of reach rejects with
 * {@link EngineUnavailableError}; any other rejection is a bug.
 * One test suite (`test/engine-suite.ts`) runs against every engine.
 */

/** What the Server gives an engine to call back into. */
export interface EngineHost {
  /**
   * Messages are waiting for these sessions. Called on the node that last
   * held each session's connection (see {@link Engine.touch}); a node that
   * has no connection for a session ignores the call, and the messages wait
   * in the queue for the session's next connect.
   *
   * The host coalesces: call it as messages arrive (once per publish, or
   * per message), with the same ids as often as you like; the Server
   * gathers the wakes of a tick and flushes each session once, after the
   * tick. It only records the ids, so it may be called from inside any
   * engine operation: it never calls back into the engine synchronously.
   */
  wake(clientIds: readonly string[]): void;
  /**
   * The engine ended a session because it was not touched in time. Called
   * once per cluster for each expired session, on one node.
   */
  expired(clientId: string): void;
}

/**
 * Where an engine reports trouble it recovers from by itself (a lost
 * connection, its return). A winston logger fits.
 */
export interface EngineLogger {
  warn(message: string): unknown;
  info?(message: string): unknown;
}

/**
 * An operation failed because the engine's store cannot be reached right
 * now (for RedisEngine: the connection to Redis is down, or Redis did not
 * answer in time). The operation may or may not have taken effect. Nothing
 * is wrong with the request: the Server should answer it with a Bayeux
 * error and `advice: { reconnect: 'retry' }` so the client tries again
 * later. Its message never contains credentials.
 */
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError';
  /** Stable, machine-readable: `engine.unavailable`. */
  readonly type = 'engine.unavailable';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A per-session limit was reached: {@link Engine.subscribe} beyond
 * `maxSubscriptions`, or {@link Engine.setSessionData} beyond
 * `maxSessionDataBytes`. Nothing was changed. The Server answers it with a
 * Bayeux error naming the limit.
 */
export class EngineLimitError extends Error {
  override name = 'EngineLimitError';
  /** Stable, machine-readable: `engine.limit`. */
  readonly type = 'engine.limit';
  /** Which limit: the EngineConfig field's name. */
  readonly limit: 'maxSubscriptions' | 'maxSessionDataBytes';

  constructor(limit: 'maxSubscriptions' | 'maxSessionDataBytes', message: string) {
    super(message);
    this.limit = limit;
  }
}

/** Settings the Server passes to {@link Engine.open}. */
export interface EngineConfig {
  /**
   * Most messages a session may have waiting, counting unacknowledged ones.
   * When a message would exceed it, the oldest waiting message is dropped
   * and counted in {@link TakeResult.dropped}.
   */
  maxQueue: number;
  /**
   * Most characters (the `length` of the JSON texts; bytes for ASCII) a
   * session may have waiting, counting unacknowledged ones. Enforced like
   * `maxQueue`: the oldest waiting messages are dropped and counted in
   * {@link TakeResult.dropped}. A single message longer than the bound is
   * still kept when it is the only one waiting (it is at most the Server's
   * `maxMessageBytes`).
   */
  maxQueueBytes: number;
  /**
   * Most subscriptions one session may hold. {@link Engine.subscribe} of a
   * new pattern beyond it rejects with {@link EngineLimitError} and changes
   * nothing; re-subscribing to a pattern the session holds is not counted.
   */
  maxSubscriptions: number;
  /**
   * Most characters of per-session data (keys plus JSON values) one session
   * may hold; {@link Engine.setSessionData} beyond it rejects with
   * {@link EngineLimitError} and changes nothing.
   */
  maxSessionDataBytes: number;
  /** How often, in ms, the engine looks for expired sessions. */
  sweepInterval: number;
  /**
   * Where to report connection trouble. Optional; an engine with a logger
   * of its own (an option) uses that first.
   */
  logger?: EngineLogger;
}

/** Options fixed when a session is created. */
export interface SessionOptions {
  /**
   * The session uses the CometD ack extension: {@link Engine.take} keeps
   * what it returns until a later take acknowledges its batch.
   */
  ack: boolean;
  /** Time to live in ms before the first {@link Engine.touch}. */
  ttl: number;
  /**
   * Per-session data to start with (key → JSON text), as set by handshake
   * middleware before the session existed. Counted against
   * `maxSessionDataBytes` (the Server checks it before calling).
   */
  data?: ReadonlyMap<string, string>;
}

/** Options of one {@link Engine.publish}. */
export interface PublishOptions {
  /**
   * Sessions that must not get this message, though subscribed (the
   * Server's `except` and `broadcastToPublisher: false`). They are not
   * counted in the result.
   */
  except?: readonly string[];
  /**
   * Whether the result must count a session subscribed to several of the
   * patterns once (default true). With `false` an engine may resolve to
   * an upper bound (the sum over patterns) and save reading who
   * subscribed: the Server passes it for clients' publishes, whose reply
   * carries no count.
   */
  count?: boolean;
}

/** What {@link Engine.take} returns for a known session. */
export interface TakeResult {
  /** The waiting messages, oldest first, as JSON texts. */
  messages: string[];
  /**
   * For an acked session, the batch number of this take: the client
   * acknowledges it by sending it back as `ext.ack` on its next connect.
   * Undefined for a session without acks.
   */
  batch?: number;
  /** Messages dropped from this session's queue by `maxQueue` since the last take. */
  dropped: number;
}

/** One node of a cluster, as a shared engine reports it (see {@link Engine.nodes}). */
export interface EngineNode {
  /** The engine instance's random id. */
  id: string;
  hostname: string;
  pid: number;
  /** Seconds since the node's process started. */
  uptime: number;
  /** Resident memory in bytes. */
  rss: number;
  /** Sessions whose connections the node holds. */
  sessions: number;
  /** When the node last reported, ms since the epoch. */
  seen: number;
}

/** What an engine's store lost while this node watched (`Engine.dataLoss`). */
export interface EngineDataLoss {
  /** How many times this node found its store (or one Cluster primary) without its data. */
  readonly count: number;
  /** The latest: when (ms since the epoch), where (`host:port`, '' for one Redis), and how many subscriptions this node put back (0 when another node did). */
  readonly last: { readonly at: number; readonly where: string; readonly restored: number } | undefined;
}

/** Counts for `stats()`. */
export interface EngineStats {
  sessions: number;
  subscriptions: number;
}

export interface Engine {
  /**
   * Called once by the Server before any other call. A networked engine
   * rejects with {@link EngineUnavailableError} when it cannot reach its
   * store in time.
   */
  open(host: EngineHost, config: EngineConfig): Promise<void>;
  /** Stop timers, drop connections; the engine is not used afterwards. */
  close(): Promise<void>;

  /** Create a session and return its id: unguessable, URL-safe, at least 128 bits of randomness. */
  createSession(options: SessionOptions): Promise<string>;
  /**
   * Whether `clientId` has the form of an id this engine issues (its form
   * only, not whether the session is live). Optional: the Server checks
   * every client-sent `clientId` with it before any other call, so no
   * client-chosen string reaches the engine's keys; without it the Server
   * accepts 22 to 128 characters of `A-Z a-z 0-9 . _ ~ -`. Synchronous,
   * cheap, and must not throw: it runs on every message with a clientId.
   */
  isClientId?(clientId: string): boolean;
  /**
   * Optional: what this node found its store lost (a Redis restarted
   * empty), for health checks and alerts. `/health` reports it.
   */
  readonly dataLoss?: EngineDataLoss;
  /** Whether the session exists and has not expired. */
  exists(clientId: string): Promise<boolean>;
  /**
   * Keep the session alive for `ttl` ms from now, and make this node the
   * one that {@link EngineHost.wake} is called on for it. Returns false
   * for an unknown or expired session.
   */
  touch(clientId: string, ttl: number): Promise<boolean>;
  /**
   * End a session: its subscriptions, queue and data go with it. False if
   * it did not exist. The node that holds the session's connection (any
   * node of a cluster) is woken for it, so a held connect or an open
   * socket learns at once that the session is gone (its take resolves to
   * null).
   */
  destroy(clientId: string): Promise<boolean>;

  /**
   * Subscribe a session to a channel or pattern. False for an unknown
   * session. Rejects with {@link EngineLimitError} when the session already
   * holds `maxSubscriptions` other patterns. Works from any node.
   */
  subscribe(clientId: string, pattern: string): Promise<boolean>;
  /** Remove one subscription. False for an unknown session. */
  unsubscribe(clientId: string, pattern: string): Promise<boolean>;
  /** The session's subscriptions (empty for an unknown session). */
  subscriptions(clientId: string): Promise<string[]>;
  /**
   * The live sessions subscribed to exactly `pattern` (a channel or a
   * wildcard pattern, compared as text: `/a/*` subscribers are not listed
   * for `/a/b`), cluster-wide, in no particular order.
   */
  subscribers(pattern: string): Promise<string[]>;

  /**
   * One value of the session's data (a JSON text), undefined when the key
   * is not set, null for an unknown session.
   */
  getSessionData(clientId: string, key: string): Promise<string | undefined | null>;
  /**
   * Set (a JSON text) or, with `undefined`, delete one key of the
   * session's data. False for an unknown session. Rejects with
   * {@link EngineLimitError} when the session's data would exceed
   * `maxSessionDataBytes` (keys plus values), changing nothing.
   */
  setSessionData(clientId: string, key: string, value: string | undefined): Promise<boolean>;
  /** All of the session's data (key → JSON text); null for an unknown session. */
  allSessionData(clientId: string): Promise<Map<string, string> | null>;

  /**
   * Queue `message` once for every session subscribed to any of `patterns`
   * (the channel's expansion: `/a/b`, `/a/*`, `/a/**`, `/**`), even when a
   * session matches several of them, and wake the nodes that hold those
   * sessions. Resolves to the number of sessions it was queued for.
   */
  publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number>;
  /** Queue `message` for one session and wake its node. False for an unknown session. */
  deliver(clientId: string, message: string): Promise<boolean>;
  /**
   * Take the session's waiting messages. For a session without acks they
   * are removed. For an acked session, `ack` is the last batch the client
   * received: messages sent in that batch or earlier are dropped, and every
   * message still unacknowledged is returned again, in order, after which
   * all of them belong to the new batch returned in the result. Resolves to
   * null for an unknown session.
   */
  take(clientId: string, ack?: number): Promise<TakeResult | null>;

  /**
   * Optional: {@link take} for several sessions without acks at once, in
   * one round trip for a networked engine. Resolves to what `take(id)`
   * would for each id, in the same order (null for an unknown session).
   * The Server uses it to flush every WebSocket woken in one tick.
   */
  takeMany?(clientIds: readonly string[]): Promise<Array<TakeResult | null>>;

  stats(): Promise<EngineStats>;

  /**
   * Optional, for engines shared by several nodes: the nodes that reported
   * in the last few seconds (this one included). The admin page lists them.
   */
  nodes?(): Promise<EngineNode[]>;
}
