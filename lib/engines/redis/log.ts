/**
 * The pattern logs, as this node follows them. A publish appends one entry
 * to the log (a Redis Stream) of each pattern of the channel's expansion
 * that has subscribers, and announces it on the pattern's channel with the
 * id of the entry before it. This node listens on the channels of the
 * patterns its held sessions follow, and hands each entry to those
 * sessions (the local fan-out). The announced previous id chains the
 * entries: when it is not the last one this node applied (a notification
 * lost in a reconnection, or this node's own publish answered before an
 * earlier one was announced), the node reads the gap from the log before
 * going on, so every entry is applied once and in order.
 */
import { compareIds, isAfter, positionOf, shardEnd, shardEntryOf, shardPosition, type Keys, type Position } from './keys.js';
import { list, text } from './replies.js';
import { exceptOf, makeEntry, type Entry, type LocalSession } from './local-session.js';
import { PatternKey, StreamField } from './lua/contract.js';
import type { Runner } from './runner.js';

/** What gap filling keeps of a log this node follows: a pattern's, or the shard. */
interface Log {
  /** The last entry applied here; undefined before the first. */
  last: Position | undefined;
  /** A gap is being read: notifications wait in the backlog. */
  filling: Promise<void> | undefined;
  /** Created when an announcement waits (most patterns never have a gap). */
  backlog: Announcement[] | undefined;
}

interface Followed extends Log {
  readonly pattern: string;
  /** Its announcement channel (a channel logged in the shard: the shard's). */
  readonly channel: string;
  /**
   * The sessions here that follow it: the one session, or a Set when
   * several do (most channels have one subscriber, and a Set would cost
   * each of them about 200 bytes); undefined when none is left while a
   * gap is read.
   */
  sessions: Followers;
  /** Settles when the channel subscription is active; undefined once it is (and for a channel logged in the shard). */
  subscribed: Promise<void> | undefined;
}

/**
 * The shard (`channelLogs: 'shard'`): the one log of every channel,
 * followed while a channel is followed here. Its positions are the
 * publishes' (`shardPosition`); an entry's last publish has the entry's.
 */
interface ShardLog extends Log {
  /** Its base and announcement channel. */
  readonly channel: string;
  /** Channels followed here. */
  channels: number;
  /** Settles when its channel subscription is active; undefined when not subscribing. */
  subscribed: Promise<void> | undefined;
  /** The channel subscription is active. */
  listening: boolean;
}

/** The sessions here following a pattern (see `Followed.sessions`). */
export type Followers = LocalSession | ReadonlySet<LocalSession> | undefined;

const SUBSCRIBED: Promise<void> = Promise.resolve();

/**
 * With shard logs: how long a gap in the shard waits, when none of this
 * node's answers is on its way, for another node's announcement that
 * Redis sent before answering this node, before it is read (ms).
 */
const GAP_GRACE_MS = 2;

/** `sessions` with `session` added (a Set from two on; the Set itself is changed in place). */
function withFollower(sessions: Followers, session: LocalSession): Followers {
  if (sessions === undefined || sessions === session) return session;
  if (sessions instanceof Set) return (sessions as Set<LocalSession>).add(session);
  return new Set([sessions as LocalSession, session]);
}

/** `sessions` without `session` (back to the lone session when one is left). */
function withoutFollower(sessions: Followers, session: LocalSession): Followers {
  if (!(sessions instanceof Set)) return sessions === session ? undefined : sessions;
  const set = sessions as Set<LocalSession>;
  set.delete(session);
  if (set.size > 1) return set;
  return set.size === 1 ? set.values().next().value : undefined;
}

/** Entries appended to a log by one script run (one node's publishes of a tick), as announced. */
export interface Announcement {
  /** In log order. */
  readonly entries: readonly Entry[];
  /** The id of the entry before the first of them in the log. */
  readonly prev: string;
}

/** Where the entries of a followed log go: the sessions here that follow it (`SessionFanOut` in local-sessions.ts). */
export interface FanOut {
  /** Hand entries of `pattern`'s log to `sessions` (one session, or a Set of several), in log order. */
  fanOut(sessions: LocalSession | ReadonlySet<LocalSession>, pattern: string, entries: readonly Entry[]): void;
}

export class PatternLogs {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #fanOut: FanOut;
  readonly #followed = new Map<string, Followed>();
  readonly #onMessage = (message: string, channel: string) => this.#announced(channel, message);
  /** With `channelLogs: 'shard'`: the shard every channel is logged in. */
  readonly #shard: ShardLog | undefined;
  /**
   * With shard logs: this node's shard scripts sent and answered (their
   * entries applied here from the answer, in call order; `shardSent`,
   * `shardAnswered`, called by the Publisher). Every node's publishes
   * chain in the one shard, so another node's announcement often arrives
   * before the answer of this node's publish it follows: a gap that, read
   * from the log, would cost a read and let wildcard patterns' publishes
   * overtake the shard's meanwhile.
   */
  #ownSent = 0;
  #ownDone = 0;
  /**
   * So while answers sent before such a gap are on their way, and while
   * the shard reads a gap, every announcement that comes (of any log)
   * waits here in arrival order, and is applied in that order after:
   * a wildcard pattern's publishes do not overtake the shard's, and a gap
   * this node's answers close is not read.
   */
  #hold: { until: number; grace: boolean; readonly queue: Array<[Log, Announcement]> } | undefined;
  /** The held announcements are being applied: a gap one of them shows is read at once (it was waited for). */
  #replaying = false;

  /** This node's publish ids start with this: its own announcements are applied when Redis answers the publish, in call order. */
  readonly #ownPrefix: string;

  /** @param shard channels are logged in the shard (`channelLogs: 'shard'`). */
  constructor(runner: Runner, keys: Keys, fanOut: FanOut, ownPrefix: string, shard = false) {
    this.#ownPrefix = ownPrefix;
    this.#runner = runner;
    this.#keys = keys;
    this.#fanOut = fanOut;
    this.#shard = shard
      ? { channel: keys.shardBase(), channels: 0, subscribed: undefined, listening: false, last: undefined, filling: undefined, backlog: undefined }
      : undefined;
  }

  /** Whether `pattern` is logged in the shard: a channel (no wildcard), with `channelLogs: 'shard'`. */
  inShard(pattern: string): boolean {
    return this.#shard !== undefined && !pattern.includes('*');
  }

  /** The log a pattern's entries come through: the shard for a channel in it, else its own. */
  #logOf(pattern: string): Log | undefined {
    return this.#shard !== undefined && !pattern.includes('*') ? this.#shard : this.#followed.get(pattern);
  }

  /** How many patterns this node listens to. */
  get size(): number {
    return this.#followed.size;
  }

  /** A session follows `pattern`: resolves when its channel is listened to. */
  follow(session: LocalSession, pattern: string): Promise<void> {
    let followed = this.#followed.get(pattern);
    const shard = this.#shard;
    if (shard !== undefined && !pattern.includes('*')) {
      if (!followed) {
        followed = { pattern, channel: shard.channel, sessions: undefined, last: undefined, subscribed: undefined, filling: undefined, backlog: undefined };
        this.#followed.set(pattern, followed);
        shard.channels++;
      }
      followed.sessions = withFollower(followed.sessions, session);
      return this.#listen(shard);
    }
    if (!followed) {
      const channel = this.#keys.patternBase(pattern);
      const created: Followed = { pattern, channel, sessions: undefined, last: undefined, subscribed: undefined, filling: undefined, backlog: undefined };
      const subscribing: Promise<void> = this.#runner.subscribePattern(channel, this.#onMessage).then(
        () => {
          // A settled promise each would cost every followed pattern its bytes: later follows get a shared one.
          if (created.subscribed === subscribing) created.subscribed = undefined;
        },
        (err: unknown) => {
          // Try again on the next follow.
          if (this.#followed.get(pattern) === created) this.#followed.delete(pattern);
          throw err;
        },
      );
      created.subscribed = subscribing;
      followed = created;
      this.#followed.set(pattern, followed);
    }
    followed.sessions = withFollower(followed.sessions, session);
    return followed.subscribed ?? SUBSCRIBED;
  }

  unfollow(session: LocalSession, pattern: string): void {
    const followed = this.#followed.get(pattern);
    if (!followed) return;
    followed.sessions = withoutFollower(followed.sessions, session);
    if (followed.sessions === undefined && !followed.filling) this.#release(followed);
  }

  /** With shard logs: the shard's last entry applied here, while no gap is read (else undefined). */
  get shardLast(): Position | undefined {
    const shard = this.#shard;
    return shard?.listening && !shard.filling ? shard.last : undefined;
  }

  /**
   * Read each followed log after its position (`subs`: pattern, position),
   * as {@link read} does; the channels in the shard with one read of it,
   * from the earliest of their positions.
   */
  async readEach(subs: ReadonlyArray<readonly [string, string]>): Promise<Entry[][]> {
    let from: string | undefined;
    let sharded = 0;
    for (const [pattern, position] of subs) {
      if (!this.inShard(pattern)) continue;
      sharded++;
      if (from === undefined || compareIds(position, from) < 0) from = position;
    }
    if (sharded < 2 || from === undefined) return Promise.all(subs.map(([pattern, position]) => this.read(pattern, position)));
    const shard = this.#readShard(from === '0-0' ? '-' : shardEntryOf(from), '+');
    return Promise.all(subs.map(async ([pattern, position]) => {
      if (!this.inShard(pattern)) return this.read(pattern, position);
      const after = positionOf(position);
      return (await shard).filter((entry) => entry.src === pattern && isAfter(entry, after));
    }));
  }

    /** A shard script of this node's is on its way. */
  shardSent(): void {
    this.#ownSent++;
  }

  /** Its answer was applied (`ownShard`, in call order), or it failed. */
  shardAnswered(): void {
    this.#ownDone++;
    this.#releaseHeld();
  }

  /** The held announcements, in arrival order, once the answers waited for are in and the shard reads no gap. */
  #releaseHeld(): void {
    const hold = this.#hold;
    if (hold === undefined || hold.grace || this.#ownDone < hold.until || this.#shard?.filling) return;
    this.#hold = undefined;
    const queue = hold.queue;
    this.#replaying = true;
    try {
      const shard = this.#shard;
      for (let i = 0; i < queue.length; i++) {
        const [log, announcement] = queue[i] as [Log, Announcement];
        if (log === shard && shard.last !== undefined && compareIds(announcement.prev, shard.last.id) > 0) {
          // Still a gap: shard announcements that came later may close it; those go first, in chain order.
          for (;;) {
            const last: Position | undefined = shard.last;
            if (last === undefined) break;
            const k = queue.findIndex(([l, a], j) => j > i && l === shard && compareIds(a.prev, last.id) <= 0);
            if (k < 0) break;
            const next = (queue.splice(k, 1)[0] as [Log, Announcement])[1];
            this.#receive(shard, next);
          }
        }
        if (this.#follows(log)) this.#receive(log, announcement);
        if (this.#hold !== undefined) {
          // A gap read: the rest waits again, behind it.
          for (let k = i + 1; k < queue.length; k++) (this.#hold as { queue: Array<[Log, Announcement]> }).queue.push(queue[k] as [Log, Announcement]);
          return;
        }
      }
    } finally {
      this.#replaying = false;
    }
  }

  /** Listen to the shard's announcements (again, after a failure). */
  #listen(shard: ShardLog): Promise<void> {
    if (shard.listening) return SUBSCRIBED;
    if (shard.subscribed) return shard.subscribed;
    const subscribing: Promise<void> = this.#runner.subscribePattern(shard.channel, this.#onMessage).then(
      () => {
        if (shard.subscribed !== subscribing) return;
        shard.subscribed = undefined;
        shard.listening = true;
        // Every channel left while subscribing.
        if (shard.channels === 0) this.#releaseShard(shard);
      },
      (err: unknown) => {
        // Try again on the next follow.
        if (shard.subscribed === subscribing) shard.subscribed = undefined;
        throw err;
      },
    );
    shard.subscribed = subscribing;
    return subscribing;
  }

  /** Nothing follows `followed` here any more. */
  #release(followed: Followed): void {
    this.#followed.delete(followed.pattern);
    const shard = this.#shard;
    if (shard !== undefined && followed.channel === shard.channel) {
      shard.channels--;
      if (shard.channels === 0 && !shard.filling) this.#releaseShard(shard);
    } else {
      void this.#runner.unsubscribePattern(followed.channel);
    }
  }

  /** No channel is followed here: stop listening to the shard, forget where it was. */
  #releaseShard(shard: ShardLog): void {
    shard.last = undefined;
    shard.backlog = undefined;
    if (!shard.listening) return;
    shard.listening = false;
    void this.#runner.unsubscribePattern(shard.channel);
  }

  /**
   * Read a log's entries after `from` (exclusive) up to `to` (inclusive;
   * '+' for the end). A channel in the shard: the shard's, that channel's
   * publishes only.
   */
  async read(pattern: string, from: string, to = '+'): Promise<Entry[]> {
    if (!this.inShard(pattern)) {
      const key = this.#keys.patternBase(pattern) + PatternKey.Log;
      const reply = list(await this.#runner.command(key, ['XRANGE', key, `(${from}`, to], true));
      return reply.map((item) => entryOf(pattern, item));
    }
    // Positions may fall inside an entry: read from its entry on, keep what is after.
    const after = positionOf(from);
    const until = to === '+' ? undefined : positionOf(to);
    const entries: Entry[] = [];
    for (const entry of await this.#readShard(from === '0-0' ? '-' : shardEntryOf(from), to === '+' ? '+' : shardEntryOf(to))) {
      if (entry.src === pattern && isAfter(entry, after) && (until === undefined || !isAfter(entry, until))) entries.push(entry);
    }
    return entries;
  }

  /** The shard's publishes in entries `start` to `end` (XRANGE bounds), every channel's. */
  async #readShard(start: string, end: string): Promise<Entry[]> {
    const key = this.#keys.shardBase() + PatternKey.Log;
    const reply = list(await this.#runner.command(key, ['XRANGE', key, start, end], true));
    const entries: Entry[] = [];
    for (const item of reply) {
      const [id, fields] = list(item);
      const values = list(fields);
      for (let i = 0; i < values.length; i += 2) {
        if (text(values[i]) === StreamField.Publishes) parsePublishes(text(id), text(values[i + 1]), 0, entries, '');
      }
    }
    return entries;
  }

  /**
   * This node published `announcement` to `pattern`: apply it now (the
   * publish resolves with its recipients already queued), unless a gap
   * must be read first. Resolves when applied.
   */
  own(pattern: string, announcement: Announcement): Promise<void> {
    const followed = this.#followed.get(pattern);
    if (!followed) return Promise.resolve();
    this.#receive(followed, announcement);
    return followed.filling ?? Promise.resolve();
  }

  /** As {@link own}, for this node's publishes in one shard entry (positions and `prev` as `shardPosition` gives them). */
  ownShard(announcement: Announcement): Promise<void> {
    const shard = this.#shard;
    // Applied as soon as a channel is followed here, as a pattern's own are, even while the shard's
    // channel subscription is on its way: else the next answer would find a gap, and be read.
    if (shard === undefined || shard.channels === 0) return Promise.resolve();
    this.#receive(shard, announcement);
    return shard.filling ?? Promise.resolve();
  }

  /** Whether a gap of one of these patterns' logs is being read. */
  busy(patterns: Iterable<string>): boolean {
    for (const pattern of patterns) if (this.#logOf(pattern)?.filling) return true;
    return false;
  }

  /** Settles when no gap of these patterns' logs is being read. */
  async settled(patterns: Iterable<string>): Promise<void> {
    for (const pattern of patterns) {
      const filling = this.#logOf(pattern)?.filling;
      if (filling) await filling.catch(() => undefined);
    }
  }

  /** After a Pub/Sub reconnection: read what every followed log got meanwhile. */
  resync(): void {
    for (const followed of this.#followed.values()) {
      if (followed.last !== undefined && !followed.filling) this.#fill(followed, '+', []);
    }
    const shard = this.#shard;
    if (shard?.last !== undefined && !shard.filling) this.#fill(shard, '+', []);
  }

  /** Forget everything (close). */
  clear(): void {
    this.#followed.clear();
    this.#hold = undefined;
    const shard = this.#shard;
    if (shard) {
      shard.channels = 0;
      shard.last = undefined;
      shard.backlog = undefined;
      shard.listening = false;
      shard.subscribed = undefined;
    }
  }

  /**
   * Where `session`'s catch-up read ended: entries up to there reached it.
   * Recorded as the last applied only when it is the one session here
   * following the pattern: another session may still wait for the
   * announcement of an entry the read already saw (a session taken over
   * while messages flow, as in a rolling deploy), which would then be
   * dropped as applied. With other followers, an announcement whose
   * `prev` is beyond `last` reads the gap instead, and each session's
   * cursor drops what it already has.
   */
  caughtUp(pattern: string, position: Position, session: LocalSession): void {
    const followed = this.#followed.get(pattern);
    // The shard is every channel's: one session's read says nothing of the others'.
    if (!followed || followed.filling || followed.sessions !== session || this.inShard(pattern)) return;
    if (followed.last === undefined || isAfter(position, followed.last)) followed.last = position;
  }

  // -------------------------------------------------------------------------

  #announced(channel: string, message: string): void {
    const shard = this.#shard;
    if (shard !== undefined && channel === shard.channel) {
      if (!shard.listening) return;
      const announcement = parseShardAnnouncement(message, this.#ownPrefix);
      if (!announcement) return;
      if (this.#hold) this.#hold.queue.push([shard, announcement]);
      else this.#receive(shard, announcement);
      return;
    }
    // The pattern is in the channel's name: no second Map by channel (an entry per followed pattern).
    const pattern = this.#keys.patternOf(channel);
    const followed = pattern === undefined ? undefined : this.#followed.get(pattern);
    if (!followed) return;
    const announcement = parseAnnouncement(followed.pattern, message, this.#ownPrefix);
    if (!announcement) return;
    if (this.#hold) this.#hold.queue.push([followed, announcement]);
    else this.#receive(followed, announcement);
  }

  #receive(followed: Log, announcement: Announcement): void {
    if (followed.filling) {
      (followed.backlog ??= []).push(announcement);
      return;
    }
    const entries = this.#fresh(followed, announcement);
    if (entries.length === 0) return;
    if (followed.last !== undefined && entries === announcement.entries && compareIds(announcement.prev, followed.last.id) > 0) {
      if (followed === this.#shard && !this.#replaying) {
        // Likely entries on their way: this node's own, whose answers come in call order, or another node's,
        // which Redis announced before answering this node (they come on another connection). Wait for them
        // (see #hold): for the answers sent so far, else a moment (GAP_GRACE_MS); then read what is still missing.
        const own = this.#ownDone < this.#ownSent;
        const hold = this.#hold ?? { until: 0, grace: false, queue: [] };
        this.#hold = hold;
        hold.until = Math.max(hold.until, this.#ownSent);
        hold.queue.unshift([followed, announcement]);
        if (!own && !hold.grace) {
          hold.grace = true;
          setTimeout(() => {
            hold.grace = false;
            if (this.#hold === hold) this.#releaseHeld();
          }, GAP_GRACE_MS).unref();
        }
        return;
      }
      // Entries before these were not applied here: read them first.
      this.#fill(followed, announcement.prev, [announcement]);
      return;
    }
    this.#deliver(followed, entries);
  }

  /** An announcement's entries not applied here yet. */
  #fresh(followed: Log, announcement: Announcement): readonly Entry[] {
    return followed.last === undefined ? announcement.entries : newer(announcement.entries, followed.last);
  }

  #deliver(log: Log, entries: readonly Entry[]): void {
    log.last = entries[entries.length - 1];
    if (log === this.#shard) {
      this.#dispatch(entries);
      return;
    }
    const followed = log as Followed;
    if (followed.sessions !== undefined) this.#fanOut.fanOut(followed.sessions, followed.pattern, entries);
  }

  /** The shard's entries to the sessions here following their channels, in log order (runs of one channel at a time). */
  #dispatch(entries: readonly Entry[]): void {
    let start = 0;
    while (start < entries.length) {
      const src = (entries[start] as Entry).src;
      let end = start + 1;
      while (end < entries.length && (entries[end] as Entry).src === src) end++;
      const sessions = this.#followed.get(src)?.sessions;
      if (sessions !== undefined) this.#fanOut.fanOut(sessions, src, start === 0 && end === entries.length ? entries : entries.slice(start, end));
      start = end;
    }
  }

  /** Whether this node still follows the log (a fill goes on only then). */
  #follows(log: Log): boolean {
    if (log === this.#shard) return this.#shard.channels > 0;
    const followed = log as Followed;
    return this.#followed.get(followed.pattern) === followed;
  }

  /** Read a log after `from` up to `to` ('+' the end). */
  #readLog(log: Log, from: string, to: string): Promise<Entry[]> {
    if (log === this.#shard) {
      // The shard's positions read here are entry ends: after one is the next entry.
      return this.#readShard(from === '0-0' ? '-' : `(${shardEntryOf(from)}`, to === '+' ? '+' : shardEntryOf(to));
    }
    return this.read((log as Followed).pattern, from, to);
  }

  /**
   * Read the log from the last applied entry up to `to`, then apply the
   * backlog in arrival order. Arrival order is not log order: this node's
   * own announcements are applied when Redis answers its publish (on a
   * Cluster, when every slot's script of the tick answered, in call order),
   * while other nodes' come on the channel as soon as they are sent. So a
   * backlog announcement whose `prev` is past the last applied entry and
   * past what was read is another gap, read before going on, as `#receive`
   * does: applied anyway, it would move `last` past entries still on their
   * way (this node's own publish), which would then be dropped as applied.
   * Each further read ends further on, so the fill ends once the backlog
   * has no gap left. Settles when all is applied (`own` waits for it).
   */
  #fill(followed: Log, to: string, backlog: Announcement[]): void {
    followed.backlog = backlog;
    // What comes meanwhile waits (#hold): the shard's backlog holds only what was waiting already.
    if (followed === this.#shard) this.#hold ??= { until: 0, grace: false, queue: [] };
    followed.filling = (async () => {
      try {
        let until: string | undefined = to;
        while (until !== undefined && this.#follows(followed)) {
          let entries: Entry[];
          try {
            entries = await this.#readLog(followed, followed.last?.id ?? '0-0', until);
          } catch (err) {
            this.#runner.failed('reading a log', err);
            // Whatever the read missed is accepted as is: the chain restarts here.
            this.#applyBacklog(followed, undefined);
            return;
          }
          const fresh = followed.last === undefined ? entries : newer(entries, followed.last);
          if (fresh.length > 0) this.#deliver(followed, fresh);
          // The log is read up to here: what it lacked there is gone (trimmed), not on its way.
          until = this.#applyBacklog(followed, until === '+' ? followed.last?.id : until);
        }
      } finally {
        followed.filling = undefined;
        const shard = this.#shard;
        if (followed === shard) {
          if (shard.channels === 0) this.#releaseShard(shard);
          this.#releaseHeld();
        } else if ((followed as Followed).sessions === undefined && this.#follows(followed)) {
          this.#release(followed as Followed);
        }
      }
    })();
  }

  /**
   * Apply the backlog in order until an announcement whose `prev` is past
   * both the last applied entry and `read` (the log was read up to there;
   * undefined: accept everything).
   * Returns that `prev`, the backlog left from that announcement on; or
   * undefined when all of it was applied.
   */
  #applyBacklog(followed: Log, read: string | undefined): string | undefined {
    const waiting = followed.backlog ?? [];
    followed.backlog = undefined;
    for (let i = 0; i < waiting.length; i++) {
      const announcement = waiting[i] as Announcement;
      const fresh = this.#fresh(followed, announcement);
      if (fresh.length === 0) continue;
      const { prev } = announcement;
      if (read !== undefined && fresh === announcement.entries && compareIds(prev, read) > 0 && (followed.last === undefined || compareIds(prev, followed.last.id) > 0)) {
        followed.backlog = [...waiting.slice(i), ...(followed.backlog ?? [])];
        return prev;
      }
      this.#deliver(followed, fresh);
    }
    return undefined;
  }
}

/** The entries after `last` (all of them, the same array, in the usual case). */
function newer(entries: readonly Entry[], last: Position): readonly Entry[] {
  let i = 0;
  while (i < entries.length && !isAfter(entries[i] as Entry, last)) i++;
  return i === 0 ? entries : entries.slice(i);
}

/**
 * `<prev> <count>` then per entry ` <id> <pub> <except> <length> <message>`
 * (see the publish script). Undefined for a malformed one, and for this
 * node's own (`ownPrefix`), which it applied when Redis answered.
 */
/**
 * A shard's announcement: `<prev entry> <entry> ` then the entry's
 * publishes (`StreamField.Publishes`). Positions as `shardPosition` gives
 * them; undefined for a malformed one and for this node's own.
 */
export function parseShardAnnouncement(message: string, ownPrefix: string): Announcement | undefined {
  const a = message.indexOf(' ');
  const b = a < 0 ? -1 : message.indexOf(' ', a + 1);
  if (b < 0) return undefined;
  const entries: Entry[] = [];
  if (!parsePublishes(message.slice(a + 1, b), message, b + 1, entries, ownPrefix) || entries.length === 0) return undefined;
  return { prev: shardEnd(message.slice(0, a)), entries };
}

/**
 * A shard entry's publishes, from `at` in `text`: `<count>` then per
 * publish ` <channel> <publish id> <except> <length> <message>`, appended
 * to `out` with their positions in entry `id`. False for a malformed one,
 * and for this node's own (`ownPrefix`, '' none).
 */
function parsePublishes(id: string, text: string, start: number, out: Entry[], ownPrefix: string): boolean {
  const fields = new Fields(text, start);
  const field = () => fields.next();
  const count = Number(field());
  if (!Number.isSafeInteger(count) || count <= 0 || count > SHARD_MAX_PUBLISHES) return false;
  for (let k = 0; k < count; k++) {
    const channel = field();
    const pub = field();
    if (k === 0 && pub !== undefined && ownPrefix !== '' && pub.startsWith(ownPrefix)) return false;
    const except = field();
    const length = Number(field());
    const message = channel === undefined || pub === undefined || except === undefined ? undefined : fields.take(length);
    if (message === undefined) return false;
    out.push(makeEntry(channel as string, shardPosition(id, k, count), message, pub as string, exceptOf(except as string)));
  }
  return true;
}

/** Space-separated fields of an announcement or a shard entry, read in turn; a message is taken by its length. */
class Fields {
  readonly #text: string;
  #at: number;

  constructor(text: string, at = 0) {
    this.#text = text;
    this.#at = at;
  }

  /** The next field (up to a space); undefined at the end. */
  next(): string | undefined {
    const end = this.#text.indexOf(' ', this.#at);
    if (end < 0) return undefined;
    const value = this.#text.slice(this.#at, end);
    this.#at = end + 1;
    return value;
  }

  /** The next `length` characters (and the space after); undefined for a bad length or past the end. */
  take(length: number): string | undefined {
    if (!Number.isSafeInteger(length) || length < 0 || this.#at + length > this.#text.length) return undefined;
    const value = this.#text.slice(this.#at, this.#at + length);
    this.#at += length + 1;
    return value;
  }
}

/** Most publishes one shard entry holds: below `SHARD_SPAN` (a tick's batch holds at most 100). */
const SHARD_MAX_PUBLISHES = 1000;

export function parseAnnouncement(pattern: string, message: string, ownPrefix: string): Announcement | undefined {
  const fields = new Fields(message);
  const field = () => fields.next();
  const prev = field();
  const count = Number(field());
  if (prev === undefined || !Number.isSafeInteger(count) || count <= 0) return undefined;
  const entries = new Array<Entry>(count);
  for (let k = 0; k < count; k++) {
    const id = field();
    const pub = field();
    if (k === 0 && pub !== undefined && ownPrefix !== '' && pub.startsWith(ownPrefix)) return undefined;
    const except = field();
    const length = Number(field());
    const text = id === undefined || pub === undefined || except === undefined ? undefined : fields.take(length);
    if (text === undefined) return undefined;
    entries[k] = makeEntry(pattern, id as string, text, pub as string, exceptOf(except as string));
  }
  return { prev, entries };
}

/** An XRANGE item: [id, [field, value, ...]] */
export function entryOf(src: string, item: unknown): Entry {
  const [id, fields] = list(item);
  const values = list(fields);
  let message = '';
  let pub = '';
  let except = '-';
  for (let i = 0; i < values.length; i += 2) {
    const field = text(values[i]);
    const value = text(values[i + 1]);
    if (field === StreamField.Message) message = value;
    else if (field === StreamField.Publish) pub = value;
    else if (field === StreamField.Except) except = value;
  }
  return makeEntry(src, text(id), message, pub, exceptOf(except));
}
