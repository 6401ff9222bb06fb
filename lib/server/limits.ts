/**
 * Limits on what clients may send: admission control for handshakes
 * (`maxHandshakeRate` per node, `handshakeRatePerIp` per client address)
 * and per-session rate limits (`rateLimit`, `rateLimitPolicy`). Token
 * buckets, per node: on Redis each node counts what reaches it.
 */
import { LRUCache } from 'lru-cache';
import type { RateLimitOptions } from '../options.js';

/** Most client addresses, and most sessions, whose buckets a node keeps (least recently used go first). */
const MAX_BUCKETS = 100_000;

/** Longest back-off a refused handshake is advised, in ms (the package client clamps advice to a minute). */
const MAX_ADVISED_MS = 60_000;

/**
 * A token bucket: `rate` tokens a second, holding at most `burst`. Full
 * when made. `take(n)` spends `n` tokens if it has them.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #at: number;

  constructor(rate: number, burst: number, now = performance.now()) {
    this.#rate = rate / 1000;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Spend `n` tokens if there are that many (a cost above `burst` is never allowed). */
  take(n: number, now = performance.now()): boolean {
    const tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate);
    this.#at = now;
    if (tokens < n) {
      this.#tokens = tokens;
      return false;
    }
    this.#tokens = tokens - n;
    return true;
  }
}

/** Why a handshake was refused: the node's rate, or its address's. */
export type HandshakeRefusal = 'node' | 'address';

/** Admission control for handshakes on one node. */
export class Admission {
  readonly #node: TokenBucket | undefined;
  readonly #perIp: number;
  readonly #byIp: LRUCache<string, TokenBucket> | undefined;
  /** Refusals in the current second, and the one before: how far demand is over the rate. */
  #refused = 0;
  #refusedBefore = 0;
  #second = 0;

  constructor(maxHandshakeRate: number, handshakeRatePerIp: number) {
    this.#node = maxHandshakeRate > 0 ? new TokenBucket(maxHandshakeRate, maxHandshakeRate) : undefined;
    this.#perIp = handshakeRatePerIp;
    this.#byIp = handshakeRatePerIp > 0 ? new LRUCache({ max: MAX_BUCKETS }) : undefined;
  }

  /** Admit a handshake from `ip` (undefined: counted for the node only), or say which limit refuses it. */
  admit(ip: string | undefined): HandshakeRefusal | undefined {
    const now = performance.now();
    if (this.#byIp && ip !== undefined) {
      let bucket = this.#byIp.get(ip);
      if (!bucket) this.#byIp.set(ip, (bucket = new TokenBucket(this.#perIp, this.#perIp, now)));
      if (!bucket.take(1, now)) return this.#refuse(now, 'address');
    }
    if (this.#node && !this.#node.take(1, now)) return this.#refuse(now, 'node');
    return undefined;
  }

  /**
   * The back-off a refused handshake is advised, in ms: drawn at random
   * over as many seconds as the demand of the last second is over the
   * rate (at least one second), so the refused come back spread over the
   * time the node needs to admit them. `rate`: the limit that refused.
   */
  backoff(rate: number): number {
    const over = Math.max(this.#refused, this.#refusedBefore) / Math.max(1, rate);
    const window = Math.min(MAX_ADVISED_MS, 1000 * Math.max(1, over));
    return Math.ceil(Math.random() * window);
  }

  #refuse(now: number, why: HandshakeRefusal): HandshakeRefusal {
    const second = Math.floor(now / 1000);
    if (second !== this.#second) {
      this.#refusedBefore = second === this.#second + 1 ? this.#refused : 0;
      this.#refused = 0;
      this.#second = second;
    }
    this.#refused++;
    return why;
  }
}

/** Which of a session's limits a message went over. */
export type RateLimited = 'messages' | 'bytes';

/** One session's buckets. */
interface SessionBuckets {
  messages: TokenBucket | undefined;
  bytes: TokenBucket | undefined;
}

/** Per-session rate limits on one node (`rateLimit`). */
export class RateLimits {
  readonly #options: RateLimitOptions;
  readonly #sessions = new LRUCache<string, SessionBuckets>({ max: MAX_BUCKETS });
  /** The bytes limit needs each message's size. */
  readonly measuresBytes: boolean;

  constructor(options: RateLimitOptions) {
    this.#options = options;
    this.measuresBytes = options.bytes !== undefined;
  }

  /** Count one message of `bytes` from `clientId`; the limit it goes over, if any. */
  check(clientId: string, bytes: number): RateLimited | undefined {
    let buckets = this.#sessions.get(clientId);
    const { messages, bytes: byteLimit } = this.#options;
    if (!buckets) {
      buckets = {
        messages: messages ? new TokenBucket(messages.perSecond, messages.burst) : undefined,
        bytes: byteLimit ? new TokenBucket(byteLimit.perSecond, byteLimit.burst) : undefined,
      };
      this.#sessions.set(clientId, buckets);
    }
    const now = performance.now();
    if (buckets.messages && !buckets.messages.take(1, now)) return 'messages';
    if (buckets.bytes && !buckets.bytes.take(bytes, now)) return 'bytes';
    return undefined;
  }

  /** The session ended here: forget its buckets. */
  forget(clientId: string): void {
    this.#sessions.delete(clientId);
  }
}
