import { unspliced } from './history.js';

/**
 * What the Server reports as it works, for metrics and the admin page.
 * Every method is optional and must be cheap: it runs on the hot path.
 * An observer that throws is logged and otherwise ignored.
 */
export interface ServerObserver {
  /** A Bayeux refusal (`successful: false`) was sent, with its code (`402`, `403`, ...). */
  refused?(code: number): void;
  /** A handshake was refused: over `maxHandshakeRate` (`node`), `handshakeRatePerIp` (`address`), or on a draining node (`draining`). */
  handshakeRefused?(reason: 'node' | 'address' | 'draining'): void;
  /** A message was refused over its session's `rateLimit`. */
  rateLimited?(): void;
  /** A session was handed off by a drain (`close({ drain })`). */
  drained?(): void;
  /** An engine call failed (the store is out of reach, or a bug). */
  engineError?(): void;
  /** Messages were dropped for a session (`maxQueue`, `maxQueueBytes`, slow consumer). */
  dropped?(count: number): void;
  /** A message was published to `channel` (by a client or the server), before fan-out. */
  published?(channel: string): void;
  /**
   * `count` copies were handed to connections, one of which was published
   * `latencyMs` ago (on this node): one copy in 16 is timed and stands for
   * the others. Copies of messages published on other nodes, more than
   * one to two seconds ago, or while the messages kept for timing already
   * held 16 Mi characters, are not reported.
   */
  delivered?(count: number, latencyMs: number): void;
}

/** Copies per timed copy in delivered(). */
const LATENCY_SAMPLE = 16;

/** How long a generation of publish times lasts, in ms: a message is timed for one to two of them. */
const GENERATION_MS = 1000;

/**
 * Most characters of published messages kept for timing, over both
 * generations: about 16 MiB of one-byte text. Past it, publishes are not
 * timed until the next rotation (their deliveries are then not sampled),
 * so a burst of large messages cannot pin more than this.
 */
const MAX_TIMED_CHARS = 16 * 1024 * 1024;

/**
 * The observers of one Server, and when each message was published (kept
 * one to two seconds, in two generations, and at most MAX_TIMED_CHARS of
 * them; nothing is tracked while no observer wants latencies). The
 * generations rotate on a timer while they hold anything, so an idle server
 * lets go of the last messages it published within two seconds.
 */
export class Observers {
  readonly #list: ServerObserver[] = [];
  #wantsLatency = false;
  #current = new Map<string, number>();
  #previous = new Map<string, number>();
  #currentChars = 0;
  #previousChars = 0;
  #rotated = 0;
  #rotation: NodeJS.Timeout | undefined;
  #untimed = 0;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  add(observer: ServerObserver): () => void {
    this.#list.push(observer);
    if (observer.delivered !== undefined) this.#wantsLatency = true;
    return () => {
      const i = this.#list.indexOf(observer);
      if (i >= 0) this.#list.splice(i, 1);
      this.#wantsLatency = this.#list.some((o) => o.delivered !== undefined);
      if (!this.#wantsLatency) this.#forget();
    };
  }

  refused(code: number): void {
    for (const o of this.#list) this.#call(() => o.refused?.(code));
  }

  handshakeRefused(reason: 'node' | 'address' | 'draining'): void {
    for (const o of this.#list) this.#call(() => o.handshakeRefused?.(reason));
  }

  rateLimited(): void {
    for (const o of this.#list) this.#call(() => o.rateLimited?.());
  }

  drained(): void {
    for (const o of this.#list) this.#call(() => o.drained?.());
  }

  engineError(): void {
    for (const o of this.#list) this.#call(() => o.engineError?.());
  }

  dropped(count: number): void {
    for (const o of this.#list) this.#call(() => o.dropped?.(count));
  }

  /** A message was published; `text` is its serialized copy, as queued. */
  published(channel: string, text: string): void {
    if (this.#wantsLatency) {
      const now = performance.now();
      if (now - this.#rotated > GENERATION_MS) this.#rotate(now);
      const known = this.#current.has(text);
      if (known || this.#currentChars + this.#previousChars + text.length <= MAX_TIMED_CHARS) {
        this.#current.set(text, now);
        if (!known) this.#currentChars += text.length;
      }
      // Release by time: while anything is kept, a timer rotates it out even if nothing more is published.
      if (!this.#rotation && this.#current.size > 0) {
        this.#rotation = setTimeout(() => this.#tick(), GENERATION_MS);
        this.#rotation.unref();
      }
    }
    for (const o of this.#list) this.#call(() => o.published?.(channel));
  }

  /** The rotation timer: rotate if no publish did, and keep going until both generations are empty. */
  #tick(): void {
    this.#rotation = undefined;
    const now = performance.now();
    if (now - this.#rotated >= GENERATION_MS) this.#rotate(now);
    if (this.#current.size > 0 || this.#previous.size > 0) {
      this.#rotation = setTimeout(() => this.#tick(), GENERATION_MS);
      this.#rotation.unref();
    }
  }

  #rotate(now: number): void {
    this.#previous = this.#current;
    this.#previousChars = this.#currentChars;
    this.#current = new Map();
    this.#currentChars = 0;
    this.#rotated = now;
  }

  /** Drop every publish time (no observer wants latencies any more). */
  #forget(): void {
    clearTimeout(this.#rotation);
    this.#rotation = undefined;
    this.#current = new Map();
    this.#previous = new Map();
    this.#currentChars = 0;
    this.#previousChars = 0;
  }

  /**
   * These serialized messages are being written to one connection now.
   * One copy in LATENCY_SAMPLE is timed and stands for the copies since
   * the last timed one: a clock read and a Map lookup per copy would cost
   * more than the rest of a delivery's bookkeeping.
   */
  delivered(texts: readonly string[]): void {
    if (!this.#wantsLatency || texts.length === 0) return;
    this.#untimed += texts.length;
    if (this.#untimed < LATENCY_SAMPLE) return;
    const count = this.#untimed;
    this.#untimed = 0;
    const text = texts[texts.length - 1] as string;
    let at = this.#current.get(text) ?? this.#previous.get(text);
    if (at === undefined) {
      // A history copy was timed by its text as published, before the engine spliced its position in.
      const published = unspliced(text);
      if (published !== undefined) at = this.#current.get(published) ?? this.#previous.get(published);
    }
    if (at === undefined) return;
    const latency = performance.now() - at;
    for (const o of this.#list) {
      if (!o.delivered) continue;
      try {
        o.delivered(count, latency);
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#onError(err);
    }
  }
}
