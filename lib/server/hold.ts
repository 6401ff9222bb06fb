/**
 * The deadlines of held `/meta/connect`s. A held connect is one object
 * (`meta/held-connect.ts` `HeldConnect`), not a suspended async chain: all
 * of them share one timer. Connects held for the same duration expire in
 * the order they were held, so each duration keeps a FIFO list and the
 * timer is set for the earliest head: adding, releasing and expiring are
 * O(1) each.
 */

/**
 * What the lists hold: a held connect (`meta/held-connect.ts` `HeldConnect`)
 * with its deadline and links. `release()` must take it out of its list
 * (`list.remove`): the lists release their heads until none is due.
 */
export interface Holdable {
  deadline: number;
  prev: Holdable | undefined;
  next: Holdable | undefined;
  list: HoldList | undefined;
  release(): void;
}

/** One FIFO of held connects that share a duration. */
export class HoldList {
  head: Holdable | undefined;
  tail: Holdable | undefined;
  size = 0;

  push(entry: Holdable): void {
    entry.list = this;
    entry.prev = this.tail;
    entry.next = undefined;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    this.size++;
  }

  remove(entry: Holdable): void {
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

  /** Hold a connect for `ms`; when the time is up it is released. */
  add(entry: Holdable, ms: number): void {
    entry.deadline = Date.now() + ms;
    let list = this.#lists.get(ms);
    if (!list) this.#lists.set(ms, (list = new HoldList()));
    list.push(entry);
    if (entry.deadline < this.#timerAt) this.#schedule(entry.deadline);
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
