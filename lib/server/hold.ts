/* eslint-disable @typescript-eslint/no-explicit-any -- the lists hold connects of any data type */
/**
 * Held `/meta/connect`s and their deadlines. A held connect is a small
 * object with a callback, not a suspended async chain: all of them share
 * one timer. Connects held for the same duration expire in the order they
 * were held, so each duration keeps a FIFO list and the timer is set for
 * the earliest head: adding, releasing and expiring are O(1) each.
 */

/** Called when a held connect is released; one function serves them all. */
export type ReleaseHandler<T> = (held: HeldConnect<T>, aborted: boolean, taken: unknown) => void;

/**
 * A `/meta/connect` waiting for messages, its deadline, or its client going
 * away. `data` is what its owner needs to answer it, in one record (no
 * closures per connect). As a listener object it aborts the wait when its
 * client goes away (`conn.onAbort(held)`).
 */
export class HeldConnect<T = unknown> {
  /** The connection it arrived on (a presence compares it with a socket's). */
  readonly conn: unknown;
  readonly deadline: number;
  readonly data: T;
  /** @internal list links */
  prev: HeldConnect<any> | undefined;
  /** @internal list links */
  next: HeldConnect<any> | undefined;
  /** @internal the list it is in while waiting */
  list: HoldList | undefined;
  #done = false;
  #aborted = false;
  #taken: unknown;
  #handler: ReleaseHandler<T> | undefined;

  constructor(conn: unknown, deadline: number, data: T) {
    this.conn = conn;
    this.deadline = deadline;
    this.data = data;
  }

  /** Its client went away. */
  handleEvent(): void {
    this.release(true);
  }

  get released(): boolean {
    return this.#done;
  }

  /**
   * Answer it now (messages arrived, a newer connect came, the server is
   * closing), or with `aborted` when its client went away. `taken` is
   * handed to the callback (the Server passes what it already took for this
   * connect in a batch). Idempotent: only the first call counts.
   */
  release(aborted = false, taken?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#aborted = aborted;
    this.#taken = taken;
    this.list?.remove(this);
    const handler = this.#handler;
    this.#handler = undefined;
    handler?.(this, aborted, taken);
  }

  /** Call `handler` once when released (at once if it already was). */
  onRelease(handler: ReleaseHandler<T>): void {
    if (this.#done) handler(this, this.#aborted, this.#taken);
    else this.#handler = handler;
  }
}

/** One FIFO of held connects that share a duration. */
class HoldList {
  head: HeldConnect<any> | undefined;
  tail: HeldConnect<any> | undefined;
  size = 0;

  push(entry: HeldConnect<any>): void {
    entry.list = this;
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.size++;
  }

  remove(entry: HeldConnect<any>): void {
    if (entry.list !== this) return;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = entry.list = undefined;
    this.size--;
  }
}

export class Holds {
  readonly #lists = new Map<number, HoldList>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;

  /** Hold a connect for `ms`; when the time is up it is released (not aborted). */
  add<T>(conn: unknown, ms: number, data: T): HeldConnect<T> {
    const entry = new HeldConnect(conn, Date.now() + ms, data);
    let list = this.#lists.get(ms);
    if (!list) this.#lists.set(ms, (list = new HoldList()));
    list.push(entry);
    if (entry.deadline < this.#timerAt) this.#schedule(entry.deadline);
    return entry;
  }

  /** Connects waiting now. */
  get size(): number {
    let n = 0;
    for (const list of this.#lists.values()) n += list.size;
    return n;
  }

  /** Release every held connect (the server is closing). */
  releaseAll(): void {
    for (const list of this.#lists.values()) {
      while (list.head) list.head.release();
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #schedule(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - Date.now()));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const [ms, list] of this.#lists) {
      while (list.head && list.head.deadline <= now) list.head.release();
      if (list.head) next = Math.min(next, list.head.deadline);
      else this.#lists.delete(ms);
    }
    if (next < Infinity) this.#schedule(next);
  }
}
