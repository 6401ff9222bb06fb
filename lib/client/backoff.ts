/**
 * When the client tries again. One schedule for every kind of retry:
 * `retryDelay` doubling with each further try up to `maxRetryDelay`, the
 * delay drawn at random between 0 and all of it ("full jitter", so clients
 * that lost the same server do not come back in step, nor bunched at one
 * end of the range), and never shorter than the interval the server
 * advised (which a draining or overloaded server randomises itself). One
 * timer, so a new retry or handshake replaces the one waiting.
 *
 * - Retries after a network failure or a refusal ({@link Backoff.retry}),
 *   until {@link Backoff.reset} (a connect got through, or the caller
 *   started afresh).
 * - Handshakes ({@link Backoff.handshake}): one less than `maxRetryDelay`
 *   after the previous one waits, whatever asked for it (the server's
 *   advice, a refused connect, `connect()`, `reconnect()`); any handshake
 *   waits at least the server's advised interval.
 * - The connect loop's idle polls use {@link Backoff.delay} for their own count.
 */

import { timerDelay } from './constants.js';
import type { ClientLog } from './logger.js';
import type { ResolvedOptions } from './options.js';

export class Backoff {
  readonly #options: Pick<ResolvedOptions, 'retryDelay' | 'maxRetryDelay'>;
  readonly #log: ClientLog;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Retries since the last reset. */
  #attempt = 0;
  /** When the last handshake was sent, and how many came too soon after the one before. */
  #lastHandshakeAt: number | undefined;
  #handshakeAttempt = 0;

  constructor(options: Pick<ResolvedOptions, 'retryDelay' | 'maxRetryDelay'>, log: ClientLog) {
    this.#options = options;
    this.#log = log;
  }

  /** The delay after `n` earlier tries: at random from 0 to `retryDelay * 2^n`, at most `maxRetryDelay` (full jitter). */
  delay(n: number): number {
    const base = Math.min(this.#options.maxRetryDelay, this.#options.retryDelay * 2 ** Math.min(n, 30));
    return Math.random() * base;
  }

  /** Call `fn` after the next delay on the schedule, and at least `minimum` ms (the server's interval). */
  retry(fn: () => void, minimum = 0): void {
    const n = this.#attempt;
    this.#attempt++;
    const delay = timerDelay(Math.max(minimum, this.delay(n)));
    this.#log.info(`bayeux backoff: retrying in ${Math.round(delay)} ms (attempt ${this.#attempt})`);
    this.#wait(delay, fn);
  }

  /** Start the schedule again from `retryDelay`. */
  reset(): void {
    this.#attempt = 0;
  }

  /** Cancel the retry or handshake waiting, if any. */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * A handshake is due: call `send` now (after `minimum` ms, the server's
   * interval, when it advised one), or, when the previous one was sent
   * less than `maxRetryDelay` ago, after a delay on the schedule (and at
   * least `minimum` ms). A session that lived longer handshakes again at once.
   */
  handshake(send: () => void, minimum: number): void {
    const last = this.#lastHandshakeAt;
    const repeated = last !== undefined && Date.now() - last < this.#options.maxRetryDelay;
    this.#handshakeAttempt = repeated ? this.#handshakeAttempt + 1 : 0;
    if (this.#handshakeAttempt === 0) {
      if (minimum > 0) this.#wait(timerDelay(minimum), send);
      else send();
      return;
    }
    const delay = timerDelay(Math.max(minimum, this.delay(this.#handshakeAttempt - 1)));
    this.#log.info(`bayeux backoff: handshake ${this.#handshakeAttempt} in a row, waiting ${Math.round(delay)} ms`);
    this.#wait(delay, send);
  }

  /** A handshake went out now (what {@link handshake} measures from). */
  handshakeSent(): void {
    this.#lastHandshakeAt = Date.now();
  }

  #wait(delay: number, fn: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      fn();
    }, delay);
  }
}
