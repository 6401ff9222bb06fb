/**
 * The Redis engine: sessions, subscriptions and queues in Redis, so that
 * any node of a cluster can serve any request of any session.
 *
 * Keys, all under the prefix (default `bayeux:`):
 *
 * | key                    | type   | holds                                                 |
 * | ---------------------- | ------ | ----------------------------------------------------- |
 * | `sessions`             | zset   | session id → deadline (ms, Redis clock)                |
 * | `session:<id>`         | hash   | `ack` (0/1), `node`, `batch`, `dropped`               |
 * | `subs:<id>`            | set    | the session's subscription patterns                   |
 * | `queue:<id>`           | list   | messages not yet taken, oldest first                  |
 * | `unacked:<id>`         | list   | acked sessions: messages taken, not yet acknowledged  |
 * | `channel:<pattern>`    | set    | ids of the sessions subscribed to the pattern         |
 * | `subscriptions`        | string | the number of subscriptions, for `stats()`            |
 *
 * Every operation that reads or writes more than one key is one Lua script
 * (run with EVALSHA, loaded again with EVAL after a Redis restart), so it is
 * atomic. Deadlines use Redis's clock (`TIME`), so nodes need not agree on
 * the time.
 *
 * Notification: each engine instance (a node) has a random id and listens
 * on its own Pub/Sub channel `<prefix>node:<id>`, on a second connection.
 * `touch` records the node in the session's hash. The publish script groups
 * recipients by node and PUBLISHes each group's ids to that node's channel
 * only; ids held by the publishing node itself come back in the script's
 * reply and are woken without a round trip. So a publish costs nothing on
 * nodes that hold none of its recipients.
 *
 * Taking queues: `take` is one script per session; `takeMany` (the Server's
 * flush of every WebSocket woken in a tick) is one script per 250 sessions,
 * all written to Redis at once, so a tick's pushes cost one round trip.
 *
 * Timeouts: one watchdog timer per engine fails the operations that waited
 * longer than `commandTimeout` for Redis, instead of a timer per command.
 *
 * Expiry: every node runs a sweep script every `sweepInterval` that takes
 * the sessions whose deadline has passed out of the `sessions` zset and
 * deletes their keys, atomically; the node whose script removed a session
 * is the one that calls `expired`, so it happens once per cluster. An
 * operation on a session past its deadline expires it the same way.
 *
 * Needs Redis 5 or later (scripts call `TIME` before writing) and the
 * `redis` package (node-redis) 5.6 or later. One Redis, or a primary with
 * replicas (Sentinel); not Redis Cluster, since the scripts reach keys of
 * many sessions.
 */
import { createHash } from 'node:crypto';
import { createClient, ErrorReply } from 'redis';
import {
  EngineUnavailableError,
  type Engine,
  type EngineConfig,
  type EngineHost,
  type EngineLogger,
  type EngineStats,
  type SessionOptions,
  type TakeResult,
} from './engine.js';
import { newClientId } from './memory.js';

export { EngineUnavailableError } from './engine.js';
export type { EngineLogger } from './engine.js';

/**
 * The parts of a node-redis (`redis` v5) client the engine uses. A client
 * from `createClient()` fits.
 */
export interface RedisClientLike {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  sendCommand(args: readonly string[], options?: { timeout?: number }): Promise<unknown>;
  duplicate(): RedisClientLike;
  subscribe(channel: string, listener: (message: string, channel: string) => unknown): Promise<void>;
  /** Used for `error` and `ready`. */
  on(event: string, listener: (err: Error) => void): unknown;
  off(event: string, listener: (err: Error) => void): unknown;
  close(): Promise<void>;
  destroy(): void;
}

/** Where the engine finds Redis: a URL, or a client you made. */
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
       * A node-redis v5 client. It stays yours: the engine connects it if
       * it is not open, listens to its `error` events while the engine is
       * open (so a lost connection does not crash the process), and never
       * closes it. The
       * engine opens one more connection, `client.duplicate()`, for
       * Pub/Sub, and closes that one. Operations check `client.isReady`
       * and fail fast when it is not.
       */
      client: RedisClientLike;
    };

export interface RedisEngineOptions {
  /**
   * Prepended to every key and Pub/Sub channel, so several applications (or
   * test runs) can share one Redis. Non-empty.
   * @default 'bayeux:'
   */
  prefix?: string;
  /**
   * How long `open()` waits for the first connection to Redis, in ms,
   * before it rejects with {@link EngineUnavailableError}.
   * @default 10000
   */
  openTimeout?: number;
  /**
   * How long one operation waits for Redis's answer, in ms, before it
   * rejects with {@link EngineUnavailableError}. One timer per engine
   * ticks every quarter of this (at most every 250 ms) and fails the
   * operations that waited longer, so one fails between `commandTimeout`
   * and `commandTimeout` plus a tick. Time is counted in ticks: while the
   * process's event loop is blocked, time stands still (a blocked loop
   * counts as one tick), so answers that arrived meanwhile are not lost to
   * a timeout. Once one has timed out, Redis is taken to be hung: operations fail at
   * once until Redis answers again (the connection is kept; the timed-out
   * commands are still waiting on it). `0` waits as long as the connection
   * lasts.
   * @default 5000
   */
  commandTimeout?: number;
  /**
   * Longest pause between two reconnection attempts, in ms, for the client
   * the engine makes from a `url`. Attempts start 50 ms apart and double up
   * to this, with up to 10% jitter. A client you pass keeps its own policy.
   * @default 2000
   */
  reconnectMaxDelay?: number;
  /**
   * Most expired sessions one sweep script removes; a sweep runs the script
   * again (at most 100 times) while it keeps finding this many.
   * @default 1000
   */
  sweepBatch?: number;
  /**
   * Where connection trouble is reported (lost, restored; once each per
   * outage). A winston logger fits.
   * @default the Server's logger (`EngineConfig.logger`), or else `console.warn`
   */
  logger?: EngineLogger;
}

/** Most sessions one takeMany script takes; more ids go in further scripts, sent in the same write. */
const TAKE_MANY_IDS = 250;
/** A takeMany script stops after the session that brings its reply to this many messages; the rest is taken by another. */
const TAKE_MANY_MESSAGES = 5000;

const OPTION_NAMES = new Set(['prefix', 'openTimeout', 'commandTimeout', 'reconnectMaxDelay', 'sweepBatch', 'logger']);

/** Errors Redis answers with that mean "not now" rather than "wrong". */
const TRANSIENT_REPLIES = new Set([
  'LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'OOM',
  'NOAUTH', 'WRONGPASS', 'NOPERM', 'NOREPLICAS', 'MISCONF', 'UNBLOCKED',
]);

// ---------------------------------------------------------------------------
// Lua. Every script gets the prefix as ARGV[1]. Session scripts answer with a
// status first: 1 live, 0 unknown, -1 expired just now (by this script, so
// the caller reports it with `expired`).

const PRELUDE = `
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
local function remove(id)
  local subs = P .. 'subs:' .. id
  local patterns = redis.call('SMEMBERS', subs)
  for _, pattern in ipairs(patterns) do
    redis.call('SREM', P .. 'channel:' .. pattern, id)
  end
  if #patterns > 0 then redis.call('DECRBY', P .. 'subscriptions', #patterns) end
  redis.call('DEL', P .. 'session:' .. id, subs, P .. 'queue:' .. id, P .. 'unacked:' .. id)
  return redis.call('ZREM', P .. 'sessions', id)
end
local function live(id, now)
  local deadline = redis.call('ZSCORE', P .. 'sessions', id)
  if not deadline then return 0 end
  if tonumber(deadline) <= now then
    remove(id)
    return -1
  end
  return 1
end
local function enqueue(id, message, max)
  local queue = P .. 'queue:' .. id
  local n = redis.call('RPUSH', queue, message)
  if max < 0 then return end
  local unacked = P .. 'unacked:' .. id
  local u = redis.call('LLEN', unacked)
  local excess = n + u - max
  if excess <= 0 then return end
  redis.call('HINCRBY', P .. 'session:' .. id, 'dropped', excess)
  local fromUnacked = math.min(excess, u)
  if fromUnacked == u then
    redis.call('DEL', unacked)
  elseif fromUnacked > 0 then
    redis.call('LTRIM', unacked, fromUnacked, -1)
  end
  local fromQueue = excess - fromUnacked
  if fromQueue >= n then
    redis.call('DEL', queue)
  elseif fromQueue > 0 then
    redis.call('LTRIM', queue, fromQueue, -1)
  end
end
`;

/** ARGV: prefix, id, ack (0/1), ttl, node → 1 created, 0 id taken */
const CREATE = `
local id = ARGV[2]
local now = now_ms()
if redis.call('ZSCORE', P .. 'sessions', id) then return 0 end
remove(id)
redis.call('ZADD', P .. 'sessions', ms(now + tonumber(ARGV[4])), id)
redis.call('HSET', P .. 'session:' .. id, 'ack', ARGV[3], 'node', ARGV[5], 'batch', 0, 'dropped', 0)
return 1
`;

/** ARGV: prefix, id → status */
const EXISTS = `
return live(ARGV[2], now_ms())
`;

/** ARGV: prefix, id, ttl, node → status */
const TOUCH = `
local id = ARGV[2]
local now = now_ms()
local status = live(id, now)
if status ~= 1 then return status end
redis.call('ZADD', P .. 'sessions', 'XX', ms(now + tonumber(ARGV[3])), id)
redis.call('HSET', P .. 'session:' .. id, 'node', ARGV[4])
return 1
`;

/** ARGV: prefix, id → status */
const DESTROY = `
local id = ARGV[2]
local status = live(id, now_ms())
if status == 1 then remove(id) end
return status
`;

/** ARGV: prefix, id, pattern → status */
const SUBSCRIBE = `
local id = ARGV[2]
local status = live(id, now_ms())
if status ~= 1 then return status end
if redis.call('SADD', P .. 'subs:' .. id, ARGV[3]) == 1 then
  redis.call('SADD', P .. 'channel:' .. ARGV[3], id)
  redis.call('INCR', P .. 'subscriptions')
end
return 1
`;

/** ARGV: prefix, id, pattern → status */
const UNSUBSCRIBE = `
local id = ARGV[2]
local status = live(id, now_ms())
if status ~= 1 then return status end
if redis.call('SREM', P .. 'subs:' .. id, ARGV[3]) == 1 then
  redis.call('SREM', P .. 'channel:' .. ARGV[3], id)
  redis.call('DECR', P .. 'subscriptions')
end
return 1
`;

/** ARGV: prefix, id → { status, patterns } */
const SUBSCRIPTIONS = `
local id = ARGV[2]
local status = live(id, now_ms())
if status ~= 1 then return { status } end
return { 1, redis.call('SMEMBERS', P .. 'subs:' .. id) }
`;

/**
 * ARGV: prefix, message, maxQueue (-1: none), node, pattern... →
 * { count, ids held by \`node\` }; other nodes are told on their channel.
 */
const PUBLISH = `
local message = ARGV[2]
local max = tonumber(ARGV[3])
local self = ARGV[4]
local now = now_ms()
local seen = {}
local count = 0
local mine = {}
local others = {}
for i = 5, #ARGV do
  local ids = redis.call('SMEMBERS', P .. 'channel:' .. ARGV[i])
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id] = true
      local deadline = redis.call('ZSCORE', P .. 'sessions', id)
      if deadline and tonumber(deadline) > now then
        enqueue(id, message, max)
        count = count + 1
        local node = redis.call('HGET', P .. 'session:' .. id, 'node')
        if node == self then
          mine[#mine + 1] = id
        elseif node then
          local group = others[node]
          if not group then
            group = {}
            others[node] = group
          end
          group[#group + 1] = id
        end
      end
    end
  end
end
for node, ids in pairs(others) do
  redis.call('PUBLISH', P .. 'node:' .. node, table.concat(ids, ','))
end
return { count, mine }
`;

/** ARGV: prefix, id, message, maxQueue, node → { status, 1 if held by \`node\` } */
const DELIVER = `
local id = ARGV[2]
local status = live(id, now_ms())
if status ~= 1 then return { status } end
enqueue(id, ARGV[3], tonumber(ARGV[4]))
local node = redis.call('HGET', P .. 'session:' .. id, 'node')
if node == ARGV[5] then return { 1, 1 } end
if node then redis.call('PUBLISH', P .. 'node:' .. node, id) end
return { 1, 0 }
`;

/**
 * take(id, ack, now) for TAKE and TAKE_MANY: ack is '' for none →
 * { status, dropped, messages[, batch] } (batch for acked sessions only)
 */
const TAKE_FUNCTION = `
local function take(id, ack, now)
  local status = live(id, now)
  if status ~= 1 then return { status } end
  local session = P .. 'session:' .. id
  local fields = redis.call('HMGET', session, 'ack', 'batch', 'dropped')
  local dropped = tonumber(fields[3]) or 0
  if dropped ~= 0 then redis.call('HSET', session, 'dropped', 0) end
  local queue = P .. 'queue:' .. id
  if fields[1] ~= '1' then
    local messages = redis.call('LRANGE', queue, 0, -1)
    if #messages > 0 then redis.call('DEL', queue) end
    return { 1, dropped, messages }
  end
  local batch = tonumber(fields[2]) or 0
  local unacked = P .. 'unacked:' .. id
  if ack ~= '' and tonumber(ack) >= batch then redis.call('DEL', unacked) end
  if redis.call('EXISTS', queue) == 1 then
    if redis.call('EXISTS', unacked) == 0 then
      redis.call('RENAME', queue, unacked)
    else
      local waiting = redis.call('LRANGE', queue, 0, -1)
      for i = 1, #waiting, 1000 do
        redis.call('RPUSH', unacked, unpack(waiting, i, math.min(i + 999, #waiting)))
      end
      redis.call('DEL', queue)
    end
  end
  batch = batch + 1
  redis.call('HSET', session, 'batch', batch)
  return { 1, dropped, redis.call('LRANGE', unacked, 0, -1), batch }
end
`;

/** ARGV: prefix, id, ack ('' for none) → what take() returns (see TAKE_FUNCTION) */
const TAKE = TAKE_FUNCTION + `
return take(ARGV[2], ARGV[3], now_ms())
`;

/**
 * ARGV: prefix, budget, id... → one take() reply per id, in order, without
 * acks. Stops after the session that brings the messages returned to
 * \`budget\` or more, so a reply is bounded: the caller sends the ids left
 * over again.
 */
const TAKE_MANY = TAKE_FUNCTION + `
local budget = tonumber(ARGV[2])
local now = now_ms()
local replies = {}
local taken = 0
for i = 3, #ARGV do
  local reply = take(ARGV[i], '', now)
  replies[#replies + 1] = reply
  if reply[3] then
    taken = taken + #reply[3]
    if taken >= budget then break end
  end
end
return replies
`;

/** ARGV: prefix, limit → ids of the sessions this call expired */
const SWEEP = `
local ids = redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', ms(now_ms()), 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do remove(id) end
return ids
`;

/** ARGV: prefix → { live sessions, subscriptions } */
const STATS = `
return { redis.call('ZCOUNT', P .. 'sessions', '(' .. ms(now_ms()), '+inf'), tonumber(redis.call('GET', P .. 'subscriptions') or '0') }
`;

interface Script {
  readonly source: string;
  readonly sha: string;
}

function script(body: string): Script {
  const source = PRELUDE + body;
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const Scripts = {
  create: script(CREATE),
  exists: script(EXISTS),
  touch: script(TOUCH),
  destroy: script(DESTROY),
  subscribe: script(SUBSCRIBE),
  unsubscribe: script(UNSUBSCRIBE),
  subscriptions: script(SUBSCRIPTIONS),
  publish: script(PUBLISH),
  deliver: script(DELIVER),
  take: script(TAKE),
  takeMany: script(TAKE_MANY),
  sweep: script(SWEEP),
  stats: script(STATS),
} as const;

// ---------------------------------------------------------------------------
// Replies

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

function int(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(text(value));
  if (!Number.isFinite(n)) throw new Error(`Redis engine: unexpected reply ${text(value)}`);
  return n;
}

function list(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error('Redis engine: unexpected reply, not an array');
  return value;
}

function texts(value: unknown): string[] {
  return list(value).map(text);
}

// ---------------------------------------------------------------------------
// Credentials

/** `url` with its password replaced by `***`; never the password itself. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable Redis URL>';
  }
}

function passwordOf(url: string): string[] {
  try {
    const { password } = new URL(url);
    if (!password) return [];
    const decoded = decodeURIComponent(password);
    return decoded === password ? [password] : [password, decoded];
  } catch {
    return [];
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

function isErrorReply(err: unknown): err is Error {
  if (err instanceof ErrorReply) return true;
  // A client from another copy of the package.
  const name = (err as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name === 'ErrorReply' || name === 'SimpleError' || name === 'BlobError';
}

function checkNumber(name: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(`RedisEngine option ${name} must be a finite number >= ${min}`);
  }
  return value;
}

/** A command in flight, for the commandTimeout watchdog. */
interface Pending {
  /** The watchdog's tick count when it was sent. */
  readonly tick: number;
  readonly reject: (err: unknown) => void;
}

// ---------------------------------------------------------------------------

export class RedisEngine implements Engine {
  readonly #prefix: string;
  readonly #openTimeout: number;
  readonly #commandTimeout: number;
  readonly #reconnectMaxDelay: number;
  readonly #sweepBatch: number;
  readonly #ownLogger: EngineLogger | undefined;
  /** Where, for messages: the redacted URL, or 'Redis'. */
  readonly #where: string;
  readonly #secrets: string[];
  readonly #url: string | undefined;
  readonly #nodeId = newClientId();

  #client: RedisClientLike | undefined;
  #subscriber: RedisClientLike | undefined;
  readonly #ownsClient: boolean;
  #host: EngineHost | undefined;
  #logger: EngineLogger | undefined;
  #maxQueue = '-1';
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping = false;
  /** Commands sent and not answered yet, oldest first (when commandTimeout > 0). */
  readonly #pending = new Set<Pending>();
  /**
   * Counts ticks every commandTimeout / 4 (at most 250 ms) and fails the
   * commands sent more than #watchTicks ticks ago.
   */
  #watchdog: NodeJS.Timeout | undefined;
  #ticks = 0;
  #watchTicks = 0;
  /** A command timed out and Redis has not answered anything since: fail fast. */
  #stalled = false;
  /**
   * Scripts sent with EVAL on the current connection. Redis runs one
   * connection's commands in order, so an EVALSHA sent after that EVAL finds
   * the script: operations sent together keep their order, which a
   * NOSCRIPT answer and a second round trip for one of them would break.
   */
  readonly #loaded = new Set<string>();
  #closed = false;
  #opened = false;
  /** Whether Redis was reachable at last news; flips once per outage, for logging. */
  #up = false;
  /** Why the last connection attempt failed (scrubbed). */
  #lastError: string | undefined;
  #subscriberWasReady = false;
  /** Sessions this node created or touched → local deadline; woken when the subscriber reconnects. */
  readonly #local = new Map<string, number>();

  readonly #onClientError = (err: unknown) => this.#down(err);
  readonly #onClientReady = () => {
    // A new connection: whatever hung went with the old one, and Redis may have restarted.
    this.#stalled = false;
    this.#loaded.clear();
    this.#back();
  };
  readonly #onWatchdog = () => this.#watch();
  readonly #checkPending = () => this.#timeOutPending();
  readonly #onSubscriberError = (err: unknown) => this.#down(err);
  readonly #onSubscriberReady = () => this.#subscriberReady();
  readonly #onNotification = (message: string) => this.#notified(message);

  /**
   * @param source `{ url }` or `{ client }` (see {@link RedisEngineSource}).
   * @param options see {@link RedisEngineOptions}; unknown options throw a `TypeError`.
   */
  constructor(source: RedisEngineSource, options: RedisEngineOptions = {}) {
    if (source === null || typeof source !== 'object') {
      throw new TypeError('RedisEngine needs { url } or { client }');
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.has(key)) throw new TypeError(`RedisEngine: unknown option ${key}`);
    }
    if ('client' in source && source.client) {
      this.#client = source.client;
      this.#ownsClient = false;
      this.#where = 'Redis';
      this.#secrets = [];
    } else if ('url' in source && typeof source.url === 'string' && source.url) {
      this.#url = source.url;
      this.#ownsClient = true;
      this.#where = redactUrl(source.url);
      this.#secrets = passwordOf(source.url);
    } else {
      throw new TypeError('RedisEngine needs { url } (a non-empty string) or { client }');
    }
    const prefix = options.prefix ?? 'bayeux:';
    if (typeof prefix !== 'string' || prefix === '') {
      throw new TypeError('RedisEngine option prefix must be a non-empty string');
    }
    this.#prefix = prefix;
    this.#openTimeout = checkNumber('openTimeout', options.openTimeout, 1) ?? 10_000;
    this.#commandTimeout = checkNumber('commandTimeout', options.commandTimeout, 0) ?? 5000;
    this.#reconnectMaxDelay = checkNumber('reconnectMaxDelay', options.reconnectMaxDelay, 1) ?? 2000;
    const sweepBatch = checkNumber('sweepBatch', options.sweepBatch, 1) ?? 1000;
    this.#sweepBatch = Math.floor(sweepBatch);
    if (options.logger !== undefined && typeof options.logger?.warn !== 'function') {
      throw new TypeError('RedisEngine option logger must have a warn(message) method');
    }
    this.#ownLogger = options.logger;
  }

  /** This node's id: the suffix of its notification channel. */
  get nodeId(): string {
    return this.#nodeId;
  }

  async open(host: EngineHost, config: EngineConfig): Promise<void> {
    if (this.#opened) throw new Error('RedisEngine: open() called twice');
    this.#opened = true;
    this.#host = host;
    this.#logger = this.#ownLogger ?? config.logger;
    this.#maxQueue = Number.isFinite(config.maxQueue) ? String(Math.max(0, Math.floor(config.maxQueue))) : '-1';

    let client = this.#client;
    if (!client) {
      const maxDelay = this.#reconnectMaxDelay;
      client = createClient({
        url: this.#url,
        disableOfflineQueue: true,
        socket: {
          connectTimeout: Math.min(this.#openTimeout, 5000),
          reconnectStrategy: (retries: number) => {
            const delay = Math.min(50 * 2 ** Math.min(retries, 16), maxDelay);
            return Math.round(delay * (1 + Math.random() * 0.1));
          },
        },
      }) as unknown as RedisClientLike;
      this.#client = client;
    }
    client.on('error', this.#onClientError);
    client.on('ready', this.#onClientReady);

    const subscriber = client.duplicate();
    this.#subscriber = subscriber;
    subscriber.on('error', this.#onSubscriberError);
    subscriber.on('ready', this.#onSubscriberReady);

    const connectClient = !client.isOpen;
    try {
      await this.#withOpenTimeout(async () => {
        if (connectClient) await client.connect();
        // close() may have run in the meantime (the timeout won).
        if (this.#closed) return;
        await subscriber.connect();
        if (this.#closed) return;
        await subscriber.subscribe(this.#channel(this.#nodeId), this.#onNotification);
      });
    } catch (err) {
      // A client we connected ourselves is not left retrying for ever.
      if (connectClient && !this.#ownsClient && client.isOpen) client.destroy();
      await this.close();
      throw this.#unavailable(err, 'could not connect');
    }
    this.#up = true;

    const interval = Math.max(1, config.sweepInterval);
    this.#sweeper = setInterval(() => void this.#sweep(), interval);
    this.#sweeper.unref();
    if (this.#commandTimeout > 0) {
      const every = Math.min(250, Math.max(5, Math.floor(this.#commandTimeout / 4)));
      this.#watchTicks = Math.ceil(this.#commandTimeout / every);
      this.#watchdog = setInterval(this.#onWatchdog, every);
      this.#watchdog.unref();
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    this.#local.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) {
      subscriber.off('ready', this.#onSubscriberReady);
      // Keep swallowing errors of a dying connection.
      try {
        if (subscriber.isOpen) subscriber.destroy();
      } catch {
        // already closed
      }
    }
    const client = this.#client;
    if (!client) return;
    client.off('ready', this.#onClientReady);
    if (this.#ownsClient) {
      if (client.isOpen) {
        if (client.isReady) {
          // Let commands in flight finish, but not for ever.
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), 1000);
          });
          const result = await Promise.race([client.close().catch(() => 'error'), timeout]);
          clearTimeout(timer);
          if (result !== undefined && client.isOpen) client.destroy();
        } else {
          client.destroy();
        }
      }
    } else {
      client.off('error', this.#onClientError);
    }
    // Commands still unanswered (a hung Redis, a client we do not close) are not waited for.
    for (const pending of this.#pending) pending.reject(new EngineUnavailableError(`Redis engine is closed (${this.#where})`));
    this.#pending.clear();
  }

  async createSession(options: SessionOptions): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = newClientId();
      const created = await this.#run(Scripts.create, [id, options.ack ? '1' : '0', String(Math.max(0, options.ttl)), this.#nodeId]);
      if (int(created) === 1) {
        this.#local.set(id, Date.now() + options.ttl);
        return id;
      }
    }
    // 160 random bits colliding three times means the generator is broken.
    throw new Error('RedisEngine: could not create a unique session id');
  }

  async exists(clientId: string): Promise<boolean> {
    return this.#status(clientId, await this.#run(Scripts.exists, [clientId]));
  }

  async touch(clientId: string, ttl: number): Promise<boolean> {
    const ok = this.#status(clientId, await this.#run(Scripts.touch, [clientId, String(Math.max(0, ttl)), this.#nodeId]));
    if (ok) this.#local.set(clientId, Date.now() + ttl);
    else this.#local.delete(clientId);
    return ok;
  }

  async destroy(clientId: string): Promise<boolean> {
    const ok = this.#status(clientId, await this.#run(Scripts.destroy, [clientId]));
    this.#local.delete(clientId);
    return ok;
  }

  async subscribe(clientId: string, pattern: string): Promise<boolean> {
    return this.#status(clientId, await this.#run(Scripts.subscribe, [clientId, pattern]));
  }

  async unsubscribe(clientId: string, pattern: string): Promise<boolean> {
    return this.#status(clientId, await this.#run(Scripts.unsubscribe, [clientId, pattern]));
  }

  async subscriptions(clientId: string): Promise<string[]> {
    const reply = list(await this.#run(Scripts.subscriptions, [clientId]));
    if (!this.#status(clientId, reply[0])) return [];
    return texts(reply[1]);
  }

  async publish(patterns: readonly string[], message: string): Promise<number> {
    if (patterns.length === 0) return 0;
    const reply = list(await this.#run(Scripts.publish, [message, this.#maxQueue, this.#nodeId, ...patterns]));
    const mine = texts(reply[1]);
    if (mine.length > 0) this.#wake(mine);
    return int(reply[0]);
  }

  async deliver(clientId: string, message: string): Promise<boolean> {
    const reply = list(await this.#run(Scripts.deliver, [clientId, message, this.#maxQueue, this.#nodeId]));
    if (!this.#status(clientId, reply[0])) return false;
    if (int(reply[1]) === 1) this.#wake([clientId]);
    return true;
  }

  async take(clientId: string, ack?: number): Promise<TakeResult | null> {
    const acked = typeof ack === 'number' && Number.isFinite(ack) ? String(Math.floor(ack)) : '';
    return this.#takeResult(clientId, await this.#run(Scripts.take, [clientId, acked]));
  }

  /**
   * {@link take} without acks for every id, in one round trip: one script
   * per {@link TAKE_MANY_IDS} ids, all written to Redis together. A script
   * stops early once its reply holds {@link TAKE_MANY_MESSAGES} messages;
   * the ids it did not reach go in another script (a further round trip,
   * only for queues that large). Each session is taken atomically.
   */
  async takeMany(clientIds: readonly string[]): Promise<Array<TakeResult | null>> {
    const results = new Array<TakeResult | null>(clientIds.length).fill(null);
    if (clientIds.length <= TAKE_MANY_IDS) {
      await this.#takeSome(clientIds, 0, clientIds.length, results);
    } else {
      const parts: Promise<void>[] = [];
      for (let start = 0; start < clientIds.length; start += TAKE_MANY_IDS) {
        parts.push(this.#takeSome(clientIds, start, Math.min(start + TAKE_MANY_IDS, clientIds.length), results));
      }
      await Promise.all(parts);
    }
    return results;
  }

  // Placeholders until the v2 engine (issue 9) lands: the v1 data layout has no place for these.
  async subscribers(_pattern: string): Promise<string[]> {
    throw new Error('RedisEngine v1: subscribers() is not supported');
  }

  async getSessionData(_clientId: string, _key: string): Promise<string | undefined | null> {
    throw new Error('RedisEngine v1: session data is not supported');
  }

  async setSessionData(_clientId: string, _key: string, _value: string | undefined): Promise<boolean> {
    throw new Error('RedisEngine v1: session data is not supported');
  }

  async allSessionData(_clientId: string): Promise<Map<string, string> | null> {
    throw new Error('RedisEngine v1: session data is not supported');
  }

  async stats(): Promise<EngineStats> {
    const reply = list(await this.#run(Scripts.stats, []));
    return { sessions: int(reply[0]), subscriptions: Math.max(0, int(reply[1])) };
  }

  // -------------------------------------------------------------------------

  /** Take clientIds[start, end) into results[start, end). */
  async #takeSome(clientIds: readonly string[], start: number, end: number, results: Array<TakeResult | null>): Promise<void> {
    // Each round takes at least one session, so this ends.
    while (start < end) {
      const replies = list(await this.#run(Scripts.takeMany, [String(TAKE_MANY_MESSAGES), ...clientIds.slice(start, end)]));
      if (replies.length === 0 || replies.length > end - start) {
        throw new Error(`Redis engine: unexpected takeMany reply (${replies.length} for ${end - start} ids)`);
      }
      for (const reply of replies) {
        results[start] = this.#takeResult(clientIds[start] as string, reply);
        start++;
      }
    }
  }

  #takeResult(clientId: string, value: unknown): TakeResult | null {
    const reply = list(value);
    if (!this.#status(clientId, reply[0])) return null;
    const result: TakeResult = { messages: texts(reply[2]), dropped: int(reply[1]) };
    if (reply.length > 3) result.batch = int(reply[3]);
    return result;
  }

  #channel(nodeId: string): string {
    return `${this.#prefix}node:${nodeId}`;
  }

  /** A session script's status: true for live; reports a session the script just expired. */
  #status(clientId: string, status: unknown): boolean {
    const n = int(status);
    if (n === -1) this.#expired(clientId);
    return n === 1;
  }

  async #run(script: Script, args: readonly string[]): Promise<unknown> {
    const client = this.#client;
    if (this.#closed || !client) throw new EngineUnavailableError(`Redis engine is closed (${this.#where})`);
    if (!client.isReady) {
      throw this.#unavailable(new Error(this.#lastError ? `not connected (${this.#lastError})` : 'not connected'));
    }
    if (this.#stalled) {
      throw this.#unavailable(new Error(`no answer within ${this.#commandTimeout} ms; waiting for Redis to answer again`));
    }
    const loaded = this.#loaded.has(script.sha);
    if (!loaded) this.#loaded.add(script.sha);
    try {
      try {
        return await this.#send(client, [loaded ? 'EVALSHA' : 'EVAL', loaded ? script.sha : script.source, '0', this.#prefix, ...args]);
      } catch (err) {
        // Redis lost its script cache under this connection (SCRIPT FLUSH): load the script again.
        if (!loaded || !isErrorReply(err) || !err.message.startsWith('NOSCRIPT')) throw err;
        return await this.#send(client, ['EVAL', script.source, '0', this.#prefix, ...args]);
      }
    } catch (err) {
      if (isErrorReply(err)) {
        const code = /^[A-Z]+/.exec(err.message)?.[0] ?? '';
        if (!TRANSIENT_REPLIES.has(code)) throw new Error(`Redis engine: ${this.#scrub(err.message)}`);
      }
      throw this.#unavailable(err);
    }
  }

  /**
   * One command, with the commandTimeout watched by the shared watchdog
   * rather than by a timer of its own (node-redis's `timeout` makes an
   * `AbortSignal.timeout` per command, and only covers the wait before the
   * command is written, not the wait for the answer).
   */
  #send(client: RedisClientLike, args: readonly string[]): Promise<unknown> {
    const sent = client.sendCommand(args);
    if (this.#watchdog === undefined) return sent;
    return new Promise((resolve, reject) => {
      const pending: Pending = { tick: this.#ticks, reject };
      this.#pending.add(pending);
      sent.then(
        (value) => {
          this.#pending.delete(pending);
          if (this.#stalled) this.#answered();
          resolve(value);
        },
        (err: unknown) => {
          this.#pending.delete(pending);
          if (this.#stalled && isErrorReply(err)) this.#answered();
          reject(err);
        },
      );
    });
  }

  /**
   * The watchdog's tick. Time is counted in ticks, not read from the clock:
   * an event loop blocked for a while (by the application, or a burst of
   * work) yields one tick, not a timeout for commands that Redis answered
   * meanwhile. The check runs after the loop's I/O phase (setImmediate), so
   * answers that arrived are read first.
   */
  #watch(): void {
    this.#ticks++;
    if (this.#pending.size > 0) setImmediate(this.#checkPending);
  }

  /** Fail the commands sent more than commandTimeout ago (in ticks). */
  #timeOutPending(): void {
    const limit = this.#ticks - this.#watchTicks;
    // Oldest first: stop at the first one still in time.
    for (const pending of this.#pending) {
      if (pending.tick >= limit) break;
      this.#pending.delete(pending);
      if (!this.#stalled) this.#stall();
      pending.reject(this.#unavailable(new Error(`no answer within ${this.#commandTimeout} ms`)));
    }
  }

  /** A command timed out: fail fast until Redis answers again. */
  #stall(): void {
    this.#stalled = true;
    this.#lastError = `no answer within ${this.#commandTimeout} ms`;
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.#log('warn', `express-bayeux: ${this.#where} stopped answering (nothing within ${this.#commandTimeout} ms); engine operations fail with EngineUnavailableError until it answers again`);
  }

  /** Redis answered after a stall: operations go to it again. */
  #answered(): void {
    this.#stalled = false;
    this.#back();
  }

  #unavailable(err: unknown, what = 'unavailable'): EngineUnavailableError {
    if (err instanceof EngineUnavailableError) return err;
    const reason = this.#scrub(describeError(err));
    return new EngineUnavailableError(`Redis ${what} (${this.#where}): ${reason}`);
  }

  /** Remove anything that looks like the password from a message. */
  #scrub(message: string): string {
    let result = message;
    for (const secret of this.#secrets) result = result.split(secret).join('***');
    return result;
  }

  async #withOpenTimeout(connect: () => Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const attempt = connect();
    // If the timeout wins, the attempt ends when close() destroys the clients.
    attempt.catch(() => {});
    try {
      await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no connection within ${this.#openTimeout} ms (${this.#lastError ?? 'no answer'})`)),
            this.#openTimeout,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  #down(err: unknown): void {
    this.#lastError = this.#scrub(describeError(err));
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.#log('warn', `express-bayeux: lost the connection to ${this.#where} (${this.#lastError}); engine operations fail with EngineUnavailableError until it is back`);
  }

  #back(): void {
    if (this.#up || this.#closed || this.#sweeper === undefined) return;
    if (!this.#client?.isReady) return;
    this.#up = true;
    this.#log('info', `express-bayeux: connection to ${this.#where} restored`);
  }

  #subscriberReady(): void {
    this.#back();
    if (!this.#subscriberWasReady) {
      this.#subscriberWasReady = true;
      return;
    }
    // Notifications published while the subscriber was away are lost: wake
    // every session this node may hold; the Server ignores the others.
    const now = Date.now();
    const ids: string[] = [];
    for (const [id, deadline] of this.#local) {
      if (deadline > now) ids.push(id);
      else this.#local.delete(id);
    }
    if (ids.length > 0) this.#wake(ids);
  }

  #log(level: 'warn' | 'info', message: string): void {
    const logger = this.#logger;
    try {
      if (!logger) console.warn(message);
      else if (level === 'info' && logger.info) logger.info(message);
      else logger.warn(message);
    } catch {
      // a broken logger must not break the engine
    }
  }

  #notified(message: string): void {
    if (this.#closed) return;
    const ids = message.split(',').filter((id) => id !== '');
    if (ids.length > 0) this.#wake(ids);
  }

  #wake(ids: string[]): void {
    try {
      this.#host?.wake(ids);
    } catch (err) {
      this.#log('warn', `express-bayeux: EngineHost.wake threw: ${describeError(err)}`);
    }
  }

  #expired(clientId: string): void {
    this.#local.delete(clientId);
    try {
      this.#host?.expired(clientId);
    } catch (err) {
      this.#log('warn', `express-bayeux: EngineHost.expired threw: ${describeError(err)}`);
    }
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#closed || !this.#client?.isReady) return;
    this.#sweeping = true;
    try {
      for (let round = 0; round < 100 && !this.#closed; round++) {
        const ids = texts(await this.#run(Scripts.sweep, [String(this.#sweepBatch)]));
        for (const id of ids) this.#expired(id);
        if (ids.length < this.#sweepBatch) break;
      }
      const now = Date.now();
      for (const [id, deadline] of this.#local) if (deadline <= now) this.#local.delete(id);
    } catch (err) {
      // Redis away: already logged; the next sweep tries again.
      if (!(err instanceof EngineUnavailableError)) this.#log('warn', `express-bayeux: Redis sweep failed: ${describeError(err)}`);
    } finally {
      this.#sweeping = false;
    }
  }
}
