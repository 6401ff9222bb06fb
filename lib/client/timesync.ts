/**
 * The client half of CometD's timesync extension, on the wire as CometD's
 * `TimeSyncExtension.js` speaks it:
 *
 * - handshake and connect requests carry `ext.timesync = { tc, l, o }`: the
 *   client's clock when sending, and its current lag and offset estimates;
 * - the server answers `ext.timesync = { tc, ts, p, a }`: the echoed `tc`,
 *   its clock when it received the request, the ms it took to answer (a
 *   held connect's wait included) and the accuracy of the client's estimate.
 *
 * Each answer gives a sample, assuming the lag is the same both ways:
 * lag `l2 = (now - tc - p) / 2` and offset `o2 = ts - tc - l2`. The estimates
 * are the averages of the last ten samples, rounded as CometD rounds them
 * (half away from zero). The server's clock is then `Date.now() + offset`.
 */

import { TIMESYNC_SAMPLES } from './constants.js';
import type { BayeuxMessage } from './message.js';

/** Channels whose requests carry timesync and whose replies answer it. */
const SYNCED = new Set(['/meta/handshake', '/meta/connect']);

export class TimeSync {
  #lags: number[] = [];
  #offsets: number[] = [];
  #lag = 0;
  #offset = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The estimated offset, in ms, of the server's clock from this one (server = client + offset). */
  get offset(): number {
    return this.#offset;
  }

  /** The estimated one-way network lag, in ms. */
  get lag(): number {
    return this.#lag;
  }

  /** The server's clock now, as estimated: `Date.now() + offset`. */
  serverTime(): number {
    return this.#now() + this.#offset;
  }

  /** Add `ext.timesync` to a handshake or connect about to be sent. */
  outgoing(message: BayeuxMessage): void {
    if (!SYNCED.has(message.channel)) return;
    message.ext = { ...message.ext, timesync: { tc: this.#now(), l: this.#lag, o: this.#offset } };
  }

  /** Take a sample from a handshake or connect reply that answers the extension. */
  incoming(message: BayeuxMessage): void {
    if (!SYNCED.has(message.channel)) return;
    const sync = message.ext?.['timesync'];
    if (typeof sync !== 'object' || sync === null) return;
    const { tc, ts, p } = sync as { tc?: unknown; ts?: unknown; p?: unknown };
    // A server's numbers are checked, not trusted: a sample from garbage would poison the average.
    if (!isFiniteNumber(tc) || !isFiniteNumber(ts) || !isFiniteNumber(p) || p < 0) return;
    const now = this.#now();
    if (tc > now) return;
    const l2 = (now - tc - p) / 2;
    const o2 = ts - tc - l2;
    if (!Number.isFinite(o2)) return;
    this.#lags.push(l2);
    this.#offsets.push(o2);
    if (this.#offsets.length > TIMESYNC_SAMPLES) {
      this.#offsets.shift();
      this.#lags.shift();
    }
    this.#lag = roundHalfAway(average(this.#lags));
    this.#offset = roundHalfAway(average(this.#offsets));
  }

  /** Forget every sample. */
  reset(): void {
    this.#lags = [];
    this.#offsets = [];
    this.#lag = 0;
    this.#offset = 0;
  }
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function average(values: readonly number[]): number {
  let sum = 0;
  for (const value of values) sum += value;
  return sum / values.length;
}

/** Round half away from zero, as `Number.prototype.toFixed()` does. */
function roundHalfAway(value: number): number {
  return Math.sign(value) * Math.round(Math.abs(value)) || 0;
}
