/**
 * A drain (`close({ drain: ms })`): the node takes itself out of service
 * over `ms` without a reconnect storm. The sessions with a connection here
 * when it starts are handed off in evenly spread slices over the window,
 * in random order: each one's held connect is answered with `advice:
 * { reconnect: 'retry', interval }` (the interval drawn at random over
 * what is left of the window) and its WebSocket closed once that answer
 * is written. A session that shows up later (a connect of a session not
 * scheduled, or after its slice) is handed off at once, the same way; new
 * handshakes are refused with advice to handshake again later. On a
 * shared engine (Redis) the client's next connect, on another node,
 * continues the session; on the memory engine the other node does not
 * know it, and the client handshakes there. The drain ends with its
 * window, or sooner once every session is handed off and no connection
 * is left on the node (a node without sessions closes at once).
 */
import type { ServerCore } from './core.js';
import type { Advice } from './types.js';
import { shortId } from './util.js';

/** Shortest and longest pause between two slices, in ms. */
const MIN_SLICE_MS = 10;
const MAX_SLICE_MS = 250;

/** How many slices a window is cut into (fewer when the window is short). */
const SLICES = 50;

export class Drain {
  readonly #core: ServerCore;
  readonly #end: number;
  /** Sessions present when it started, with when each is handed off; in that order. */
  readonly #due = new Map<string, number>();
  readonly #order: Array<[string, number]>;
  #next = 0;
  /** Sessions handed off (told to go), for the `disconnect` event and the count: once each. */
  readonly #handedOff = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #finish: (() => void) | undefined;
  /** Settles when the window is over (or the drain is cut short). */
  readonly done: Promise<void>;

  constructor(core: ServerCore, ms: number) {
    this.#core = core;
    const start = performance.now();
    this.#end = start + ms;
    const ids = [...core.attachments.values()].map((p) => p.clientId);
    shuffle(ids);
    // Session i of n goes at the middle of its share of the window.
    this.#order = ids.map((id, i): [string, number] => [id, start + ((i + 0.5) / ids.length) * ms]);
    for (const [id, at] of this.#order) this.#due.set(id, at);
    this.done = new Promise<void>((resolve) => (this.#finish = resolve));
    const slice = Math.min(MAX_SLICE_MS, Math.max(MIN_SLICE_MS, ms / SLICES));
    core.options.logger.info(`draining over ${ms} ms: ${ids.length} session(s) to hand off`);
    this.#tick(slice);
  }

  /** Ms left in the window. */
  remaining(): number {
    return Math.max(0, this.#end - performance.now());
  }

  /** An interval drawn at random over what is left of the window. */
  interval(): number {
    return Math.floor(Math.random() * this.remaining());
  }

  /** Whether `clientId` is to be handed off now (its slice came, or it was not here when the drain began). */
  due(clientId: string): boolean {
    const at = this.#due.get(clientId);
    return at === undefined || at <= performance.now();
  }

  /**
   * Hand `clientId` off: the advice its connect is answered with. Counted,
   * and the `disconnect` event (reason `drain`) fired, once per session.
   */
  handOff(clientId: string): Advice {
    const core = this.#core;
    if (!this.#handedOff.has(clientId)) {
      this.#handedOff.add(clientId);
      core.observers.drained();
      core.options.logger.info(`session ${shortId(clientId)} handed off: drain`);
      core.emit('disconnect', clientId, 'drain');
    }
    return { reconnect: 'retry', interval: this.interval(), timeout: core.options.timeout };
  }

  /** Stop handing off (the window is over, or `close()` cut it short). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#finish?.();
    this.#finish = undefined;
  }

  /** Hand off the sessions whose time came, then wait for the next slice or the end of the window. */
  #tick(slice: number): void {
    const now = performance.now();
    const order = this.#order;
    while (this.#next < order.length && (order[this.#next] as [string, number])[1] <= now) {
      this.#release((order[this.#next++] as [string, number])[0]);
    }
    // Over when the window is, or sooner once every session is handed off and none has a connection here.
    if (now >= this.#end || (this.#next >= order.length && this.#core.attachments.size === 0)) {
      this.stop();
      return;
    }
    this.#timer = setTimeout(() => this.#tick(slice), Math.min(slice, this.#end - now));
  }

  /** A session's slice came: answer its held connect (with the hand-off advice), close its socket once answered. */
  #release(clientId: string): void {
    const attachment = this.#core.attachments.get(clientId);
    if (!attachment) return; // between two connects: its next one is answered at once
    const { held, sink } = attachment;
    if (held) held.release();
    else if (sink) this.handOff(clientId);
    sink?.drain?.();
  }
}

/** Fisher-Yates, in place. */
function shuffle<T>(list: T[]): void {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j] as T, list[i] as T];
  }
}
