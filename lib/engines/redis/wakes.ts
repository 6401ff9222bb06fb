/**
 * Telling the Server which sessions have messages: a session held here is
 * woken once however many entries reach it, and the wakes of a moment go
 * in one call, so a run of publishes reaches a socket in one frame.
 *
 * Pacing, a delay for the network (the Server still coalesces per tick):
 * - After a quiet spell a wake goes out at the end of the current turn of
 *   the event loop, unless this node's own publishes are still on their
 *   way to Redis; then it waits for them, up to `WAKE_MAX_DELAY_MS`.
 * - Under a steady flow the Server is woken at most once per
 *   `WAKE_INTERVAL_MS`, so a frame carries several announcements' messages
 *   instead of one's. At full load that halves the frames per message (and
 *   the writes, and the parses in the clients); a low rate never waits.
 */
import type { LocalSession } from './local-session.js';

/** Step of the wait for this node's own publishes, in ms. */
const WAKE_STEP_MS = 1;
/** Least time between two wakes of the Server, in ms. */
export const WAKE_INTERVAL_MS = 8;

/** Who is told which sessions woke (`HostLink`). */
export interface WakeTarget {
  wake(ids: readonly string[]): void;
}

/** This node's operations waiting for Redis (`CallOrder`). */
export interface InFlight {
  readonly pending: number;
}
/** Longest wait for this node's publishes in flight before the Server is told, in ms. */
export const WAKE_MAX_DELAY_MS = 4;

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
    this.#soon();
  }

  /** Wake a session that is not (or no longer) held here. */
  id(clientId: string): void {
    this.#ids.push(clientId);
    this.#soon();
  }

  #soon(): void {
    // Publishes answered one after another reach a session together, in one frame.
    if (this.#sessions.length + this.#ids.length === 1) {
      const now = this.#now();
      this.#since = now;
      const wait = this.#last + WAKE_INTERVAL_MS - now;
      // Whole milliseconds: Node keeps one timer list per distinct duration.
      if (wait > 0) setTimeout(this.#onTimer, Math.ceil(wait));
      else setImmediate(this.#onTimer);
    }
  }

  #all(): void {
    this.#last = this.#now();
    const sessions = this.#sessions;
    const ids = this.#ids;
    this.#sessions = [];
    this.#ids = [];
    for (const session of sessions) {
      session.waking = false;
      ids.push(session.id);
    }
    this.#host.wake(ids);
  }
}
