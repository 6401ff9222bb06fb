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
import { compareIds, type Keys } from './keys.js';
import { list, text } from './errors.js';
import type { Entry, HeldSession } from './held-session.js';
import type { Runner } from './runner.js';

interface Followed {
  readonly pattern: string;
  readonly channel: string;
  readonly sessions: Set<HeldSession>;
  /** Stream id of the last entry applied here; undefined before the first. */
  lastId: string | undefined;
  /** Settles when the channel subscription is active. */
  subscribed: Promise<void>;
  /** A gap is being read: notifications wait in the backlog. */
  filling: Promise<void> | undefined;
  backlog: Announcement[];
}

/** A log entry as announced or read: the entry and its predecessor. */
export interface Announcement {
  readonly entry: Entry;
  /** The id of the entry before it in the log, when known. */
  readonly prev: string | undefined;
}

export interface LogHost {
  /** Entries reached these sessions. */
  delivered(sessions: readonly HeldSession[]): void;
  /** Apply an entry to one session (the queue limits live with the engine). */
  apply(session: HeldSession, entry: Entry): boolean;
  failed(err: unknown): void;
}

export class PatternLogs {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #host: LogHost;
  readonly #followed = new Map<string, Followed>();
  readonly #byChannel = new Map<string, Followed>();
  readonly #onMessage = (message: string, channel: string) => this.#announced(channel, message);

  /** This node's publish ids start with this: its own announcements are applied when Redis answers the publish, in call order. */
  readonly #ownPrefix: string;

  constructor(runner: Runner, keys: Keys, host: LogHost, ownPrefix: string) {
    this.#ownPrefix = ownPrefix;
    this.#runner = runner;
    this.#keys = keys;
    this.#host = host;
  }

  /** How many patterns this node listens to. */
  get size(): number {
    return this.#followed.size;
  }

  /** A session follows `pattern`: resolves when its channel is listened to. */
  follow(session: HeldSession, pattern: string): Promise<void> {
    let followed = this.#followed.get(pattern);
    if (!followed) {
      const channel = this.#keys.pattern(pattern);
      const created: Followed = { pattern, channel, sessions: new Set(), lastId: undefined, subscribed: Promise.resolve(), filling: undefined, backlog: [] };
      created.subscribed = this.#runner.sSubscribe(channel, this.#onMessage).catch((err: unknown) => {
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

  unfollow(session: HeldSession, pattern: string): void {
    const followed = this.#followed.get(pattern);
    if (!followed) return;
    followed.sessions.delete(session);
    if (followed.sessions.size === 0 && !followed.filling) {
      this.#followed.delete(pattern);
      this.#byChannel.delete(followed.channel);
      void this.#runner.sUnsubscribe(followed.channel);
    }
  }

  /** Read a log's entries after `from` (exclusive) up to `to` (inclusive; '+' for the end). */
  async read(pattern: string, from: string, to = '+'): Promise<Entry[]> {
    const key = `${this.#keys.pattern(pattern)}:log`;
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
      if (followed.lastId !== undefined && !followed.filling) this.#fill(followed, '+', []);
    }
  }

  /** Forget everything (close). */
  clear(): void {
    this.#followed.clear();
    this.#byChannel.clear();
  }

  /** Where a session's catch-up read ended: entries up to there reached it. */
  caughtUp(pattern: string, id: string): void {
    const followed = this.#followed.get(pattern);
    if (followed && (followed.lastId === undefined || compareIds(id, followed.lastId) > 0) && !followed.filling) followed.lastId = id;
  }

  // -------------------------------------------------------------------------

  #announced(channel: string, message: string): void {
    const followed = this.#byChannel.get(channel);
    if (!followed) return;
    const announcement = parseAnnouncement(followed.pattern, message);
    if (announcement && !announcement.entry.pub.startsWith(this.#ownPrefix)) this.#receive(followed, announcement);
  }

  #receive(followed: Followed, announcement: Announcement): void {
    if (followed.filling) {
      followed.backlog.push(announcement);
      return;
    }
    const { entry, prev } = announcement;
    const last = followed.lastId;
    if (last !== undefined && compareIds(entry.id, last) <= 0) return;
    if (last !== undefined && prev !== undefined && prev !== last && compareIds(prev, last) > 0) {
      this.#fill(followed, entry.id, [announcement]);
      return;
    }
    followed.lastId = entry.id;
    this.#deliver(followed, entry);
  }

  #deliver(followed: Followed, entry: Entry): void {
    const reached: HeldSession[] = [];
    for (const session of followed.sessions) if (this.#host.apply(session, entry)) reached.push(session);
    if (reached.length > 0) this.#host.delivered(reached);
  }

  /** Read the log from the last applied entry up to `to`, then the backlog. */
  #fill(followed: Followed, to: string, backlog: Announcement[]): void {
    followed.backlog = backlog;
    const from = followed.lastId ?? '0-0';
    followed.filling = (async () => {
      try {
        const entries = await this.read(followed.pattern, from, to);
        for (const entry of entries) {
          if (followed.lastId !== undefined && compareIds(entry.id, followed.lastId) <= 0) continue;
          followed.lastId = entry.id;
          this.#deliver(followed, entry);
        }
      } catch (err) {
        this.#host.failed(err);
      } finally {
        followed.filling = undefined;
        const waiting = followed.backlog;
        followed.backlog = [];
        for (const announcement of waiting) {
          // Whatever the read missed (an error) is accepted as is: the chain restarts here.
          if (followed.lastId === undefined || compareIds(announcement.entry.id, followed.lastId) > 0) {
            if (!followed.filling) {
              followed.lastId = announcement.entry.id;
              this.#deliver(followed, announcement.entry);
            } else {
              followed.backlog.push(announcement);
            }
          }
        }
        if (followed.sessions.size === 0 && !followed.filling && this.#followed.get(followed.pattern) === followed) {
          this.#followed.delete(followed.pattern);
          this.#byChannel.delete(followed.channel);
          void this.#runner.sUnsubscribe(followed.channel);
        }
      }
    })();
  }
}

/** `<id> <prev> <pub> <except> <message>` */
function parseAnnouncement(pattern: string, message: string): Announcement | undefined {
  const a = message.indexOf(' ');
  const b = message.indexOf(' ', a + 1);
  const c = message.indexOf(' ', b + 1);
  const d = message.indexOf(' ', c + 1);
  if (a < 0 || b < 0 || c < 0 || d < 0) return undefined;
  return {
    prev: message.slice(a + 1, b),
    entry: { src: pattern, id: message.slice(0, a), pub: message.slice(b + 1, c), except: message.slice(c + 1, d), text: message.slice(d + 1) },
  };
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
    if (field === 'm') message = value;
    else if (field === 'u') pub = value;
    else if (field === 'x') except = value;
  }
  return { src, id: text(id), text: message, pub, except };
}
