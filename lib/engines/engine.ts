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
  /**
   * A user's presence on a channel changed (engines with
   * {@link Engine.presence}): called once per cluster for each change, on
   * the node whose call made it: the subscribe that added a user's first
   * session to the channel (`join`), the unsubscribe, destroy or expiry
   * that removed the user's last one (`leave`). An anonymous session
   * joins and leaves by itself. A second session of the same user is no
   * change. Like {@link wake}, it only records and never calls back into
   * the engine synchronously.
   */
  presence?(change: PresenceChange): void;
}

/**
 * Who a session is on a presence channel: the user it belongs to (none:
 * anonymous) and the JSON text of what the application shows of them.
 * An id is 1 to {@link MAX_USER_LENGTH} characters with no control
 * characters, so an engine may use it in a key or separate it with a
 * newline.
 */
export interface PresenceMember {
  user?: string;
  /** JSON text; only with a user. */
  info?: string;
}

/** Longest user id the Server accepts from `identify`. */
export const MAX_USER_LENGTH = 256;

/** What {@link EngineHost.presence} reports. */
export interface PresenceChange extends PresenceMember {
  type: 'join' | 'leave';
  channel: string;
  /** The session whose subscribe or end made the change. */
  clientId: string;
  /**
   * The channel's presence version after this change: it goes up by one
   * with each join or leave on the channel, cluster-wide, so a change
   * reported on one node and a later one reported on another can be put
   * back in order; it may start again from 1 once no one is present.
   */
  version: number;
}

/** One session present on a channel, as {@link Engine.presence} lists it. */
export interface PresenceEntry extends PresenceMember {
  clientId: string;
}

/** What {@link Engine.presenceCount} counts. */
export interface PresenceCount {
  /** Distinct users, each anonymous session counted as one. */
  users: number;
  /** Sessions. */
  clients: number;
}

/** What {@link Engine.presenceCount} reads: the counts and the channel's presence version (0: no one present). */
export interface PresenceState extends PresenceCount {
  version: number;
}

/** Options of one {@link Engine.subscribe}. */
export interface SubscribeOptions {
  /**
   * Record the session as present on the channel (a channel, never a
   * wildcard, that keeps presence): the engine reports a `join` when it is
   * the user's first session there, and removes it (reporting a `leave`
   * for the user's last) when the session unsubscribes, is destroyed or
   * expires. Only given to engines with {@link Engine.presence}.
   */
  presence?: PresenceMember;
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

/**
 * {@link Engine.publish} was given {@link PublishOptions.publisher}, and
 * that session does not exist or has expired (it may have been ended on
 * another node a moment before): nothing was published. The Server
 * answers the publish as any message of an unknown session (402, advice
 * to handshake again).
 */
export class UnknownPublisherError extends Error {
  override name = 'UnknownPublisherError';
  /** Stable, machine-readable: `engine.unknown_publisher`. */
  readonly type = 'engine.unknown_publisher';

  constructor(clientId: string) {
    super(`the publishing session ${clientId.slice(0, 4)}… does not exist`);
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
   * Most characters of channel history the engine keeps (the Server's
   * `maxHistoryBytes`): for MemoryEngine in total, for an engine shared
   * by several nodes per channel. Undefined: the engine's own default.
   * Only engines with {@link Engine.recover} and {@link Engine.history}
   * read it.
   */
  maxHistoryBytes?: number;
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
   * The user the session belongs to (the Server's `identify`), for
   * {@link Engine.userSessions}. Only given to engines with presence.
   */
  user?: string;
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
   * Whether the result must be the number of sessions the message was
   * queued for, a session subscribed to several of the patterns counted
   * once (default true). With `false` the result is no count: an engine
   * may resolve to an upper bound (the sum over patterns) or to 0
   * (RedisEngine with `channelLogs: 'shard'`), and save reading who
   * subscribed: the Server passes it for clients' publishes, whose reply
   * carries no count.
   */
  count?: boolean;
  /**
   * The channel keeps history (it matches a pattern of the Server's
   * `history` option): the engine gives the message the channel's next
   * position, keeps it in the channel's history and delivers it with its
   * position spliced in (see {@link HistoryPublish}). Only given to engines
   * with {@link Engine.recover} and {@link Engine.history}.
   */
  history?: HistoryPublish;
  /**
   * The session that publishes (a client's publish). Given only to
   * engines whose {@link Engine.checksPublisher} is true, in place of an
   * {@link Engine.exists} call before the publish: the engine publishes
   * only if this session exists and has not expired, checked with the
   * publish itself (so a session ended on another node a moment before is
   * refused), and otherwise queues nothing and rejects with
   * {@link UnknownPublisherError}.
   */
  publisher?: string;
}

/**
 * A place in one channel's history. `offset` goes up by one per message
 * published to the channel (the first is 1; 0 is "before any message");
 * `epoch` changes whenever the channel's offsets were lost (a new
 * MemoryEngine, Redis data lost, the channel's position forgotten under
 * a memory bound), so offsets are compared only within one epoch. An
 * engine that drops an idle channel's messages but remembers its offset
 * keeps the epoch: recoveries compare with the oldest offset kept.
 */
export interface HistoryPosition {
  /**
   * Opaque; at most {@link MAX_EPOCH_LENGTH} characters of
   * `A-Z a-z 0-9 . _ ~ -`, so it goes into JSON text without escaping.
   */
  epoch: string;
  /** A non-negative safe integer. */
  offset: number;
}

/** Longest epoch an engine may issue (and the Server accepts from clients). */
export const MAX_EPOCH_LENGTH = 64;

/** How a channel's history is kept: its pattern's `size` and `ttl` in the `history` option. */
export interface HistorySettings {
  /** Most messages kept for the channel. */
  size: number;
  /** How long, in ms, a message is kept; a channel with no publish for this long keeps nothing. */
  ttl: number;
}

/**
 * What {@link PublishOptions.history} tells the engine. The Server
 * serializes the copy once, with the place of the position marked: the
 * position goes `tail` characters before the end of the message text.
 * Those last `tail` characters are ASCII (today always `}}`: the Server
 * writes `ext` as the copy's last field and `position` as the last field
 * of `ext`), so `tail` counts bytes as well as UTF-16 units, and an engine
 * splices without measuring the text:
 *
 * - JavaScript: `message.slice(0, -tail) + position + message.slice(-tail)`
 * - Lua: `string.sub(m, 1, #m - tail) .. position .. string.sub(m, #m - tail + 1)`
 *
 * where `position` is exactly `{"epoch":"<epoch>","offset":<offset>}`
 * (no spaces; an epoch needs no escaping, see {@link HistoryPosition}).
 * The text before and after stays as the Server wrote it. The engine
 * keeps the spliced text in the channel's history and delivers the
 * spliced text.
 *
 * The position is assigned atomically with the publish: publishes to one
 * channel (from any nodes) get consecutive offsets, in the order the
 * channel's subscribers receive them.
 */
export interface HistoryPublish extends HistorySettings {
  /** The channel published to (the first of the publish's patterns), whose history keeps the message. */
  channel: string;
  /** How many characters (ASCII) of the text come after the position. */
  tail: number;
}

/** Where a recovery starts: after a position, or the last `last` messages kept. */
export type RecoverFrom = HistoryPosition | { last: number };

/** What {@link Engine.recover} did. */
export interface RecoverResult extends HistoryPosition {
  /**
   * True when everything published to the channel after the position
   * asked for was still kept (same epoch, nothing trimmed), or for a
   * `{ last }` request. False when the epoch differs or messages after
   * the position are gone: then nothing was queued.
   */
  recovered: boolean;
  /** How many kept messages were queued for the session. */
  missed: number;
}

/** What {@link Engine.history} reads. */
export interface HistoryRead extends HistoryPosition {
  /** Kept messages (texts with their positions), oldest first. */
  messages: string[];
}

/** Which kept messages {@link Engine.history} returns. */
export interface HistoryQuery {
  /**
   * Only messages after this position (when its epoch is the channel's;
   * with another epoch, every kept message counts as after it).
   */
  since?: HistoryPosition;
  /** At most this many: the oldest ones after `since`, or without `since` the newest ones. */
  limit?: number;
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
   * Optional: true when {@link publish} honours
   * {@link PublishOptions.publisher}. The Server then hands a client's
   * publish its session there instead of calling {@link exists} first,
   * when no middleware is to see the message before it is published: for
   * a networked engine, one round trip to the store less per request.
   */
  readonly checksPublisher?: boolean;
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
  subscribe(clientId: string, pattern: string, options?: SubscribeOptions): Promise<boolean>;
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

  /**
   * Optional: the session's WebSocket on this node closed (the Server
   * calls it when a push connection goes away; the session lives on). An
   * engine that keeps what pushes took only in this process's memory
   * writes it now: the client's next request may come through another
   * node, which should not send those messages again. Must not throw.
   */
  detached?(clientId: string): void;

  /**
   * Optional (with {@link history}; an engine without both cannot be
   * used with the Server's `history` option): subscribe a session to
   * `channel` (a channel, never a wildcard, that keeps history) and queue
   * for it the kept messages after `from`, atomically with respect to
   * publishes: those messages are queued, in order, ahead of any message
   * published to the channel after the subscription took effect, and each
   * once (a message published meanwhile comes either in the recovery or
   * through the subscription, never both). Wakes the session's node when
   * it queued anything. Subscribes as {@link subscribe} does (the same
   * limit, the same `EngineLimitError`), and creates the channel's
   * history when it has none yet, with a new epoch, so the result is a
   * position a later recovery can start from.
   *
   * `from` as a position: when its epoch is the channel's and every
   * message after its offset is still kept (`offset` not past the
   * channel's), queue them: `recovered: true`. Otherwise queue nothing:
   * `recovered: false`. `{ last: n }`: queue the newest `n` kept
   * (`0`: none), `recovered: true`. The result's `epoch` and `offset` are
   * the channel's position after the recovery (its newest message's).
   * Resolves to null for an unknown session.
   */
  recover?(clientId: string, channel: string, from: RecoverFrom, history: HistorySettings, options?: SubscribeOptions): Promise<RecoverResult | null>;

  /**
   * Optional (see {@link recover}): the kept messages of `channel`, their
   * texts as delivered (positions spliced in), oldest first, and the
   * channel's position. Creates the channel's history (a new epoch,
   * offset 0) when it has none.
   */
  history?(channel: string, history: HistorySettings, query: HistoryQuery): Promise<HistoryRead>;

  /**
   * Optional, with {@link presenceCount} and {@link userSessions} (an
   * engine without all three cannot be used with the Server's `presence`
   * or `identify` options): the sessions present on `channel` (subscribed
   * with {@link SubscribeOptions.presence}), cluster-wide, at most `limit`
   * of them, in no particular order.
   */
  presence?(channel: string, limit: number): Promise<PresenceEntry[]>;
  /** Optional (see {@link presence}): how many users and sessions are present on `channel`. */
  presenceCount?(channel: string): Promise<PresenceState>;
  /**
   * Optional (see {@link presence}): the live sessions created with
   * {@link SessionOptions.user} `user`, cluster-wide. A session leaves the
   * list when it is destroyed or expires.
   */
  userSessions?(user: string): Promise<string[]>;

  stats(): Promise<EngineStats>;

  /**
   * Optional, for engines shared by several nodes: the nodes that reported
   * in the last few seconds (this one included). The admin page lists them.
   */
  nodes?(): Promise<EngineNode[]>;
}
