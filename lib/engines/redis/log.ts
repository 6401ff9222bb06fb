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
import { compareIds, isAfter, type Keys, type Position } from './keys.js';
import { list, text } from './replies.js';
import { exceptOf, makeEntry, type Entry, type LocalSession } from './local-session.js';
import { PatternKey, StreamField } from './lua/contract.js';
import type { Runner } from './runner.js';

interface Followed {
  readonly pattern: string;
  readonly channel: string;
  readonly sessions: Set<LocalSession>;
  /** The last entry applied here; undefined before the first. */
  last: Position | undefined;
  /** Settles when the channel subscription is active. */
  subscribed: Promise<void>;
  /** A gap is being read: notifications wait in the backlog. */
  filling: Promise<void> | undefined;
  backlog: Announcement[];
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
  /** Hand entries of `pattern`'s log to `sessions`, in log order. */
  fanOut(sessions: ReadonlySet<LocalSession>, pattern: string, entries: readonly Entry[]): void;
}

export class PatternLogs {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #fanOut: FanOut;
  readonly #followed = new Map<string, Followed>();
  readonly #byChannel = new Map<string, Followed>();
  readonly #onMessage = (message: string, channel: string) => this.#announced(channel, message);

  /** This node's publish ids start with this: its own announcements are applied when Redis answers the publish, in call order. */
  readonly #ownPrefix: string;

  constructor(runner: Runner, keys: Keys, fanOut: FanOut, ownPrefix: string) {
    this.#ownPrefix = ownPrefix;
    this.#runner = runner;
    this.#keys = keys;
    this.#fanOut = fanOut;
  }

  /** How many patterns this node listens to. */
  get size(): number {
    return this.#followed.size;
  }

  /** A session follows `pattern`: resolves when its channel is listened to. */
  follow(session: LocalSession, pattern: string): Promise<void> {
    let followed = this.#followed.get(pattern);
    if (!followed) {
      const channel = this.#keys.pattern(pattern);
      const created: Followed = { pattern, channel, sessions: new Set(), last: undefined, subscribed: Promise.resolve(), filling: undefined, backlog: [] };
      created.subscribed = this.#runner.subscribePattern(channel, this.#onMessage).catch((err: unknown) => {
        // Try again on the next follow.
        if (this.#followed.get(pattern) === created) {
          this.#followed.delete(pattern);
          this.#byChannel.delete(channel);
        }
        throw err;
      });
      followed = created;
      this.#followed.set(pattern, followed);
      this.#byChannel.set(channel, followed);
    }
    followed.sessions.add(session);
    return followed.subscribed;
  }

  unfollow(session: LocalSession, pattern: string): void {
    const followed = this.#followed.get(pattern);
    if (!followed) return;
    followed.sessions.delete(session);
    if (followed.sessions.size === 0 && !followed.filling) {
      this.#followed.delete(pattern);
      this.#byChannel.delete(followed.channel);
      void this.#runner.unsubscribePattern(followed.channel);
    }
  }

  /** Read a log's entries after `from` (exclusive) up to `to` (inclusive; '+' for the end). */
  async read(pattern: string, from: string, to = '+'): Promise<Entry[]> {
    const key = this.#keys.pattern(pattern) + PatternKey.Log;
    const reply = list(await this.#runner.command(key, ['XRANGE', key, `(${from}`, to], true));
    return reply.map((item) => entryOf(pattern, item));
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

  /** Whether a gap of one of these patterns is being read. */
  busy(patterns: Iterable<string>): boolean {
    for (const pattern of patterns) if (this.#followed.get(pattern)?.filling) return true;
    return false;
  }

  /** Settles when no gap of these patterns is being read. */
  async settled(patterns: Iterable<string>): Promise<void> {
    for (const pattern of patterns) {
      const filling = this.#followed.get(pattern)?.filling;
      if (filling) await filling.catch(() => undefined);
    }
  }

  /** After a Pub/Sub reconnection: read what every followed log got meanwhile. */
  resync(): void {
    for (const followed of this.#followed.values()) {
      if (followed.last !== undefined && !followed.filling) this.#fill(followed, '+', []);
    }
  }

  /** Forget everything (close). */
  clear(): void {
    this.#followed.clear();
    this.#byChannel.clear();
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
    if (!followed || followed.filling || followed.sessions.size !== 1 || !followed.sessions.has(session)) return;
    if (followed.last === undefined || isAfter(position, followed.last)) followed.last = position;
  }

  // -------------------------------------------------------------------------

  #announced(channel: string, message: string): void {
    const followed = this.#byChannel.get(channel);
    if (!followed) return;
    const announcement = parseAnnouncement(followed.pattern, message, this.#ownPrefix);
    if (announcement) this.#receive(followed, announcement);
  }

  #receive(followed: Followed, announcement: Announcement): void {
    if (followed.filling) {
      followed.backlog.push(announcement);
      return;
    }
    const last = followed.last;
    const entries = last === undefined ? announcement.entries : newer(announcement.entries, last);
    if (entries.length === 0) return;
    const { prev } = announcement;
    if (last !== undefined && entries === announcement.entries && prev !== last.id && compareIds(prev, last.id) > 0) {
      // Entries before these were not applied here: read them first.
      this.#fill(followed, prev, [announcement]);
      return;
    }
    this.#deliver(followed, entries);
  }

  #deliver(followed: Followed, entries: readonly Entry[]): void {
    followed.last = entries[entries.length - 1];
    this.#fanOut.fanOut(followed.sessions, followed.pattern, entries);
  }

  /** Read the log from the last applied entry up to `to`, then the backlog. */
  #fill(followed: Followed, to: string, backlog: Announcement[]): void {
    followed.backlog = backlog;
    const from = followed.last?.id ?? '0-0';
    followed.filling = (async () => {
      try {
        const entries = await this.read(followed.pattern, from, to);
        const fresh = followed.last === undefined ? entries : newer(entries, followed.last);
        if (fresh.length > 0) this.#deliver(followed, fresh);
      } catch (err) {
        this.#runner.failed('reading a log', err);
      } finally {
        followed.filling = undefined;
        const waiting = followed.backlog;
        followed.backlog = [];
        for (const announcement of waiting) {
          // Whatever the read missed (an error) is accepted as is: the chain restarts here.
          const fresh = followed.last === undefined ? announcement.entries : newer(announcement.entries, followed.last);
          if (fresh.length === 0) continue;
          if (!followed.filling) this.#deliver(followed, fresh);
          else followed.backlog.push(announcement);
        }
        if (followed.sessions.size === 0 && !followed.filling && this.#followed.get(followed.pattern) === followed) {
          this.#followed.delete(followed.pattern);
          this.#byChannel.delete(followed.channel);
          void this.#runner.unsubscribePattern(followed.channel);
        }
      }
    })();
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
export function parseAnnouncement(pattern: string, message: string, ownPrefix: string): Announcement | undefined {
  let at = 0;
  const field = (): string | undefined => {
    const end = message.indexOf(' ', at);
    if (end < 0) return undefined;
    const value = message.slice(at, end);
    at = end + 1;
    return value;
  };
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
    if (id === undefined || pub === undefined || except === undefined || !Number.isSafeInteger(length) || length < 0 || at + length > message.length) return undefined;
    entries[k] = makeEntry(pattern, id, message.slice(at, at + length), pub, exceptOf(except));
    at += length + 1;
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
