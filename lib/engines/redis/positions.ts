/**
 * The positions of WebSocket pushes, written lazily: a push to a session
 * without acks takes its messages from memory, and the positions it
 * reached are written to Redis by the next flush (every `positionFlush`
 * ms), for every session pushed to meanwhile at once, instead of one
 * script per session and push. A session that moves to another node
 * before the flush may get again what it was pushed since the last one.
 *
 * With shard logs, positions by node: a session pushed to here that has
 * everything this node applied (nothing waiting in its queue, not loading)
 * joins the node's *seen*: its hash names this node (`sn`), and from then
 * on its channels' positions are the node's seen, `{t0}:seen:<node>`,
 * written once per flush as the shard's last entry applied here, where
 * that is further than their own. So a session that keeps up costs no
 * write per flush, whatever it got. A session that falls behind (its
 * queue holds something at a flush, its socket closed, it is gone from
 * here) leaves first: the flush writes its own positions and removes
 * `sn`, and only then the seen. A node that takes a session over gets the
 * seen as its positions (TOUCH_OR_ADOPT).
 */
import type { LocalSession } from './local-session.js';
import type { Keys } from './keys.js';
import { Scripts } from './lua/index.js';
import { joinMark, positionsArgs, pushPositions, SeenMark, setPositionsSeen, type SeenWrite } from './lua/session.js';
import type { Runner } from './runner.js';

/**
 * Most sessions one script writes (about 4 µs of Redis time each): a
 * flush's scripts go one after another, so a publish issued meanwhile
 * waits behind one script, not behind the whole flush.
 */
const SESSIONS_PER_SCRIPT = 100;
/** The seen's ttl is at least this (ms), and twice the logs' retention: it outlives the sessions that name it. */
const MIN_SEEN_TTL_MS = 600_000;

interface Call {
  readonly keys: string[];
  readonly args: string[];
  /** The sessions this call writes, with what it writes for each and its seen mark. */
  readonly written: Array<[LocalSession, Map<string, string>, string]>;
}

/** With shard logs: what the node's seen is made of. */
export interface SeenSource {
  /** This node's id (the sessions' `sn`). */
  readonly node: string;
  /** The shard's last entry applied on this node while no gap of it is read (its position), else undefined. */
  last(): string | undefined;
  /** The logs' retention (ms): the seen lives at least twice as long. */
  retention(): number;
}

export class LazyPositions {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #seen: SeenSource | undefined;
  /** Sessions whose positions a lazy take left unwritten. */
  readonly #unflushed = new Set<LocalSession>();
  /** Of those, the ones whose sockets closed: written at the end of the turn, not by the timer. */
  readonly #closed = new Set<LocalSession>();
  /**
   * With shard logs: the sessions whose hash may name this node's seen
   * (a join was sent; a leave not yet answered).
   */
  readonly #following = new Set<LocalSession>();
  /** Of those, the ones whose join failed (it may or may not have landed): sent again while they keep up. */
  readonly #joinAgain = new Set<LocalSession>();
  /** The seen this node last wrote, and when (ms). */
  #seenWritten: string | undefined;
  #seenAt = 0;
  /** The flush under way, if any: one at a time, so a session's positions reach Redis in order. */
  #flushing: Promise<void> | undefined;
  /** A flush of `#closed` is due at the end of this turn (or after the one under way). */
  #soon = false;
  #timer: NodeJS.Timeout | undefined;

  /** @param seen with shard logs: this node's seen is written, and the sessions that keep up follow it. */
  constructor(runner: Runner, keys: Keys, seen?: SeenSource) {
    this.#runner = runner;
    this.#keys = keys;
    this.#seen = seen;
  }

  /** TOUCH_OR_ADOPT's seen key prefix: the keys' with shard logs, else ''. */
  get seenPrefix(): string {
    return this.#seen ? this.#keys.seenPrefix() : '';
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
   * The session got a subscription (SUBSCRIBE_COMMIT made it stop
   * following this node's seen in Redis): it joins again once it keeps up
   * with the new channel too.
   */
  subscribed(session: LocalSession): void {
    this.#following.delete(session);
    this.#joinAgain.delete(session);
  }

  /**
   * Write this session's positions without waiting for the timer (its
   * socket closed): at the end of this turn, with the other sessions whose
   * sockets closed in it, or after the flush under way. Only those: under
   * a steady churn of closing sockets, the others still wait for the
   * timer, as they would without it. A session that follows this node's
   * seen leaves it then.
   */
  soon(session: LocalSession): void {
    if (session.gone || (!session.lazy && !this.#following.has(session))) return;
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
    await this.#run(sessions, new Set(sessions), false);
  }

  /**
   * Write the positions lazy takes left: scripts of up to 100 sessions,
   * one after another (per bucket, i.e. slot, on a Cluster, the buckets
   * side by side). A script that fails leaves its sessions, and those of
   * the scripts after it, to the next flush. With shard logs, the
   * sessions leaving this node's seen go first, and the seen last.
   */
  async flush(): Promise<void> {
    if ((this.#unflushed.size === 0 && this.#closed.size === 0 && this.#following.size === 0) || this.#flushing || !this.#runner.ready) return;
    const closed = new Set(this.#closed);
    const sessions = [...this.#closed, ...this.#unflushed];
    this.#unflushed.clear();
    this.#closed.clear();
    await this.#run(sessions, closed, true);
  }

  async #run(sessions: readonly LocalSession[], closed: ReadonlySet<LocalSession>, seen: boolean): Promise<void> {
    const flushing = this.#flush(sessions, closed, seen);
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
   * was added meanwhile (and this node's seen). Gives up after a few
   * rounds, or when Redis is away.
   */
  async flushAll(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      while (this.#flushing) await this.#flushing;
      if ((round > 0 && this.#unflushed.size === 0 && this.#closed.size === 0) || !this.#runner.ready) return;
      await this.flush();
    }
  }

  /**
   * Whether `session` has every shard entry this node applied: nothing
   * waits in its queue, it is not loading or catching up, and its socket
   * did not close.
   */
  #keepsUp(session: LocalSession, closed: ReadonlySet<LocalSession>): boolean {
    return !session.gone && !session.ack && session.queue.length === 0 && session.pending === undefined && session.loads === 0 && !closed.has(session);
  }

  /**
   * @param sessions those lazy takes left positions of (`closed`: of them, those whose sockets closed).
   * @param seen write this node's seen (the timer's flush), after the sessions.
   */
  async #flush(sessions: readonly LocalSession[], closed: ReadonlySet<LocalSession>, seen: boolean): Promise<void> {
    const cluster = this.#runner.isCluster;
    const source = this.#seen;
    /** Per group (bucket on a Cluster, one on a single Redis): its calls, in order. */
    const groups = new Map<string, Call[]>();
    const add = (session: LocalSession, positions: Map<string, string>, mark: string): void => {
      const bucket = this.#keys.bucket(session.id);
      const group = cluster ? bucket : '';
      let calls = groups.get(group);
      if (!calls) groups.set(group, (calls = []));
      let call = calls[calls.length - 1];
      if (!call || call.written.length >= SESSIONS_PER_SCRIPT) {
        calls.push((call = { keys: [], args: positionsArgs(this.#keys.nodeChannelPrefix, source?.node), written: [] }));
      }
      let index = call.keys.indexOf(bucket);
      if (index < 0) index = call.keys.push(bucket) - 1;
      pushPositions(call.args, index + 1, session.id, session.gen, positions, mark);
      call.written.push([session, positions, mark]);
    };
    const last = source && seen ? source.last() : undefined;
    if (source) {
      // Leaving first: their own positions reach Redis before a seen they lack.
      for (const session of [...this.#following]) {
        if (this.#keepsUp(session, closed)) {
          if (last !== undefined && this.#joinAgain.delete(session)) add(session, new Map(), joinMark(session.followCount));
          continue;
        }
        this.#following.delete(session);
        this.#joinAgain.delete(session);
        const positions = session.lazy ?? new Map<string, string>();
        session.lazy = undefined;
        session.ackedChannels(positions);
        add(session, positions, SeenMark.Leave);
      }
    }
    for (const session of sessions) {
      const lazy = session.lazy;
      if (!lazy || session.gone) continue;
      session.lazy = undefined;
      if (source && (this.#following.has(session) || (last !== undefined && this.#keepsUp(session, closed)))) {
        // Its channels' positions are this node's seen: only the box's and wildcards' are its own.
        const own = new Map<string, string>();
        for (const [src, position] of lazy) if (src === '' || src.includes('*')) own.set(src, position);
        if (this.#following.has(session)) {
          if (own.size > 0) add(session, own, SeenMark.None);
          continue;
        }
        // Following from the moment the join is sent: whether it lands or not, a later flush writes its positions before a seen it lacks.
        this.#following.add(session);
        add(session, own, joinMark(session.followCount));
        continue;
      }
      add(session, lazy, SeenMark.None);
    }
    let seenWrite: SeenWrite | undefined;
    if (source && last !== undefined && this.#following.size > 0) {
      const ttl = Math.max(MIN_SEEN_TTL_MS, 2 * source.retention());
      if (last !== this.#seenWritten || Date.now() - this.#seenAt > ttl / 4) {
        seenWrite = { key: this.#keys.seenPrefix() + source.node, position: last, ttl };
        // The seen goes with the last script (on a single Redis, the only group).
        const calls = groups.get('');
        let call = calls?.[calls.length - 1];
        if (!call) groups.set('', [(call = { keys: [this.#keys.bucket(source.node)], args: positionsArgs(this.#keys.nodeChannelPrefix, source.node), written: [] })]);
        setPositionsSeen(call.args, seenWrite);
      }
    }
    const results = await Promise.all([...groups.values()].map((calls) => this.#write(calls)));
    if (seenWrite && results.every(Boolean)) {
      this.#seenWritten = seenWrite.position;
      this.#seenAt = Date.now();
    }
  }

  /** One group's calls in turn; on a failure, the rest go back for the next flush. False if one failed. */
  async #write(calls: readonly Call[]): Promise<boolean> {
    for (let c = 0; c < calls.length; c++) {
      const call = calls[c] as Call;
      try {
        await this.#runner.run(Scripts.positions, call.keys, call.args);
      } catch (err) {
        for (const rest of calls.slice(c)) this.#retry(rest.written);
        this.#runner.failed('writing positions', err);
        return false;
      }
    }
    return true;
  }

  /**
   * Not written: try again with the next flush, the positions still the
   * session's own (a take since may have written newer ones), under any
   * a lazy take left meanwhile. A session whose leave was not written
   * follows the seen again, so the next flush leaves it first again.
   */
  #retry(written: ReadonlyArray<[LocalSession, Map<string, string>, string]>): void {
    for (const [session, lazy, mark] of written) {
      if (mark === SeenMark.Leave) {
        // Left again first at the next flush, with these positions (its channels' are written whatever they are).
        this.#following.add(session);
      } else if (mark !== SeenMark.None && this.#following.has(session)) {
        this.#joinAgain.add(session);
      }
      if (session.gone && mark !== SeenMark.Leave) continue;
      for (const [src, position] of lazy) {
        if (session.ackedOf(src) !== position || session.lazy?.has(src)) continue;
        (session.lazy ??= new Map()).set(src, position);
      }
      if (session.lazy) this.#unflushed.add(session);
    }
  }
}
