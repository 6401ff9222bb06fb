/**
 * What the Server reports as it works, for metrics and the admin page.
 * Every method is optional and must be cheap: it runs on the hot path.
 * An observer that throws is logged and otherwise ignored.
 */
export interface ServerObserver {
  /** A Bayeux refusal (`successful: false`) was sent, with its code (`402`, `403`, ...). */
  refused?(code: number): void;
  /** An engine call failed (the store is out of reach, or a bug). */
  engineError?(): void;
  /** Messages were dropped for a session (`maxQueue`, `maxQueueBytes`, slow consumer). */
  dropped?(count: number): void;
  /** A message was published to `channel` (by a client or the server), before fan-out. */
  published?(channel: string): void;
  /**
   * `count` copies were handed to connections, one of which was published
   * `latencyMs` ago (on this node): one copy in 16 is timed and stands for
   * the others. Copies of messages published on other nodes, or longer
   * than a few seconds ago, are not reported.
   */
  delivered?(count: number, latencyMs: number): void;
}

/** Copies per timed copy in delivered(). */
const LATENCY_SAMPLE = 16;

/**
 * The observers of one Server, and when each message was published (kept
 * two seconds, in two generations, so memory is bounded by the publish
 * rate and nothing is tracked while no observer wants latencies).
 */
export class Observers {
  readonly #list: ServerObserver[] = [];
  #wantsLatency = false;
  #current = new Map<string, number>();
  #previous = new Map<string, number>();
  #rotated = 0;
  #untimed = 0;
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  add(observer: ServerObserver): () => void {
    this.#list.push(observer);
    if (observer.delivered) this.#wantsLatency = true;
    return () => {
      const i = this.#list.indexOf(observer);
      if (i >= 0) this.#list.splice(i, 1);
      this.#wantsLatency = this.#list.some((o) => o.delivered);
    };
  }

  refused(code: number): void {
    for (const o of this.#list) this.#call(() => o.refused?.(code));
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
      if (now - this.#rotated > 1000) {
        this.#previous = this.#current;
        this.#current = new Map();
        this.#rotated = now;
      }
      this.#current.set(text, now);
    }
    for (const o of this.#list) this.#call(() => o.published?.(channel));
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
    const at = this.#current.get(text) ?? this.#previous.get(text);
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
