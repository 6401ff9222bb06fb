/**
 * Telling the Server which sessions have messages: a session held here is
 * woken once however many entries reach it, and the wakes of a moment go
 * in one call, so a run of publishes reaches a socket in one frame.
 */
import type { HeldSession } from './held-session.js';

/** How long wakes are gathered before the Server is told, in ms. */
const WAKE_DELAY_MS = 1;
/** Longest wait for this node's publishes in flight before the Server is told, in ms. */
const WAKE_MAX_DELAY_MS = 4;

export class Wakes {
  readonly #tell: (ids: readonly string[]) => void;
  readonly #busy: () => boolean;
  /** Sessions held here (each once: `waking`), and ids of sessions that are not. */
  #sessions: HeldSession[] = [];
  #ids: string[] = [];
  #since = 0;
  readonly #onTimer = () => {
    // While this node's publishes are on their way, more messages for the same sessions are coming: wait for them, a little.
    if (this.#busy() && performance.now() - this.#since < WAKE_MAX_DELAY_MS) setTimeout(this.#onTimer, WAKE_DELAY_MS);
    else this.#all();
  };

  /**
   * @param tell gets the ids of the sessions woken (EngineHost.wake).
   * @param busy whether publishes of this node are waiting for Redis.
   */
  constructor(tell: (ids: readonly string[]) => void, busy: () => boolean) {
    this.#tell = tell;
    this.#busy = busy;
  }

  /** Wake a session held here. */
  session(held: HeldSession): void {
    if (held.waking) return;
    held.waking = true;
    this.#sessions.push(held);
    this.#soon();
  }

  /** Wake a session that is not (or no longer) held here. */
  id(clientId: string): void {
    this.#ids.push(clientId);
    this.#soon();
  }

  #soon(): void {
    // A moment later: publishes answered one after another reach a session together, in one frame.
    if (this.#sessions.length + this.#ids.length === 1) {
      this.#since = performance.now();
      setTimeout(this.#onTimer, WAKE_DELAY_MS);
    }
  }

  #all(): void {
    const sessions = this.#sessions;
    const ids = this.#ids;
    this.#sessions = [];
    this.#ids = [];
    for (const session of sessions) {
      session.waking = false;
      ids.push(session.id);
    }
    this.#tell(ids);
  }
}
