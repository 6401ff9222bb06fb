/**
 * The local fan-out: a session held by this node (created, touched or
 * taken here) keeps its waiting messages in memory, fed by the pattern
 * logs' notifications and its own box, and trimmed to `maxQueue` and
 * `maxQueueBytes` exactly as MemoryEngine does. Its position in each log
 * (what it acknowledged; for acked sessions also what it was sent) is
 * written to Redis on take, so another node can rebuild the queue.
 *
 * Entries are shared: one object per log entry on this node, whatever the
 * number of sessions it reaches, and a session's position in a log is the
 * last entry it applied from it (no copy of the id).
 */
import { isAfter, positionOf, type Position } from './keys.js';
import { PositionKind } from './lua/contract.js';

/** One message waiting for a session. */
export interface Entry extends Position {
  /** The pattern whose log it came from; '' for the session's own box. */
  readonly src: string;
  readonly text: string;
  /** The publish it belongs to (one copy per session however many patterns match); '' for none. */
  readonly pub: string;
  /** Sessions the publish excludes. */
  readonly except: readonly string[] | undefined;
}

/** An entry of `src` with stream id `id`. */
export function makeEntry(src: string, id: string, text: string, pub: string, except: readonly string[] | undefined): Entry {
  const { ms, seq } = positionOf(id);
  return { src, id, ms, seq, text, pub, except };
}

/** The except list as a log stores it: comma-separated ids, or '-'. */
export function exceptOf(stored: string): readonly string[] | undefined {
  return stored === '-' || stored === '' ? undefined : stored.split(',');
}

/** Limits the Server configured. */
export interface QueueLimits {
  maxQueue: number;
  maxQueueBytes: number;
}

/** Bound on the publish ids remembered per session for de-duplication across patterns. */
const RECENT_PUBLISHES = 4096;

/**
 * A settled promise shared by every session with no load, catch-up or
 * take in progress (`ready`, `lock`): one each would cost every idle
 * session its bytes. Awaiting it is awaiting any settled promise.
 */
export const SETTLED: Promise<void> = Promise.resolve();

/** Where a session created on this node starts in its box (shared: positions are never changed in place). */
const BOX_START = positionOf('0-0');

/** A followed pattern's positions in a session. */
export interface FollowedPattern {
  readonly pattern: string;
  /** The last entry applied from its log (at first, the subscription's position). */
  cursor: Position;
  /** The acked (taken) position Redis has. */
  acked: string;
  /** The sent position Redis has (read for acked sessions only). */
  sent: string;
}

/**
 * A session's followed patterns: the one it follows (most follow one
 * channel), a small array while it has few (a Map would cost each session
 * about 200 bytes; three of them, cursors, acked and sent, did), a Map by
 * pattern beyond {@link SMALL_FOLLOWED}. Replaced, never changed in place
 * while an array, so iterating one is iterating a snapshot.
 */
type FollowedSet = FollowedPattern | readonly FollowedPattern[] | Map<string, FollowedPattern>;
const NOTHING_FOLLOWED: readonly FollowedPattern[] = [];
const SMALL_FOLLOWED = 8;

function isList(followed: FollowedSet): followed is readonly FollowedPattern[] {
  return Array.isArray(followed);
}

export class LocalSession {
  readonly id: string;
  readonly ack: boolean;
  /** The generation of the session's holder in Redis when this copy was made. */
  gen: number;
  /** The patterns it follows, with their positions. */
  #followed: FollowedSet = NOTHING_FOLLOWED;
  /** The last entry applied from the box. */
  box: Position;
  /** The box's position written to Redis: acked (taken), and for acked sessions sent. */
  #boxAcked: string;
  #boxSent: string;
  /** Waiting messages; for an acked session the first `sent` of them were sent in batch `batch`. */
  queue: Entry[] = [];
  sent = 0;
  bytes = 0;
  batch: number;
  dropped = 0;
  /**
   * Sessions without acks taken by a WebSocket push: positions taken but
   * not yet written to Redis (src → position), written by the next flush.
   */
  lazy: Map<string, string> | undefined;
  /** Publish ids seen lately, when several patterns could bring the same publish. */
  #recent: Set<string> | undefined;
  /** While loading: entries that arrived, applied once the load is done. */
  pending: Entry[] | undefined;
  /** Loads and catch-ups in progress. */
  loads = 0;
  /** Settles when loads and catch-ups in progress are done ({@link SETTLED} again once they are). */
  ready: Promise<void> = SETTLED;
  /** Takes waiting for or holding the lock. */
  takes = 0;
  /** Takes of this session run one at a time ({@link SETTLED} again when none is waiting). */
  lock: Promise<unknown> = SETTLED;
  /** Local deadline (ms since the epoch), to forget sessions nobody touched. */
  deadline: number;
  /** Already in this tick's wake list. */
  waking = false;
  /** When the Server was last told of it (`Wakes`' clock, ms): a session woken again soon after waits for the pacing interval. */
  wokenAt = -Infinity;
  gone = false;

  constructor(id: string, ack: boolean, gen: number, batch: number, box: string, deadline: number) {
    this.id = id;
    this.ack = ack;
    this.gen = gen;
    this.batch = batch;
    this.box = box === '0-0' ? BOX_START : positionOf(box);
    this.#boxAcked = box;
    this.#boxSent = box;
    this.deadline = deadline;
  }

  /** How many patterns it follows. */
  get followCount(): number {
    const followed = this.#followed;
    return followed instanceof Map ? followed.size : isList(followed) ? followed.length : 1;
  }

  /** The patterns it follows (a snapshot while they are few; live beyond). */
  patterns(): Iterable<string> {
    const followed = this.#followed;
    return followed instanceof Map ? followed.keys() : isList(followed) ? followed.map((f) => f.pattern) : [followed.pattern];
  }

  /** Its followed patterns' records (a snapshot while they are few; live beyond). */
  #all(): Iterable<FollowedPattern> {
    const followed = this.#followed;
    return followed instanceof Map ? followed.values() : isList(followed) ? followed : [followed];
  }

  follows(pattern: string): boolean {
    return this.#find(pattern) !== undefined;
  }

  #find(pattern: string): FollowedPattern | undefined {
    const followed = this.#followed;
    if (followed instanceof Map) return followed.get(pattern);
    if (!isList(followed)) return followed.pattern === pattern ? followed : undefined;
    for (let i = 0; i < followed.length; i++) if ((followed[i] as FollowedPattern).pattern === pattern) return followed[i];
    return undefined;
  }

  /** The last entry applied from `src` ('' the box); undefined for a pattern it does not follow. */
  cursorOf(src: string): Position | undefined {
    return src === '' ? this.box : this.#find(src)?.cursor;
  }

  /** The acked position Redis has for `src` ('' the box); undefined for a pattern it does not follow. */
  ackedOf(src: string): string | undefined {
    return src === '' ? this.#boxAcked : this.#find(src)?.acked;
  }

  /** The sent position Redis has for `src` (acked sessions); undefined for a pattern it does not follow. */
  sentOf(src: string): string | undefined {
    return src === '' ? this.#boxSent : this.#find(src)?.sent;
  }

  /** Redis has `position` as the sent position of `src` (a load read it); ignored for a pattern it does not follow. */
  sentIs(src: string, position: string): void {
    if (src === '') this.#boxSent = position;
    else {
      const followed = this.#find(src);
      if (followed) followed.sent = position;
    }
  }

  /** Start following a pattern at `position` (entries after it are the session's). */
  follow(pattern: string, position: string): void {
    if (this.#find(pattern)) return;
    const added: FollowedPattern = { pattern, cursor: positionOf(position), acked: position, sent: position };
    const followed = this.#followed;
    if (followed instanceof Map) followed.set(pattern, added);
    else if (!isList(followed)) this.#followed = [followed, added];
    else if (followed.length === 0) this.#followed = added;
    // concat, not a spread: a spread's array keeps room for 16 more (136 bytes).
    else if (followed.length < SMALL_FOLLOWED) this.#followed = followed.concat(added);
    else this.#followed = new Map([...followed, added].map((f) => [f.pattern, f]));
    if (this.followCount > 1 && !this.#recent) this.#recent = new Set();
  }

  /**
   * With shard logs: every channel it follows has all its entries up to
   * `last` (the shard's last entry applied on this node, which this
   * session, not loading, got): its cursor moves there if behind.
   */
  advanceChannels(last: Position): void {
    for (const followed of this.#all()) {
      if (!followed.pattern.includes('*') && isAfter(last, followed.cursor)) followed.cursor = last;
    }
  }

  /** Adds each channel's (not wildcard's) acked position to `into`, where it holds none for it yet. */
  ackedChannels(into: Map<string, string>): void {
    for (const followed of this.#all()) {
      if (!followed.pattern.includes('*') && !into.has(followed.pattern)) into.set(followed.pattern, followed.acked);
    }
  }

  unfollow(pattern: string): void {
    const followed = this.#followed;
    if (followed instanceof Map) {
      followed.delete(pattern);
      return;
    }
    if (!isList(followed)) {
      if (followed.pattern === pattern) this.#followed = NOTHING_FOLLOWED;
      return;
    }
    const i = followed.findIndex((f) => f.pattern === pattern);
    if (i < 0) return;
    // slice and concat, not filter: their arrays have no spare room.
    if (followed.length === 2) this.#followed = followed[1 - i] as FollowedPattern;
    else this.#followed = followed.slice(0, i).concat(followed.slice(i + 1));
  }

  /** Apply one entry; true if it was queued (the session should be woken). */
  apply(entry: Entry, limits: QueueLimits, force = false): boolean {
    if (this.gone) return false;
    if (this.pending && !force) {
      this.pending.push(entry);
      return false;
    }
    if (entry.src === '') {
      if (!isAfter(entry, this.box)) return false;
      this.box = entry;
    } else {
      const followed = this.#find(entry.src);
      if (followed === undefined || !isAfter(entry, followed.cursor)) return false;
      followed.cursor = entry;
    }
    if (!this.#wants(entry)) return false;
    this.queue.push(entry);
    this.bytes += entry.text.length;
    this.#bound(limits);
    return true;
  }

  /**
   * Apply entries of one pattern's log, in log order: what the fan-out
   * does for every session it reaches, so it looks the cursor up once,
   * not once per entry. True if any was queued.
   */
  applyLog(pattern: string, entries: readonly Entry[], limits: QueueLimits): boolean {
    if (this.gone) return false;
    if (this.pending) {
      for (const entry of entries) this.pending.push(entry);
      return false;
    }
    const followed = this.#find(pattern);
    const n = entries.length;
    if (followed === undefined || n === 0) return false;
    const cursor = followed.cursor;
    let i = 0;
    while (i < n && !isAfter(entries[i] as Entry, cursor)) i++;
    if (i === n) return false;
    followed.cursor = entries[n - 1] as Entry;
    let queued = false;
    for (; i < n; i++) {
      const entry = entries[i] as Entry;
      if (!this.#wants(entry)) continue;
      this.queue.push(entry);
      this.bytes += entry.text.length;
      queued = true;
    }
    if (queued) this.#bound(limits);
    return queued;
  }

  /** Not excluded by the publish, and not already queued through another pattern. */
  #wants(entry: Entry): boolean {
    if (entry.except !== undefined && entry.except.includes(this.id)) return false;
    if (entry.pub === '' || !this.#recent) return true;
    if (this.#recent.has(entry.pub)) return false;
    this.#recent.add(entry.pub);
    if (this.#recent.size > RECENT_PUBLISHES) {
      // Oldest first: drop the first half.
      let n = RECENT_PUBLISHES >> 1;
      for (const pub of this.#recent) {
        if (n-- <= 0) break;
        this.#recent.delete(pub);
      }
    }
    return true;
  }

  /** A full queue is trimmed once it overshoots by a slack (bytes at once), as MemoryEngine does. */
  #bound(limits: QueueLimits): void {
    const slack = Math.max(16, limits.maxQueue >> 3);
    if (this.queue.length > limits.maxQueue + slack || this.bytes > limits.maxQueueBytes) this.trim(limits);
  }

  /** Drop the oldest waiting messages (unacknowledged first) down to the limits; the newest stays. */
  trim(limits: QueueLimits): void {
    const count = this.queue.length;
    if (count <= limits.maxQueue && this.bytes <= limits.maxQueueBytes) return;
    let excess = Math.max(0, count - limits.maxQueue);
    let bytes = this.bytes;
    for (let i = 0; i < excess; i++) bytes -= (this.queue[i] as Entry).text.length;
    while (bytes > limits.maxQueueBytes && excess < count - 1) {
      bytes -= (this.queue[excess] as Entry).text.length;
      excess++;
    }
    if (excess <= 0) return;
    this.dropped += excess;
    this.bytes = bytes;
    this.queue = this.queue.slice(excess);
    this.sent = Math.max(0, this.sent - excess);
  }

  /**
   * A WebSocket push's take of a session without acks, from memory: every
   * waiting message, the positions left for the next flush to write. What
   * {@link prepare} and {@link commit} do for a lazy take, without the
   * intermediate lists (it runs once per session and push).
   */
  takeLazily(limits: QueueLimits): { messages: string[]; dropped: number } {
    this.trim(limits);
    const queue = this.queue;
    const messages = new Array<string>(queue.length);
    for (let i = 0; i < queue.length; i++) messages[i] = (queue[i] as Entry).text;
    this.queue = [];
    this.bytes = 0;
    this.sent = 0;
    const dropped = this.dropped;
    this.dropped = 0;
    // The positions reached, for the flush.
    if (this.#boxAcked !== this.box.id) {
      this.#boxAcked = this.box.id;
      (this.lazy ??= new Map()).set('', this.box.id);
    }
    for (const followed of this.#all()) {
      const position = followed.cursor.id;
      if (followed.acked === position) continue;
      followed.acked = position;
      (this.lazy ??= new Map()).set(followed.pattern, position);
    }
    return { messages, dropped };
  }

  /**
   * The messages a take returns, and the positions to write for it; the
   * queue changes only when {@link commit} is called after Redis took the
   * positions.
   */
  prepare(ack: number | undefined, limits: QueueLimits, lazy = false): PreparedTake {
    this.trim(limits);
    const acking = this.ack && ack !== undefined && ack >= this.batch && this.sent > 0;
    const writes: string[] = [];
    if (!this.ack) {
      const count = this.queue.length;
      if (this.#boxAcked !== this.box.id) writes.push(PositionKind.Acked, '', this.box.id);
      for (const followed of this.#all()) {
        if (followed.acked !== followed.cursor.id) writes.push(PositionKind.Acked, followed.pattern, followed.cursor.id);
      }
      // Positions a lazy take left unwritten go with this one (those of patterns still followed).
      if (!lazy && this.lazy) {
        for (const [src, position] of this.lazy) if (this.ackedOf(src) === position) writes.push(PositionKind.Acked, src, position);
      }
      const messages = new Array<string>(count);
      for (let i = 0; i < count; i++) messages[i] = (this.queue[i] as Entry).text;
      return { lazy, last: this.queue[count - 1], messages, batch: undefined, writes, acking: false, dropped: this.dropped };
    }
    if (acking) {
      if (this.#boxAcked !== this.#boxSent) writes.push(PositionKind.Acked, '', this.#boxSent);
      for (const followed of this.#all()) if (followed.acked !== followed.sent) writes.push(PositionKind.Acked, followed.pattern, followed.sent);
    }
    if (this.#boxSent !== this.box.id) writes.push(PositionKind.Sent, '', this.box.id);
    for (const followed of this.#all()) {
      if (followed.sent !== followed.cursor.id) writes.push(PositionKind.Sent, followed.pattern, followed.cursor.id);
    }
    const from = acking ? this.sent : 0;
    const messages = new Array<string>(this.queue.length - from);
    for (let i = from; i < this.queue.length; i++) messages[i - from] = (this.queue[i] as Entry).text;
    return { lazy: false, last: this.queue[this.queue.length - 1], messages, batch: this.batch + 1, writes, acking, dropped: this.dropped };
  }

  /** Redis recorded the take: update the queue and the positions. */
  commit(take: PreparedTake): void {
    this.dropped = Math.max(0, this.dropped - take.dropped);
    const w = take.writes;
    for (let i = 0; i < w.length; i += 3) {
      const acked = w[i] === PositionKind.Acked;
      const src = w[i + 1] as string;
      const position = w[i + 2] as string;
      if (src === '') {
        if (acked) this.#boxAcked = position;
        else this.#boxSent = position;
        continue;
      }
      // A pattern unfollowed since the take was prepared keeps nothing here (Redis ignores it too).
      const followed = this.#find(src);
      if (followed === undefined) continue;
      if (acked) followed.acked = position;
      else followed.sent = position;
    }
    if (this.lazy) {
      // Written now with the rest: nothing left for the flush.
      for (let i = 0; i < w.length; i += 3) if (w[i] === PositionKind.Acked) this.lazy.delete(w[i + 1] as string);
      if (take.lazy) for (let i = 0; i < w.length; i += 3) this.lazy.set(w[i + 1] as string, w[i + 2] as string);
      if (this.lazy.size === 0) this.lazy = undefined;
    } else if (take.lazy && w.length > 0) {
      this.lazy = new Map();
      for (let i = 0; i < w.length; i += 3) this.lazy.set(w[i + 1] as string, w[i + 2] as string);
    }
    // Entries may have arrived (at the end) or been trimmed (at the start) meanwhile.
    let end = take.last ? this.queue.lastIndexOf(take.last) + 1 : 0;
    if (this.ack && take.acking) {
      const acked = Math.min(this.sent, end);
      this.#drop(acked);
      end -= acked;
    }
    if (!this.ack) this.#drop(end);
    else {
      this.sent = end;
      this.batch = take.batch ?? this.batch;
    }
  }

  #drop(n: number): void {
    if (n <= 0) return;
    for (let i = 0; i < n; i++) this.bytes -= (this.queue[i] as Entry).text.length;
    this.queue = n === this.queue.length ? [] : this.queue.slice(n);
    this.sent = Math.max(0, this.sent - n);
  }
}

export interface PreparedTake {
  /** Positions are written by the next flush, not by this take. */
  readonly lazy: boolean;
  /** The last entry the take covers (the queue's last when it was prepared). */
  readonly last: Entry | undefined;
  readonly messages: string[];
  readonly batch: number | undefined;
  /** Triples for the take script: kind, source, position. */
  readonly writes: string[];
  readonly acking: boolean;
  readonly dropped: number;
}
