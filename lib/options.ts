/**
 * The `bayeux()` options: declared with their defaults, validated once.
 */
import winston from 'winston';
import type { Engine } from './engines/engine.js';
import { MemoryEngine } from './engines/memory.js';
import { type HistoryConfig, type HistoryPatternOptions, resolveHistory } from './server/history.js';
import { checkEngine, type IdentifyFunction, type PresenceConfig, resolvePresence } from './server/users.js';
import type { ServiceHandler } from './server/types.js';

/** Who may call the endpoint from another origin. */
export interface CorsOptions {
  /**
   * Allowed origins: `'*'` (any), one origin, a list, a RegExp, or a
   * function. Default `'*'`.
   */
  origin?: string | readonly string[] | RegExp | ((origin: string) => boolean);
  /** Send `Access-Control-Allow-Credentials: true` (the origin is then echoed, never `*`). Default `false`. */
  credentials?: boolean;
  /** Preflight cache lifetime in seconds (`Access-Control-Max-Age`). Default `86400`. */
  maxAge?: number;
}

/**
 * Where the server logs: any object with `error`, `warn`, `info` and
 * `debug` methods taking a message string (winston, pino, `console`).
 */
export interface Logger {
  error(message: string): unknown;
  warn(message: string): unknown;
  info(message: string): unknown;
  debug(message: string): unknown;
}

/** A token bucket: refilled at `perSecond`, holding at most `burst`. */
export interface RateBucket {
  /** Tokens added a second (messages, or bytes). */
  perSecond: number;
  /** Most tokens held: how much may come at once after a quiet spell. */
  burst: number;
}

/** Per-session rate limits (`rateLimit`): either or both. */
export interface RateLimitOptions {
  /** Messages a session may send (every message but `/meta/handshake`, `/meta/connect` and `/meta/disconnect`). */
  messages?: RateBucket;
  /** Characters of those messages' JSON text (bytes, for ASCII JSON); a message longer than `burst` is always refused. */
  bytes?: RateBucket;
}

/** What a session over its `rateLimit` gets. */
export type RateLimitPolicy = 'refuse' | 'disconnect';

/** What a slow consumer gets when its queue reaches `maxQueue` or its socket's buffer `wsHighWaterMark`. */
export type SlowConsumerPolicy = 'drop-oldest' | 'disconnect';

export interface BayeuxOptions {
  /** How long, in ms, a `/meta/connect` is held waiting for messages. Default `30000`. */
  timeout?: number;
  /** Advised pause, in ms, between the end of one connect and the next. Default `0`. */
  interval?: number;
  /**
   * How long, in ms, a session lives after its last connect ended without
   * a new one arriving; then it is gone. Default `10000`.
   */
  maxInterval?: number;
  /** Where sessions, subscriptions and queues live. Default `new MemoryEngine()`. */
  engine?: Engine;
  /** Accept publishes from clients that have not handshaken. Default `false`. */
  anonymousPublish?: boolean;
  /**
   * Most held `/meta/connect`s per client address (`req.ip`, so Express's
   * `trust proxy` applies); extra ones are answered at once with
   * `advice: { 'multiple-clients': true }`. `0` turns the limit off. Default `0`
   * (behind a reverse proxy every client can share one address).
   */
  maxConnectionsPerIp?: number;
  /**
   * Most handshakes a second this node accepts (a token bucket holding one
   * second's worth). A handshake beyond it is answered at once with
   * `429:node:handshake_rate_limited` and `advice: { reconnect:
   * 'handshake', interval }`, the interval drawn at random over as many
   * seconds as demand is over the rate, so a thundering herd spreads
   * itself out. `0` turns it off. Default `2000`.
   */
  maxHandshakeRate?: number;
  /**
   * Most handshakes a second from one client address (the address
   * `maxConnectionsPerIp` uses: `req.ip`). Beyond it:
   * `429:address:handshake_rate_limited`, with the same advice as
   * `maxHandshakeRate`. `0` turns it off. Default `0` (behind a reverse
   * proxy every client can share one address).
   */
  handshakeRatePerIp?: number;
  /**
   * Per-session rate limits, as token buckets: `{ messages: { perSecond,
   * burst }, bytes: { perSecond, burst } }` (either or both). Every
   * message counts but `/meta/handshake`, `/meta/connect` and
   * `/meta/disconnect`. A message over a limit is refused with
   * `429:messages:rate_limited` (or `429:bytes:rate_limited`), never
   * dropped silently; see `rateLimitPolicy`. Counted per node. Default:
   * none (off).
   */
  rateLimit?: RateLimitOptions;
  /**
   * What a session over its `rateLimit` gets: `'refuse'` refuses the
   * message; `'disconnect'` also ends the session (`disconnect` event,
   * reason `server`). Default `'refuse'`.
   */
  rateLimitPolicy?: RateLimitPolicy;
  /** Largest request body or WebSocket frame, in bytes; larger gets 413 `entity.too.large`. Default `1048576` (1 MiB). */
  maxBodyBytes?: number;
  /** Most messages in one request; more and the request is refused with 400. Default `1000`. */
  maxBatch?: number;
  /**
   * Largest message queued for subscribers, in bytes of its JSON text
   * (UTF-8, as sent: after the outgoing hooks), however it enters: a
   * client's publish, `cometd.publish()`, `cometd.deliver()`. A larger one
   * is not queued for anyone: a client's publish is answered
   * `successful: false` with `413:<max>:message_too_large`, and
   * `publish()`/`deliver()` reject with that `BayeuxError`. Keep it within
   * what your clients accept in one response or frame. Default:
   * `maxBodyBytes` (1 MiB unless set).
   */
  maxMessageBytes?: number;
  /**
   * Most messages waiting for one session (unacknowledged ones included).
   * Beyond it the `slowConsumer` policy applies. Default `10000`.
   */
  maxQueue?: number;
  /**
   * Most characters of serialized messages (bytes, for ASCII JSON) waiting
   * for one session, unacknowledged ones included. Beyond it the
   * `slowConsumer` policy applies, as for `maxQueue`. Default `4194304` (4 MiB).
   */
  maxQueueBytes?: number;
  /**
   * Most subscriptions one session may hold; a subscribe beyond it is
   * refused with `403:<maxSubscriptions>:subscription_limit`. Default `1000`.
   */
  maxSubscriptions?: number;
  /**
   * Most characters of per-session data (`ctx.session`, `cometd.session()`:
   * keys plus JSON values) one session may hold; a `set` beyond it rejects
   * with a `BayeuxError` `413:<max>:session_data_too_large`. Default `65536`.
   */
  maxSessionDataBytes?: number;
  /**
   * Deliver a client's publishes to its own session when it is subscribed
   * (as CometD). `false`: a session never receives its own publishes.
   * Default `true`.
   */
  broadcastToPublisher?: boolean;
  /**
   * Answer CometD's timesync extension (`ext.timesync` on handshake and
   * connect) with `{ tc, ts, p, a }`. Default `true`.
   */
  timesync?: boolean;
  /**
   * How long, in ms, a request body may take to arrive; a slower one is
   * answered `408 request.timeout` and its connection closed. `0` turns it
   * off. Default `10000`.
   */
  bodyTimeout?: number;
  /**
   * How long, in ms, the `middleware` given to `attach()` may take over a
   * WebSocket upgrade request. An upgrade whose middleware has neither
   * called `next` nor ended the response by then is refused with `503` and
   * its connection closed, so a hanging session store or auth call cannot
   * hold sockets open. (An upgrade whose client goes away while it waits
   * is closed at once, whatever this is.) `0` turns it off. Default `10000`.
   */
  upgradeTimeout?: number;
  /**
   * What happens to a session whose queue overflows `maxQueue` or whose
   * WebSocket buffers more than `wsHighWaterMark`: `'drop-oldest'` drops its
   * oldest waiting messages (and logs a warning); `'disconnect'` ends the
   * session with `advice: { reconnect: 'handshake' }`. Default `'drop-oldest'`.
   */
  slowConsumer?: SlowConsumerPolicy;
  /** Cross-origin access for long-polling. `true` = any origin. Default `false` (no CORS headers). */
  cors?: boolean | CorsOptions;
  /**
   * Where to log: any object with `error`, `warn`, `info`, `debug` (winston,
   * pino, `console`). Default: a winston logger writing warnings and errors
   * to stderr (see `logLevel`, `logFile`).
   */
  logger?: Logger;
  /** Level of the default logger. Default `'warn'`; `'debug'` when `debug` is true. */
  logLevel?: string;
  /** Shorthand for `logLevel: 'debug'`, as the Perl server's `Debug`. Default `false`. */
  debug?: boolean;
  /** Also write the default logger's output to this file. Default: none. */
  logFile?: string;
  /**
   * Services by name: `{ echo: fn }` answers `/service/echo`; `_handler`
   * answers any `/service/*` channel without its own handler. Default `{}`.
   */
  services?: Record<string, ServiceHandler>;
  /** Offer the CometD ack extension to clients that ask for it. Default `true`. */
  ack?: boolean;
  /**
   * Offer callback-polling (JSONP). Any page can read a JSONP answer, so an
   * app that authenticates Bayeux clients with cookies should turn it off.
   * Default `true`.
   */
  jsonp?: boolean;
  /** WebSocket: ping every this many ms, and close a socket that did not answer the last ping. Default `25000`. */
  wsPingInterval?: number;
  /** WebSocket: per-message deflate. Default `false` (it costs CPU and memory per socket). */
  wsPerMessageDeflate?: boolean;
  /** WebSocket: bytes buffered on a socket beyond which the `slowConsumer` policy applies. Default `4194304` (4 MiB). */
  wsHighWaterMark?: number;
  /**
   * Channel history, by channel pattern: `{ '/chat/**': { size: 100, ttl: 300_000 } }`.
   * Each channel matching a pattern (the most specific one applies) keeps
   * its last `size` messages (default `100`), each for at most `ttl` ms
   * (default `300000`); every copy delivered on it carries
   * `ext.position: { epoch, offset }`, and a `/meta/subscribe` with
   * `ext.recover` gets what it missed. Needs an engine with history
   * (MemoryEngine). Channels matching no pattern cost nothing. Default:
   * none (no history).
   */
  history?: Record<string, HistoryPatternOptions>;
  /**
   * Most characters of channel history kept: in total on this node with
   * MemoryEngine (the channels published to least recently lose their
   * oldest messages first), per channel on engines shared by several
   * nodes. Default: the engine's (`67108864`, 64 MiB, for MemoryEngine).
   */
  maxHistoryBytes?: number;
  /**
   * Who a session is: called once per successful handshake, after the
   * handshake middleware, with the same `ctx` (`ctx.req.user`,
   * `ctx.session`, a token in `handshake.ext`). Resolve to a user id, to
   * `{ id, info }` (`info`: small JSON shown to others, counted in
   * `maxSessionDataBytes`), or to undefined for an anonymous session.
   * Needed by `sessionsOf`, `deliverToUser`, `disconnectUser` and
   * `maxSessionsPerUser`; presence lists users by it. Default: none
   * (every session anonymous).
   */
  identify?: IdentifyFunction;
  /**
   * Channel patterns whose channels keep presence: `['/chat/**']`. Who is
   * subscribed to each such channel (by user) can be read
   * (`cometd.presence()`), `join` and `leave` fire, and clients that
   * subscribe with `ext.presence` get a snapshot and notices. Needs an
   * engine with presence (MemoryEngine, RedisEngine). Default: none.
   */
  presence?: string | readonly string[];
  /**
   * Most sessions read for one presence list: the snapshot a subscribe
   * with `ext.presence` replies with, and `cometd.presence()`. Counts
   * (`presenceCount`) are never capped. Default `1000`.
   */
  presenceLimit?: number;
  /**
   * Most live sessions one user (`identify`) may have; a handshake beyond
   * it is refused with `403:<max>:too_many_sessions` and
   * `advice.reconnect: 'none'`. `0`: no limit. Default `0`.
   */
  maxSessionsPerUser?: number;
}

/** The options after defaults and validation. */
export interface ResolvedOptions {
  timeout: number;
  interval: number;
  maxInterval: number;
  engine: Engine;
  anonymousPublish: boolean;
  maxConnectionsPerIp: number;
  maxHandshakeRate: number;
  handshakeRatePerIp: number;
  /** Undefined when off. */
  rateLimit: RateLimitOptions | undefined;
  rateLimitPolicy: RateLimitPolicy;
  maxBodyBytes: number;
  maxBatch: number;
  maxMessageBytes: number;
  maxQueue: number;
  maxQueueBytes: number;
  maxSubscriptions: number;
  maxSessionDataBytes: number;
  broadcastToPublisher: boolean;
  timesync: boolean;
  bodyTimeout: number;
  upgradeTimeout: number;
  slowConsumer: SlowConsumerPolicy;
  cors: CorsOptions | false;
  logger: Logger;
  /** The logger logs at debug level: trace every message (checked once, not per message). */
  debug: boolean;
  services: Record<string, ServiceHandler>;
  ack: boolean;
  jsonp: boolean;
  wsPingInterval: number;
  wsPerMessageDeflate: boolean;
  wsHighWaterMark: number;
  /** The channels that keep history; undefined when none does. */
  history: HistoryConfig | undefined;
  /** Undefined: the engine's default. */
  maxHistoryBytes: number | undefined;
  identify: IdentifyFunction | undefined;
  /** The channels that keep presence; undefined when none does. */
  presence: PresenceConfig | undefined;
  presenceLimit: number;
  maxSessionsPerUser: number;
}

const KNOWN = new Set([
  'timeout', 'interval', 'maxInterval', 'engine', 'anonymousPublish', 'maxConnectionsPerIp',
  'maxBodyBytes', 'maxBatch', 'maxQueue', 'slowConsumer', 'cors', 'logger', 'logLevel', 'debug',
  'logFile', 'services', 'ack', 'jsonp', 'wsPingInterval', 'wsPerMessageDeflate', 'wsHighWaterMark',
  'maxQueueBytes', 'maxSubscriptions', 'maxSessionDataBytes', 'broadcastToPublisher', 'timesync', 'bodyTimeout',
  'maxMessageBytes', 'upgradeTimeout', 'history', 'maxHistoryBytes',
  'maxHandshakeRate', 'handshakeRatePerIp', 'rateLimit', 'rateLimitPolicy',
  'identify', 'presence', 'presenceLimit', 'maxSessionsPerUser',
]);

/** Time options a Faye user might give in seconds. */
const TIME_OPTIONS = ['timeout', 'interval', 'maxInterval', 'wsPingInterval', 'bodyTimeout', 'upgradeTimeout'] as const;

/** Longest time option, in ms: Node's timers clamp anything longer to 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function integer(options: BayeuxOptions, name: keyof BayeuxOptions, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`option ${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function boolean(options: BayeuxOptions, name: keyof BayeuxOptions, fallback: boolean): boolean {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`option ${name} must be a boolean`);
  return value;
}

function resolveCors(value: BayeuxOptions['cors']): CorsOptions | false {
  if (value === undefined || value === false) return false;
  if (value === true) return { origin: '*', credentials: false, maxAge: 86400 };
  if (typeof value !== 'object' || value === null) throw new TypeError('option cors must be a boolean or an object');
  for (const key of Object.keys(value)) {
    if (key !== 'origin' && key !== 'credentials' && key !== 'maxAge') throw new TypeError(`unknown option cors.${key}`);
  }
  const origin = value.origin ?? '*';
  if (value.credentials === true && origin === '*') {
    throw new TypeError("option cors.credentials needs cors.origin to name the allowed origins, not '*'");
  }
  const maxAge = value.maxAge ?? 86400;
  if (typeof maxAge !== 'number' || !Number.isInteger(maxAge) || maxAge < 0) throw new TypeError('option cors.maxAge must be an integer >= 0');
  const okOrigin = typeof origin === 'string' || typeof origin === 'function' || origin instanceof RegExp ||
    (Array.isArray(origin) && origin.every((o) => typeof o === 'string'));
  if (!okOrigin) throw new TypeError('option cors.origin must be a string, a list of strings, a RegExp or a function');
  return { origin, credentials: value.credentials === true, maxAge };
}

function resolveBucket(value: unknown, name: string): RateBucket | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) throw new TypeError(`option ${name} must be { perSecond, burst }`);
  for (const key of Object.keys(value)) {
    if (key !== 'perSecond' && key !== 'burst') throw new TypeError(`unknown option ${name}.${key}`);
  }
  const { perSecond, burst } = value as Record<string, unknown>;
  if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0) {
    throw new TypeError(`option ${name}.perSecond must be a number above 0`);
  }
  if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 1) throw new TypeError(`option ${name}.burst must be an integer from 1`);
  return { perSecond, burst };
}

function resolveRateLimit(value: BayeuxOptions['rateLimit']): RateLimitOptions | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) throw new TypeError('option rateLimit must be { messages?, bytes? }');
  for (const key of Object.keys(value)) {
    if (key !== 'messages' && key !== 'bytes') throw new TypeError(`unknown option rateLimit.${key}`);
  }
  const messages = resolveBucket(value.messages, 'rateLimit.messages');
  const bytes = resolveBucket(value.bytes, 'rateLimit.bytes');
  if (!messages && !bytes) return undefined;
  const out: RateLimitOptions = {};
  if (messages) out.messages = messages;
  if (bytes) out.bytes = bytes;
  return out;
}

function defaultLogger(options: BayeuxOptions): winston.Logger {
  const level = options.logLevel ?? (options.debug ? 'debug' : 'warn');
  if (typeof level !== 'string' || !(level in winston.config.npm.levels)) {
    throw new TypeError(`option logLevel must be one of ${Object.keys(winston.config.npm.levels).join(', ')}`);
  }
  if (options.logFile !== undefined && typeof options.logFile !== 'string') throw new TypeError('option logFile must be a path');
  const transports: winston.transport[] = [
    new winston.transports.Console({ stderrLevels: Object.keys(winston.config.npm.levels) }),
  ];
  if (options.logFile) transports.push(new winston.transports.File({ filename: options.logFile }));
  return winston.createLogger({
    level,
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.printf((info) => `${String(info['timestamp'])} bayeux ${info.level}: ${String(info.message)}`),
    ),
    transports,
  });
}

/** Validate `options` and fill in defaults. Throws a `TypeError` naming a bad or unknown option. */
export function resolveOptions(options: BayeuxOptions = {}): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('bayeux() options must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`unknown option ${key}`);
  }
  const engine = options.engine ?? new MemoryEngine();
  for (const method of ['open', 'createSession', 'publish', 'take'] as const) {
    if (typeof (engine as unknown as Record<string, unknown>)[method] !== 'function') {
      throw new TypeError('option engine must implement the Engine interface');
    }
  }
  const slowConsumer = options.slowConsumer ?? 'drop-oldest';
  if (slowConsumer !== 'drop-oldest' && slowConsumer !== 'disconnect') {
    throw new TypeError("option slowConsumer must be 'drop-oldest' or 'disconnect'");
  }
  const rateLimitPolicy = options.rateLimitPolicy ?? 'refuse';
  if (rateLimitPolicy !== 'refuse' && rateLimitPolicy !== 'disconnect') {
    throw new TypeError("option rateLimitPolicy must be 'refuse' or 'disconnect'");
  }
  const services = options.services ?? {};
  if (typeof services !== 'object' || services === null) throw new TypeError('option services must be an object');
  for (const [name, fn] of Object.entries(services)) {
    if (typeof fn !== 'function') throw new TypeError(`option services.${name} must be a function`);
  }
  if (options.logger !== undefined) {
    const logger = options.logger as unknown as Record<string, unknown> | null;
    for (const method of ['error', 'warn', 'info', 'debug']) {
      if (typeof logger?.[method] !== 'function') throw new TypeError(`option logger must have an ${method}(message) method`);
    }
  }
  const logger = options.logger ?? defaultLogger(options);
  const level = options.logLevel ?? (options.debug ? 'debug' : undefined);
  const maxBodyBytes = integer(options, 'maxBodyBytes', 1_048_576, 64);
  if (options.identify !== undefined) {
    if (typeof options.identify !== 'function') throw new TypeError('option identify must be a function (handshake, ctx) => userId | { id, info } | undefined');
    checkEngine('identify', engine);
  }
  const maxSessionsPerUser = integer(options, 'maxSessionsPerUser', 0, 0);
  if (maxSessionsPerUser > 0 && options.identify === undefined) throw new TypeError('option maxSessionsPerUser needs the identify option');
  const resolved: ResolvedOptions = {
    timeout: integer(options, 'timeout', 30_000, 0, MAX_TIMER_MS),
    interval: integer(options, 'interval', 0, 0, MAX_TIMER_MS),
    maxInterval: integer(options, 'maxInterval', 10_000, 1, MAX_TIMER_MS),
    engine,
    anonymousPublish: boolean(options, 'anonymousPublish', false),
    maxConnectionsPerIp: integer(options, 'maxConnectionsPerIp', 0, 0),
    maxHandshakeRate: integer(options, 'maxHandshakeRate', 2000, 0),
    handshakeRatePerIp: integer(options, 'handshakeRatePerIp', 0, 0),
    rateLimit: resolveRateLimit(options.rateLimit),
    rateLimitPolicy,
    maxBodyBytes,
    maxBatch: integer(options, 'maxBatch', 1000, 1),
    maxMessageBytes: integer(options, 'maxMessageBytes', maxBodyBytes, 64),
    maxQueue: integer(options, 'maxQueue', 10_000, 1),
    slowConsumer,
    maxQueueBytes: integer(options, 'maxQueueBytes', 4 * 1_048_576, 1024),
    maxSubscriptions: integer(options, 'maxSubscriptions', 1000, 1),
    maxSessionDataBytes: integer(options, 'maxSessionDataBytes', 65_536, 64),
    broadcastToPublisher: boolean(options, 'broadcastToPublisher', true),
    timesync: boolean(options, 'timesync', true),
    bodyTimeout: integer(options, 'bodyTimeout', 10_000, 0, MAX_TIMER_MS),
    upgradeTimeout: integer(options, 'upgradeTimeout', 10_000, 0, MAX_TIMER_MS),
    cors: resolveCors(options.cors),
    logger,
    debug: level === 'debug' || level === 'silly' || (options.logger !== undefined && options.debug === true),
    services,
    ack: boolean(options, 'ack', true),
    jsonp: boolean(options, 'jsonp', true),
    wsPingInterval: integer(options, 'wsPingInterval', 25_000, 0, MAX_TIMER_MS),
    wsPerMessageDeflate: boolean(options, 'wsPerMessageDeflate', false),
    wsHighWaterMark: integer(options, 'wsHighWaterMark', 4 * 1_048_576, 1024),
    history: resolveHistory(options.history, engine),
    maxHistoryBytes: options.maxHistoryBytes === undefined ? undefined : integer(options, 'maxHistoryBytes', 0, 1024),
    identify: options.identify,
    presence: resolvePresence(options.presence, engine),
    presenceLimit: integer(options, 'presenceLimit', 1000, 1),
    maxSessionsPerUser,
  };
  warnAboutSeconds(options, logger);
  return resolved;
}

/**
 * Faye takes its times in seconds; here they are milliseconds. A time
 * option from 1 to 999 is almost always a Faye habit (`timeout: 45`), so
 * say so once per option.
 */
function warnAboutSeconds(options: BayeuxOptions, logger: Logger): void {
  for (const name of TIME_OPTIONS) {
    const value = options[name];
    if (typeof value === 'number' && value > 0 && value < 1000) {
      logger.warn(`option ${name} is ${value}: milliseconds here; Faye takes seconds (did you mean ${value * 1000}?)`);
    }
  }
}
