/**
 * A channel's presence as the client sees it (`subscribe(channel, fn,
 * { presence: true })`): the snapshot of the subscribe's reply, kept up to
 * date by the server's join and leave notices. Users are keyed by id;
 * anonymous sessions by the opaque `session` tag the server gives them.
 */

/** One user present on a channel, as the client sees it. */
export interface PresentUser {
  /** The user's id (the server's `identify`); undefined for an anonymous session. */
  user: string | undefined;
  /** What the server's `identify` gave as `info`, if anything. */
  info?: unknown;
  /** An anonymous session's tag: tells anonymous sessions apart, says nothing else. */
  session?: string;
}

/** What the client's `join` and `leave` events report. */
export type PresenceEvent = 'join' | 'leave';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A notice or snapshot entry, checked; undefined when malformed. */
function entryOf(value: unknown): { key: string; user: PresentUser } | undefined {
  if (!isRecord(value)) return undefined;
  const { user, info, session } = value;
  if (typeof user === 'string') {
    const present: PresentUser = { user };
    if (info !== undefined) present.info = info;
    return { key: 'u:' + user, user: present };
  }
  if (typeof session === 'string') return { key: 's:' + session, user: { user: undefined, session } };
  return undefined;
}

/**
 * Events carry the channel's presence version (`v`), and the snapshot the
 * version it was read at. Notices from several server nodes may arrive
 * out of order, so an event is applied only when it is newer than the
 * snapshot and than the last event applied for the same user: a leave
 * that overtook its user's join wins, whatever order they arrive in.
 */
export class PresenceView {
  #members = new Map<string, PresentUser>();
  /** The snapshot's version: events at or below it are in it. */
  #floor = 0;
  /** Per user (key), the version of the last event applied. */
  #applied = new Map<string, number>();

  /** Everyone present, in no particular order. */
  list(): PresentUser[] {
    return [...this.#members.values()].map((user) => ({ ...user }));
  }

  /**
   * Replace the view with a subscribe reply's snapshot (`ext.presence`);
   * `changed` gets the differences (none the first time: `initial`).
   */
  snapshot(value: unknown, initial: boolean, changed: (event: PresenceEvent, user: PresentUser) => void): void {
    const users = isRecord(value) && Array.isArray(value['users']) ? (value['users'] as unknown[]) : [];
    const version = isRecord(value) && typeof value['version'] === 'number' ? value['version'] : 0;
    const next = new Map<string, PresentUser>();
    for (const raw of users) {
      const entry = entryOf(raw);
      if (entry) next.set(entry.key, entry.user);
    }
    const before = this.#members;
    this.#members = next;
    this.#floor = version;
    this.#applied.clear();
    if (initial) return;
    for (const [key, user] of before) if (!next.has(key)) changed('leave', user);
    for (const [key, user] of next) if (!before.has(key)) changed('join', user);
  }

  /**
   * Apply a notice's events (`ext.presence.events`); `changed` gets each
   * that changes the view. A join of someone listed, or a leave of someone
   * not listed, changes nothing; an event not newer than the snapshot or
   * than the user's last applied event is dropped.
   */
  apply(value: unknown, changed: (event: PresenceEvent, user: PresentUser) => void): void {
    const events = isRecord(value) && Array.isArray(value['events']) ? (value['events'] as unknown[]) : [];
    for (const raw of events) {
      if (!isRecord(raw)) continue;
      const entry = entryOf(raw);
      if (!entry) continue;
      const v = typeof raw['v'] === 'number' ? raw['v'] : undefined;
      if (v !== undefined) {
        if (v <= Math.max(this.#floor, this.#applied.get(entry.key) ?? 0)) continue;
        this.#applied.set(entry.key, v);
      }
      if (raw['event'] === 'join') {
        if (this.#members.has(entry.key)) continue;
        this.#members.set(entry.key, entry.user);
        changed('join', entry.user);
      } else if (raw['event'] === 'leave') {
        const known = this.#members.get(entry.key);
        if (!known) continue;
        this.#members.delete(entry.key);
        changed('leave', known);
      }
    }
  }
}

/** A presence notice: a message with `ext.presence` and no `data`. */
export function presenceNotice(message: { data?: unknown; ext?: Record<string, unknown> }): unknown {
  if (message.data !== undefined) return undefined;
  const value = message.ext?.['presence'];
  return isRecord(value) && Array.isArray(value['events']) ? value : undefined;
}
