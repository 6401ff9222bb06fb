/**
 * What the engine's parts read from the engine itself: the limits the
 * Server gave at `open()`, the retention that grows with session ttls, and
 * the way back to the Server (`EngineHost`). One object each, handed to
 * the parts that read them, instead of a closure per value.
 */
import type { EngineConfig, EngineHost, PresenceChange } from '../engine.js';
import type { QueueLimits } from './local-session.js';
import type { ResolvedOptions } from './options.js';
import { describeError } from './replies.js';

/**
 * Default `maxHistoryBytes` on RedisEngine: characters (bytes of UTF-8,
 * with 14 of overhead per message) of history kept per channel.
 */
export const DEFAULT_REDIS_MAX_HISTORY_BYTES = 1_048_576;

/** Limits and retention: set by `open()` and by session ttls, read by publish, fan-out, loads and expiry. */
export class EngineSettings {
  readonly #options: ResolvedOptions;
  #queue: QueueLimits = { maxQueue: Infinity, maxQueueBytes: Infinity };
  #retention: number;
  #logLength: string;
  #logBytes: string;
  /** `maxSubscriptions` as a script argument ('' none). */
  maxSubscriptions = '';
  /** `maxSessionDataBytes` as a script argument ('' none). */
  maxSessionDataBytes = '';
  /** `maxHistoryBytes` (per channel) as a script argument. */
  historyBytes = String(DEFAULT_REDIS_MAX_HISTORY_BYTES);

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#retention = options.logRetention;
    this.#logLength = String(options.logLength);
    this.#logBytes = String(options.maxLogBytes);
  }

  /** The Server's limits, from `Engine.open`. */
  configure(config: EngineConfig): void {
    this.#queue = { maxQueue: config.maxQueue, maxQueueBytes: config.maxQueueBytes };
    this.maxSubscriptions = argument(config.maxSubscriptions);
    this.maxSessionDataBytes = argument(config.maxSessionDataBytes);
    this.historyBytes = config.maxHistoryBytes === undefined ? String(DEFAULT_REDIS_MAX_HISTORY_BYTES) : argument(config.maxHistoryBytes);
    const maxQueue = config.maxQueue;
    this.#logLength = String(Number.isFinite(maxQueue) ? Math.max(1, Math.min(this.#options.logLength, Math.floor(maxQueue))) : this.#options.logLength);
    const maxBytes = config.maxQueueBytes;
    this.#logBytes = String(Number.isFinite(maxBytes) ? Math.max(1024, Math.min(this.#options.maxLogBytes, Math.floor(maxBytes))) : this.#options.maxLogBytes);
  }

  /** `maxShardLogBytes` as a script argument. */
  get shardLogBytes(): string {
    return String(this.#options.maxShardLogBytes);
  }

  /** A session's queue bounds (`maxQueue`, `maxQueueBytes`). */
  get queue(): QueueLimits {
    return this.#queue;
  }

  /** MAXLEN of a log or box: what a session may have waiting, at most `logLength`. */
  get logLength(): string {
    return this.#logLength;
  }

  /** Most bytes of a log: `maxLogBytes`, at most the Server's `maxQueueBytes`. */
  get logBytes(): string {
    return this.#logBytes;
  }

  /** How long logs keep entries and this node keeps an untouched session, in ms: `logRetention`, raised to the longest session ttl seen. */
  get retention(): number {
    return this.#retention;
  }

  /** A session was given `ttl` ms: logs keep entries at least that long. */
  retain(ttl: number): void {
    if (Number.isFinite(ttl) && ttl > this.#retention) this.#retention = Math.ceil(ttl);
  }
}

function argument(limit: number): string {
  return Number.isFinite(limit) ? String(Math.max(0, Math.floor(limit))) : '';
}

/** The Server, as the engine's parts reach it: set at `open()`; a throwing host is logged, never thrown into Redis callbacks. */
export class HostLink {
  #host: EngineHost | undefined;
  readonly #log: (message: string) => void;

  constructor(log: (message: string) => void) {
    this.#log = log;
  }

  set host(host: EngineHost) {
    this.#host = host;
  }

  /** `EngineHost.wake` */
  wake(ids: readonly string[]): void {
    try {
      this.#host?.wake(ids);
    } catch (err) {
      this.#log(`express-bayeux: EngineHost.wake threw: ${describeError(err)}`);
    }
  }

  /** `EngineHost.presence` */
  presence(change: PresenceChange): void {
    try {
      this.#host?.presence?.(change);
    } catch (err) {
      this.#log(`express-bayeux: EngineHost.presence threw: ${describeError(err)}`);
    }
  }

  /** `EngineHost.expired` */
  expired(clientId: string): void {
    try {
      this.#host?.expired(clientId);
    } catch (err) {
      this.#log(`express-bayeux: EngineHost.expired threw: ${describeError(err)}`);
    }
  }
}
