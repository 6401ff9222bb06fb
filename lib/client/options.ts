/** The client's options: their types, defaults, and validation. */

import { DEFAULT_MAX_RESPONSE_BYTES, MAX_TIMER_MS, MIN_MAX_RESPONSE_BYTES } from './constants.js';
import type { BayeuxError, BayeuxClientError } from './errors.js';
import type { ClientLogger } from './logger.js';
import type { FetchFunction } from './long-polling.js';
import type { BayeuxExtension, BayeuxMessage, TransportName } from './message.js';
import type { WebSocketConstructor } from './websocket.js';

/** Options for `new BayeuxClient(url, options)`. Unknown options throw a `TypeError` naming the option. */
export interface BayeuxClientOptions {
  /**
   * Transports to use, most preferred first, as Bayeux connection types.
   * The first one the server also supports (`supportedConnectionTypes` in
   * its handshake reply) and that can be opened is used; when a WebSocket
   * cannot be opened the client falls back to the next one.
   * @default ['websocket', 'long-polling']
   */
  transports?: TransportName[];
  /**
   * Use the CometD ack extension when the server offers it, so messages
   * lost with a dropped connect reply are sent again (and copies the
   * client already delivered are dropped).
   * @default true
   */
  ack?: boolean;
  /**
   * First delay, in ms, before reconnecting after a network failure. Each
   * further failure doubles it, up to {@link maxRetryDelay}; the actual
   * delay is drawn at random between 0 and all of it (full jitter), and is
   * never shorter than the server's advised `interval`. The same
   * schedule spaces handshakes that follow each other within
   * {@link maxRetryDelay}, whatever asked for them (the server's advice, a
   * refused connect, `connect()` or `reconnect()`), and connects after
   * more than three in a row came back within 500 ms with nothing (a
   * server that does not hold them). 1 to 2147483647.
   * @default 1000
   */
  retryDelay?: number;
  /**
   * Longest delay, in ms, between reconnection attempts; also how soon
   * after the previous handshake a new one counts as repeated and waits.
   * 1 to 2147483647.
   * @default 30000
   */
  maxRetryDelay?: number;
  /**
   * Most messages (publishes, subscribes, unsubscribes) waiting to be sent,
   * e.g. while offline. Beyond it, `publish()` and `subscribe()` reject
   * with a `BayeuxClientError` of type `queue-full`.
   * @default 1000
   */
  maxQueue?: number;
  /**
   * Most messages sent in one request or WebSocket frame.
   * @default 100
   */
  maxBatch?: number;
  /**
   * How long, in ms, to wait for an answer before giving up on a request
   * (beyond the server's connect timeout, for `/meta/connect`), and for a
   * WebSocket to open. A request that times out counts as a network failure.
   * 1 to 2147483647.
   * @default 10000
   */
  maxNetworkDelay?: number;
  /**
   * Extra HTTP headers for long-polling requests (e.g. `Authorization`).
   * Browsers do not let a page set headers on a WebSocket; use an
   * extension that adds `ext` to the handshake instead.
   * @default {}
   */
  headers?: Record<string, string>;
  /**
   * `fetch`'s `credentials` for long-polling requests, e.g. `'include'` to
   * send cookies cross-origin.
   * @default undefined (fetch's own default, `'same-origin'`)
   */
  credentials?: 'omit' | 'same-origin' | 'include';
  /**
   * Extensions to install, as if passed to `client.use()` in order.
   * @default []
   */
  extensions?: BayeuxExtension[];
  /**
   * Called with every failed message, as `onError(message, error)`: each
   * reply with `successful: false` (the handshake and connects included),
   * and each message the client refused to send (an invalid channel, a full
   * queue), given as the message it would have sent with `successful:
   * false` and `error` added. `error` is the same failure as an `Error`
   * (`BayeuxError` parsed from the reply's `error`, or `BayeuxClientError`).
   * @default undefined
   */
  onError?: (message: BayeuxMessage, error: BayeuxError | BayeuxClientError) => void;
  /**
   * The WebSocket constructor.
   * @default globalThis.WebSocket; from `express-bayeux/client` in Node
   * without a global WebSocket, the `ws` package's
   */
  WebSocket?: WebSocketConstructor;
  /**
   * The `fetch` used for long-polling.
   * @default globalThis.fetch
   */
  fetch?: FetchFunction;
  /**
   * Largest response body or WebSocket frame the client reads, in bytes
   * (1024 to 2147483647). A longer one is abandoned (a response is
   * cancelled as soon as it passes the limit, or before reading when its
   * `Content-Length` does; a socket is closed and opened again) and
   * reported as `error`, a `BayeuxClientError` of type `too-large` naming
   * the limit (and the size, when the response declares it). The messages
   * it carried are skipped: with acks, the next `/meta/connect`
   * acknowledges its batch unread, so the server drops it instead of
   * sending it again, and the messages after it arrive. Messages the
   * server sent in the same response as the one too large are skipped with
   * it. In Node 20,
   * the `ws` socket the client opens by default refuses such a frame
   * before buffering it; other WebSockets (browsers', Node 22's, a
   * `WebSocket` option) deliver it whole first. A `fetch` whose response
   * has no `body` stream is read whole and then checked.
   * @default 16777216 (16 MiB)
   */
  maxResponseBytes?: number;
  /**
   * Use CometD's timesync extension: send `ext.timesync` on handshakes and
   * connects and estimate the offset of the server's clock from the
   * answers, for {@link BayeuxClient.serverTime}. Servers that do not
   * answer the extension ignore it.
   * @default false
   */
  timesync?: boolean;
  /**
   * Log state changes (handshake, connect, reconnect, backoff) at `info`
   * and every message sent and received at `debug` (channel, the start of
   * the clientId, transport, the start of the data; never `ext`), to
   * `logger`, or to `console` when no logger is given.
   * @default false
   */
  debug?: boolean;
  /**
   * Where to log: any object with `error`, `warn`, `info` and `debug`
   * methods taking a string (`console`, winston, pino). Giving one turns
   * logging on; its own level decides what is written.
   * @default undefined (nothing is logged; `console` when `debug` is true)
   */
  logger?: ClientLogger;
}

/** Options with every default applied. */
export interface ResolvedOptions {
  transports: TransportName[];
  ack: boolean;
  retryDelay: number;
  maxRetryDelay: number;
  maxQueue: number;
  maxBatch: number;
  maxNetworkDelay: number;
  headers: Record<string, string>;
  credentials: 'omit' | 'same-origin' | 'include' | undefined;
  extensions: BayeuxExtension[];
  onError: ((message: BayeuxMessage, error: BayeuxError | BayeuxClientError) => void) | undefined;
  WebSocket: WebSocketConstructor | undefined;
  fetch: FetchFunction | undefined;
  maxResponseBytes: number;
  timesync: boolean;
  logger: ClientLogger | undefined;
}

const KNOWN = new Set([
  'transports', 'ack', 'retryDelay', 'maxRetryDelay', 'maxQueue', 'maxBatch', 'maxNetworkDelay',
  'headers', 'credentials', 'extensions', 'onError', 'WebSocket', 'fetch',
  'maxResponseBytes', 'timesync', 'debug', 'logger',
]);

const TRANSPORTS: readonly TransportName[] = ['websocket', 'long-polling'];

/** Validate `options` and apply the defaults; throws a `TypeError` naming a bad option. */
export function resolveOptions(options: BayeuxClientOptions | undefined): ResolvedOptions {
  const given: BayeuxClientOptions = options ?? {};
  if (typeof given !== 'object' || given === null) throw new TypeError('options must be an object');
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key)) throw new TypeError(`Unknown option: ${key}`);
  }

  const transports = given.transports ?? ['websocket', 'long-polling'];
  if (!Array.isArray(transports) || transports.length === 0
    || !transports.every((name) => TRANSPORTS.includes(name))
    || new Set(transports).size !== transports.length) {
    throw new TypeError(`option transports must be a non-empty list of distinct names from: ${TRANSPORTS.join(', ')}`);
  }

  const retryDelay = number(given, 'retryDelay', 1000, 1);
  const maxRetryDelay = number(given, 'maxRetryDelay', 30_000, 1);
  if (maxRetryDelay < retryDelay) throw new TypeError('option maxRetryDelay must not be less than retryDelay');

  for (const key of ['ack', 'timesync', 'debug'] as const) {
    if (given[key] !== undefined && typeof given[key] !== 'boolean') throw new TypeError(`option ${key} must be a boolean`);
  }
  const logger = given.logger;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null
    || !(['error', 'warn', 'info', 'debug'] as const).every((level) => typeof logger[level] === 'function'))) {
    throw new TypeError('option logger must be an object with error, warn, info and debug methods');
  }
  if (given.headers !== undefined && (typeof given.headers !== 'object' || given.headers === null
    || !Object.values(given.headers).every((value) => typeof value === 'string'))) {
    throw new TypeError('option headers must be an object of strings');
  }
  if (given.credentials !== undefined && !['omit', 'same-origin', 'include'].includes(given.credentials)) {
    throw new TypeError("option credentials must be 'omit', 'same-origin' or 'include'");
  }
  if (given.extensions !== undefined && !Array.isArray(given.extensions)) throw new TypeError('option extensions must be an array');
  for (const key of ['onError', 'WebSocket', 'fetch'] as const) {
    if (given[key] !== undefined && typeof given[key] !== 'function') throw new TypeError(`option ${key} must be a function`);
  }

  return {
    transports: [...transports],
    ack: given.ack ?? true,
    retryDelay,
    maxRetryDelay,
    maxQueue: number(given, 'maxQueue', 1000, 1),
    maxBatch: number(given, 'maxBatch', 100, 1),
    maxNetworkDelay: number(given, 'maxNetworkDelay', 10_000, 1),
    headers: { ...given.headers },
    credentials: given.credentials,
    extensions: [...(given.extensions ?? [])],
    onError: given.onError,
    WebSocket: given.WebSocket,
    fetch: given.fetch,
    maxResponseBytes: number(given, 'maxResponseBytes', DEFAULT_MAX_RESPONSE_BYTES, MIN_MAX_RESPONSE_BYTES),
    timesync: given.timesync ?? false,
    logger: logger ?? (given.debug ? console : undefined),
  };
}

/** A number option in min..max; the default max is the longest delay a timer honours. */
function number(options: BayeuxClientOptions, key: keyof BayeuxClientOptions, fallback: number, min: number, max = MAX_TIMER_MS): number {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new TypeError(`option ${key} must be a number from ${min} to ${max}`);
  }
  return value;
}
