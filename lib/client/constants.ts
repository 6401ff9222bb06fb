/**
 * The client's limits and the ranges it keeps the server's advice in. A
 * server is trusted to speak Bayeux, not to be sane: advice outside these
 * ranges is clamped into them.
 */

/** Longest delay Node's and browsers' timers honour; anything longer fires after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** `advice.interval` is clamped to 0..this many ms (one minute). */
export const MAX_ADVICE_INTERVAL = 60_000;

/** `advice.timeout` is clamped to 0..this many ms (ten minutes). */
export const MAX_ADVICE_TIMEOUT = 600_000;

/**
 * A connect cycle (answer plus `advice.interval`) shorter than this, that
 * brought no message, is an idle poll: a server that answers held connects
 * at once, or asks for polling with no interval.
 */
export const MIN_IDLE_POLL_MS = 500;

/** Idle polls in a row allowed before the connect loop backs off. */
export const IDLE_POLLS_ALLOWED = 3;

/**
 * Handshakes in a row answered by something that is not a Bayeux server (a
 * 4xx status other than 408 and 429, a body that is not Bayeux JSON, no
 * handshake reply, no usable transport) before the client gives up and
 * rejects what waits: a wrong URL is a mistake to report, not a network
 * failure to retry for ever.
 */
export const MAX_NOT_BAYEUX_HANDSHAKES = 3;

/** Default `maxResponseBytes`: 16 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1_048_576;

/** Smallest `maxResponseBytes`: 1 KiB. */
export const MIN_MAX_RESPONSE_BYTES = 1024;

/** Most offset and lag samples the timesync extension averages, as CometD's. */
export const TIMESYNC_SAMPLES = 10;

/** Longest data shown in a debug trace, in characters. */
export const TRACE_DATA_CHARS = 200;

/** A delay made safe for `setTimeout`: finite, at least 0, at most {@link MAX_TIMER_MS}. */
export function timerDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) return ms > 0 ? MAX_TIMER_MS : 0;
  return Math.min(ms, MAX_TIMER_MS);
}
