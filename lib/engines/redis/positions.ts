/**
 * The positions of WebSocket pushes, written lazily: a push to a session
 * without acks takes its messages from memory, and the positions it
 * reached are written to Redis by the next flush (every `positionFlush`
 * ms), for every session pushed to meanwhile at once, instead of one
 * script per session and push. A session that moves to another node
 * before the flush may get again what it was pushed since the last one.
 */
import type { LocalSession } from './local-session.js';
import type { Keys } from './keys.js';
import { Scripts } from './lua/index.js';
import { positionsArgs, pushPositions } from './lua/session.js';
import type { Runner } from './runner.js';

/**
 * Most sessions one script writes (about 4 µs of Redis time each): a
 * flush's scripts go one after another, so a publish issued meanwhile
 * waits behind one script, not behind the whole flush.
 */
const SESSIONS_PER_SCRIPT = 100;

interface Call {
  readonly keys: string[];
  readonly args: string[];
  /** The sessions this call writes, with what it writes for each. */
  readonly written: Array<[LocalSession, Map<string, string>]>;
}

export class LazyPositions {
  readonly #runner: Runner;
  readonly #keys: Keys;
  /** Sessions whose positions a lazy take left unwritten. */
  readonly #unflushed = new Set<LocalSession>();
  /** Of those, the ones whose sockets closed: written at the end of the turn, not by the timer. */
  readonly #closed = new Set<LocalSession>();
  /** The flush under way, if any: one at a time, so a session's positions reach Redis in order. */
  #flushing: Promise<void> | undefined;
  /** A flush of `#closed` is due at the end of this turn (or after the one under way). */
  #soon = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(runner: Runner, keys: Keys) {
    this.#runner = runner;
    this.#keys = keys;
  }

  /** Flush every `interval` ms. */
  start(interval: number): void {
    this.#timer = setInterval(() => void this.flush(), interval);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A lazy take left `session.lazy` to write. */
  add(session: LocalSession): void {
    if (session.lazy) this.#unflushed.add(session);
  }

  /**
   * Write this session's positions without waiting for the timer (its
   * socket closed): at the end of this turn, with the other sessions whose
   * sockets closed in it, or after the flush under way. Only those: under
   * a steady churn of closing sockets, the others still wait for the
   * timer, as they would without it.
   */
  soon(session: LocalSession): void {
    if (!session.lazy || session.gone) return;
    this.#unflushed.delete(session);
    this.#closed.add(session);
    if (this.#soon) return;
    this.#soon = true;
    setImmediate(() => void this.#flushClosed());
  }

  async #flushClosed(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.#soon = false;
    if (this.#closed.size === 0) return;
    const sessions = [...this.#closed];
    this.#closed.clear();
    if (!this.#runner.ready) {
      // Redis is away: the timer's flush writes them when it is back.
      for (const session of sessions) this.#unflushed.add(session);
      return;
    }
    await this.#run(sessions);
  }

  /**
   * Write the positions lazy takes left: scripts of up to 100 sessions,
   * one after another (per bucket, i.e. slot, on a Cluster, the buckets
   * side by side). A script that fails leaves its sessions, and those of
   * the scripts after it, to the next flush.
   */
  async flush(): Promise<void> {
    if ((this.#unflushed.size === 0 && this.#closed.size === 0) || this.#flushing || !this.#runner.ready) return;
    const sessions = [...this.#unflushed, ...this.#closed];
    this.#unflushed.clear();
    this.#closed.clear();
    await this.#run(sessions);
  }

  async #run(sessions: readonly LocalSession[]): Promise<void> {
    const flushing = this.#flush(sessions);
    this.#flushing = flushing;
    try {
      await flushing;
    } finally {
      this.#flushing = undefined;
    }
  }

  /**
   * Everything waiting written before close: the flushes under way (a
   * closed socket's may start right after the timer's), then one for what
   * was added meanwhile. Gives up after a few rounds, or when Redis is away.
   */
  async flushAll(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      while (this.#flushing) await this.#flushing;
      if ((this.#unflushed.size === 0 && this.#closed.size === 0) || !this.#runner.ready) return;
      await this.flush();
    }
  }

  async #flush(sessions: readonly LocalSession[]): Promise<void> {
    const cluster = this.#runner.isCluster;
    /** Per group (bucket on a Cluster, one on a single Redis): its calls, in order. */
    const groups = new Map<string, Call[]>();
    for (const session of sessions) {
      const lazy = session.lazy;
      if (!lazy || session.gone) continue;
      session.lazy = undefined;
      const bucket = this.#keys.bucket(session.id);
      const group = cluster ? bucket : '';
      let calls = groups.get(group);
      if (!calls) groups.set(group, (calls = []));
      let call = calls[calls.length - 1];
      if (!call || call.written.length >= SESSIONS_PER_SCRIPT) {
        calls.push((call = { keys: [], args: positionsArgs(this.#keys.nodeChannelPrefix), written: [] }));
      }
      let index = call.keys.indexOf(bucket);
      if (index < 0) index = call.keys.push(bucket) - 1;
      pushPositions(call.args, index + 1, session.id, session.gen, lazy);
      call.written.push([session, lazy]);
    }
    await Promise.all([...groups.values()].map((calls) => this.#write(calls)));
  }

  /** One group's calls in turn; on a failure, the rest go back for the next flush. */
  async #write(calls: readonly Call[]): Promise<void> {
    for (let c = 0; c < calls.length; c++) {
      const call = calls[c] as Call;
      try {
        await this.#runner.run(Scripts.positions, call.keys, call.args);
      } catch (err) {
        for (const rest of calls.slice(c)) this.#retry(rest.written);
        this.#runner.failed('writing positions', err);
        return;
      }
    }
  }

  /**
   * Not written: try again with the next flush, the positions still the
   * session's own (a take since may have written newer ones), under any
   * a lazy take left meanwhile.
   */
  #retry(written: ReadonlyArray<[LocalSession, Map<string, string>]>): void {
    for (const [session, lazy] of written) {
      if (session.gone) continue;
      for (const [src, position] of lazy) {
        if (session.ackedOf(src) !== position || session.lazy?.has(src)) continue;
        (session.lazy ??= new Map()).set(src, position);
      }
      if (session.lazy) this.#unflushed.add(session);
    }
  }
}
