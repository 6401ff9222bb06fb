/**
 * Telling the Server which sessions have messages: a session held here is
 * woken once however many entries reach it, and the wakes of a moment go
 * in one call, so a run of publishes reaches a socket in one frame.
 *
 * Pacing, a delay for the network (the Server still coalesces per tick):
 * - After a quiet spell a wake goes out at the end of the current turn of
 *   the event loop, unless this node's own publishes are still on their
 *   way to Redis; then it waits for them, up to `WAKE_MAX_DELAY_MS`.
 * - A session woken again within `WAKE_INTERVAL_MS` of its last wake
 *   waits for the rest of that interval, so under a steady flow to the
 *   same sessions a frame carries several announcements' messages instead
 *   of one's. At full load on one channel that halves the frames per
 *   message (and the writes, and the parses in the clients). A session
 *   not woken lately goes at once: many small channels, each getting a
 *   message now and then, pay no pacing delay (ids of sessions not held
 *   here pace on the node's last wake instead).
 */
import type { LocalSession } from './local-session.js';

/** Step of the wait for this node's own publishes, in ms. */
const WAKE_STEP_MS = 1;
/** Least time between two wakes of the Server, in ms. */
export const WAKE_INTERVAL_MS = 8;
/** Longest wait for this node's publishes in flight before the Server is told, in ms. */
export const WAKE_MAX_DELAY_MS = 4;

/** Who is told which sessions woke (`HostLink`). */
export interface WakeTarget {
  wake(ids: readonly string[]): void;
}

/** This node's operations waiting for Redis (`CallOrder`). */
export interface InFlight {
  readonly pending: number;
}

export class Wakes {
  readonly #host: WakeTarget;
  readonly #order: InFlight;
  readonly #now: () => number;
  /** Sessions held here (each once: `waking`), and ids of sessions that are not. */
  #sessions: LocalSession[] = [];
  #ids: string[] = [];
  #since = 0;
  #last = -Infinity;
  readonly #onTimer = () => {
    // While this node's publishes are on their way, more messages for the same sessions are coming: wait for them, a little.
    if (this.#order.pending > 0 && this.#now() - this.#since < WAKE_MAX_DELAY_MS) setTimeout(this.#onTimer, WAKE_STEP_MS);
    else this.#all();
  };

  /**
   * @param host gets the ids of the sessions woken (`HostLink`, to `EngineHost.wake`).
   * @param order this node's ordered operations (`CallOrder`): while some wait for Redis, wakes wait a little.
   * @param now the clock, in ms (`performance.now`; a test passes its own).
   */
  constructor(host: WakeTarget, order: InFlight, now: () => number = () => performance.now()) {
    this.#host = host;
    this.#order = order;
    this.#now = now;
  }

  /** Wake a session held here. */
  session(session: LocalSession): void {
    if (session.waking) return;
    session.waking = true;
    this.#sessions.push(session);
    if (this.#sessions.length + this.#ids.length === 1) this.#start(session.wokenAt);
  }

  /** Wake a session that is not (or no longer) held here. */
  id(clientId: string): void {
    this.#ids.push(clientId);
    if (this.#sessions.length + this.#ids.length === 1) this.#start(this.#last);
  }

  /** The first wake of a round, of a session last woken at `last`: at the end of this turn, or once `WAKE_INTERVAL_MS` passed since `last`. */
  #start(last: number): void {
    const now = this.#now();
    this.#since = now;
    const wait = last + WAKE_INTERVAL_MS - now;
    // Whole milliseconds: Node keeps one timer list per distinct duration.
    if (wait > 0) setTimeout(this.#onTimer, Math.ceil(wait));
    else setImmediate(this.#onTimer);
  }

  #all(): void {
    const now = this.#now();
    this.#last = now;
    const sessions = this.#sessions;
    const ids = this.#ids;
    this.#sessions = [];
    this.#ids = [];
    for (const session of sessions) {
      session.waking = false;
      session.wokenAt = now;
      ids.push(session.id);
    }
    this.#host.wake(ids);
  }
}
