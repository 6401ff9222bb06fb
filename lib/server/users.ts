/**
 * Users and presence: who a session is (`identify`), who is on a presence
 * channel (`presence` option), the `join` and `leave` events, the notices
 * pushed to the sessions that asked for them (`ext.presence`), and
 * addressing a user rather than a session.
 *
 * The engine decides joins and leaves (atomically with the subscriptions
 * they follow, once per cluster) and reports them through
 * `EngineHost.presence`; this module turns each report into an event and
 * a notice. Notices are batched: one message per channel at most every
 * {@link NOTICE_INTERVAL_MS}, published on the channel's notice pattern,
 * which only the sessions that subscribed with `ext.presence` follow.
 */
import { createHash } from 'node:crypto';
import {
  type Engine, EngineLimitError, MAX_USER_LENGTH, type PresenceChange, type PresenceCount, type PresenceEntry, type PresenceMember, type PresenceState,
  type SubscribeOptions,
} from '../engines/engine.js';
import { ProtocolErrors } from '../errors.js';
import { channelMatches, isMeta, isService, isValidChannel, isValidPattern, isWildcard } from '../protocol/channel.js';
import { describeError } from '../protocol/error.js';
import type { ServerCore } from './core.js';
import type { Context, Message } from './types.js';
import { isObject } from './util.js';

/** What `identify` may resolve to: a user id, `{ id, info }`, or nothing (anonymous). */
export type Identity = string | { id: string; info?: unknown } | undefined;

/** The `identify` option: who the session being handshaken is. */
export type IdentifyFunction = (handshake: Message, ctx: Context) => Identity | Promise<Identity>;

/** One user present on a channel, as `cometd.presence()` lists it. */
export interface PresenceUser {
  /** Undefined for an anonymous session (one entry per such session). */
  user: string | undefined;
  /** What `identify` gave as `info`, if anything. */
  info: unknown;
  /** The user's sessions subscribed to the channel. */
  clients: string[];
}

/** The session data key the identity is kept under (not visible to `ctx.session`). */
export const IDENTITY_KEY = '\u0000identity';

/** Notices go out at most this often per node, each listing the changes since the last. */
export const NOTICE_INTERVAL_MS = 100;

/** Where a channel's notices are published: a `/meta/` pattern no client can subscribe or publish to. */
export function noticePattern(channel: string): string {
  return '/meta/presence' + channel;
}

/** The `presence` option checked: the patterns whose channels keep presence. */
export function resolvePresence(value: unknown, engine: Engine): PresenceConfig | undefined {
  if (value === undefined) return undefined;
  const patterns = Array.isArray(value) ? (value as unknown[]) : [value];
  for (const pattern of patterns) {
    if (!isValidPattern(pattern) || isMeta(pattern) || isService(pattern)) {
      throw new TypeError(`option presence: ${String(pattern)} is not a channel pattern that can keep presence (/meta/ and /service/ channels cannot)`);
    }
  }
  if (patterns.length === 0) return undefined;
  checkEngine('presence', engine);
  return new PresenceConfig(patterns as string[]);
}

/** Presence and `identify` need the engine's presence methods. */
export function checkEngine(option: string, engine: Engine): void {
  if (typeof engine.presence !== 'function' || typeof engine.presenceCount !== 'function' || typeof engine.userSessions !== 'function') {
    throw new TypeError(`option ${option} needs an engine that keeps presence (presence(), presenceCount() and userSessions() methods, ` +
      `as MemoryEngine and RedisEngine have); this engine (${engine.constructor.name}) has none`);
  }
}

export class PresenceConfig {
  readonly #patterns: readonly string[];

  constructor(patterns: readonly string[]) {
    this.#patterns = patterns;
  }

  /** Whether subscribers of `channel` (a channel, not a wildcard) are tracked. */
  tracks(channel: string): boolean {
    if (isWildcard(channel) || isMeta(channel) || isService(channel)) return false;
    return this.#patterns.some((pattern) => channelMatches(pattern, channel));
  }
}

// ---------------------------------------------------------------- who a session is

/**
 * Run `identify` for a handshake: the member to store with the session,
 * or undefined (anonymous, or no `identify`). A bad answer is a
 * `TypeError` (the handshake fails with a server error, logged).
 */
export async function identify(core: ServerCore, message: Message, ctx: Context): Promise<PresenceMember | undefined> {
  const fn = core.options.identify;
  if (!fn) return undefined;
  const identity = await fn(message, ctx);
  if (identity === undefined || identity === null) return undefined;
  const { id, info } = typeof identity === 'string' ? { id: identity, info: undefined } : isObject(identity) ? identity : { id: undefined, info: undefined };
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_USER_LENGTH || hasControl(id)) {
    throw new TypeError(`identify must resolve to a user id (1 to ${MAX_USER_LENGTH} characters, no control characters), { id, info } or undefined`);
  }
  if (info === undefined) return { user: id };
  const text = JSON.stringify(info);
  if (typeof text !== 'string') throw new TypeError('identify: info cannot be stored as JSON');
  return { user: id, info: text };
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Remember who a session just handshaken is, so its presence subscribes need not read it back. */
export function rememberIdentity(core: ServerCore, clientId: string, member: PresenceMember | undefined): void {
  if (core.options.presence) core.identities.set(clientId, member ?? {});
}

/** `maxSessionsPerUser`: refuse a handshake of a user who has that many sessions. */
export async function admitUser(core: ServerCore, member: PresenceMember | undefined): Promise<void> {
  const max = core.options.maxSessionsPerUser;
  if (max === 0 || member?.user === undefined) return;
  const sessions = await userSessions(core.engine, member.user);
  if (sessions.length >= max) throw ProtocolErrors.tooManySessions(max);
}

/** The session data entry that keeps the identity (JSON text of the member). */
export function identityEntry(member: PresenceMember): string {
  return JSON.stringify({ user: member.user, info: member.info });
}

/** Who a live session is, read from its data; anonymous when it has no identity. */
async function memberOf(core: ServerCore, clientId: string): Promise<PresenceMember> {
  const known = core.identities.get(clientId);
  if (known) return known;
  const text = await core.engine.getSessionData(clientId, IDENTITY_KEY);
  // An unknown session (null) is not cached: its subscribe fails anyway.
  if (text === null) return {};
  let member: PresenceMember = {};
  if (typeof text === 'string') {
    const { user, info } = JSON.parse(text) as { user?: string; info?: string };
    member = info === undefined ? { user } : { user, info };
  }
  core.identities.set(clientId, member);
  return member;
}

/**
 * The engine's subscribe options for a session subscribing to `pattern`:
 * presence when the channel keeps it.
 */
export async function subscribeOptions(core: ServerCore, clientId: string, pattern: string): Promise<SubscribeOptions | undefined> {
  if (!core.options.presence?.tracks(pattern)) return undefined;
  return { presence: await memberOf(core, clientId) };
}

// ---------------------------------------------------------------- the client side of a subscribe

/**
 * A `/meta/subscribe` with `ext.presence: true`: the one channel it names
 * must keep presence. Undefined when it does not ask.
 */
export function presenceRequest(core: ServerCore, message: Message, patterns: readonly unknown[]): string | undefined {
  const ext = message.ext;
  if (!isObject(ext) || ext['presence'] === undefined || ext['presence'] === false) return undefined;
  if (ext['presence'] !== true) throw ProtocolErrors.badMessage('ext.presence must be true');
  const channel = patterns[0];
  if (patterns.length !== 1 || typeof channel !== 'string' || isWildcard(channel)) {
    throw ProtocolErrors.presenceNeedsChannel(patterns.map(String).join(' '));
  }
  if (!core.options.presence?.tracks(channel)) throw ProtocolErrors.noPresence(channel);
  return channel;
}

/** What a client sees of one present user: no clientIds, ever. */
export interface PresenceNoticeEntry {
  user?: string;
  info?: unknown;
  /** Anonymous sessions: a tag that tells them apart and reveals nothing of the clientId. */
  session?: string;
}

/** The snapshot a subscribe with `ext.presence` replies with. */
export interface PresenceSnapshot {
  users: PresenceNoticeEntry[];
  count: PresenceCount;
  /**
   * The channel's presence version when the snapshot was read: a notice
   * event (each carries its `v`) at or below it is already in the
   * snapshot. Events from several nodes may arrive out of order; a
   * client applies, per user, only an event newer than the last it
   * applied.
   */
  version: number;
}

/**
 * Follow a channel's notices and read its presence: the reply's
 * `ext.presence`. The session follows the notices before the snapshot is
 * read, so no change falls between; a change in both is harmless (a join
 * of someone listed adds nothing).
 */
export async function followPresence(core: ServerCore, clientId: string, channel: string): Promise<PresenceSnapshot | null> {
  let followed: boolean;
  try {
    followed = await core.engine.subscribe(clientId, noticePattern(channel));
  } catch (err) {
    if (err instanceof EngineLimitError) throw ProtocolErrors.subscriptionLimit(core.options.maxSubscriptions);
    throw err;
  }
  if (!followed) return null;
  return core.snapshots.read(channel, () => readSnapshot(core, channel));
}

/** A channel's snapshot, read now. */
async function readSnapshot(core: ServerCore, channel: string): Promise<PresenceSnapshot> {
  // The version before the list: a change made while the list is read comes again as a notice, newer than it.
  const { users: userCount, clients, version } = await readCount(core, channel);
  const entries = await readEntries(core, channel);
  const seen = new Set<string>();
  const users: PresenceNoticeEntry[] = [];
  for (const entry of entries) {
    if (entry.user !== undefined) {
      if (seen.has(entry.user)) continue;
      seen.add(entry.user);
    }
    users.push(clientEntry(entry));
  }
  return { users, count: { users: userCount, clients }, version };
}

/**
 * Snapshot reads, shared: when many sessions subscribe with
 * `ext.presence` to one channel at once (a room everyone watches), each
 * does not read and build the whole list for itself. A read serves the
 * sessions that followed the notices before it started, and only those (a
 * change after a session followed must come to it as a notice or be in
 * its snapshot): one read runs per channel, and every caller that comes
 * meanwhile shares the next, which starts when it ends.
 */
export class SnapshotReads {
  readonly #channels = new Map<string, { running: Promise<PresenceSnapshot>; next: Promise<PresenceSnapshot> | undefined }>();

  read(channel: string, read: () => Promise<PresenceSnapshot>): Promise<PresenceSnapshot> {
    const state = this.#channels.get(channel);
    if (!state) {
      const running = read();
      this.#channels.set(channel, { running, next: undefined });
      this.#whenDone(channel, running);
      return running;
    }
    state.next ??= state.running.then(read, read);
    return state.next;
  }

  /** When `running` settles, the next read (if any callers wait for one) becomes the running one. */
  #whenDone(channel: string, running: Promise<PresenceSnapshot>): void {
    const advance = (): void => {
      const state = this.#channels.get(channel);
      if (!state || state.running !== running) return;
      if (!state.next) {
        this.#channels.delete(channel);
        return;
      }
      state.running = state.next;
      state.next = undefined;
      this.#whenDone(channel, state.running);
    };
    running.then(advance, advance);
  }
}

/** Stop following a channel's notices (an unsubscribe from a presence channel). */
export async function unfollowPresence(core: ServerCore, clientId: string, channel: string): Promise<void> {
  if (core.options.presence?.tracks(channel)) await core.engine.unsubscribe(clientId, noticePattern(channel));
}

function clientEntry(member: PresenceMember & { clientId: string }): PresenceNoticeEntry {
  if (member.user === undefined) return { session: tag(member.clientId) };
  return member.info === undefined ? { user: member.user } : { user: member.user, info: JSON.parse(member.info) as unknown };
}

/** A stable, one-way tag of a clientId: the same on every node. */
function tag(clientId: string): string {
  return createHash('sha256').update(clientId).digest('base64url').slice(0, 16);
}

// ---------------------------------------------------------------- events and notices

/**
 * Turns the engine's presence reports into `join`/`leave` events and
 * batched notices.
 */
export class PresenceNotices {
  readonly #core: ServerCore;
  /** channel → the changes not yet sent, in order. */
  #pending = new Map<string, Array<Record<string, unknown>>>();
  #timer: NodeJS.Timeout | undefined;
  #last = 0;

  constructor(core: ServerCore) {
    this.#core = core;
  }

  /** `EngineHost.presence`: only records, then acts after the engine's call returns. */
  report(change: PresenceChange): void {
    queueMicrotask(() => this.#emit(change));
    const entry: Record<string, unknown> = { event: change.type, ...clientEntry(change), v: change.version };
    if (change.type === 'leave') delete entry['info'];
    let list = this.#pending.get(change.channel);
    if (!list) this.#pending.set(change.channel, (list = []));
    list.push(entry);
    this.#schedule();
  }

  /** Send what is pending now (close). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#send();
  }

  #emit(change: PresenceChange): void {
    const core = this.#core;
    try {
      if (change.type === 'join') {
        const info = change.info === undefined ? undefined : (JSON.parse(change.info) as unknown);
        core.emit('join', change.channel, change.user, info, change.clientId);
      } else {
        core.emit('leave', change.channel, change.user, change.clientId);
      }
    } catch (err) {
      core.options.logger.error(`'${change.type}' listener threw: ${describeError(err)}`);
    }
  }

  #schedule(): void {
    if (this.#timer) return;
    const wait = Math.max(0, this.#last + NOTICE_INTERVAL_MS - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // After close began, shutdown flushes what is left while the engine is still open.
      if (!this.#core.closed) this.#send();
    }, wait);
    this.#timer.unref();
  }

  #send(): void {
    if (this.#pending.size === 0) return;
    this.#last = Date.now();
    const pending = this.#pending;
    this.#pending = new Map();
    const core = this.#core;
    for (const [channel, events] of pending) {
      void this.#publish({ channel, ext: { presence: { events } } }).catch((err: unknown) => {
        core.options.logger.warn(`presence notice on ${channel} not sent: ${describeError(err)}`);
      });
    }
  }

  /** One notice, through the outgoing hooks like every message sent (a hook's failure, logged there, drops it). */
  async #publish(notice: Message): Promise<void> {
    const core = this.#core;
    const message = core.outgoing.any ? await core.outgoing.apply(notice, core.serverContext()) : notice;
    if (!message) return;
    await core.engine.publish([noticePattern(notice.channel)], JSON.stringify(message), { count: false });
  }
}

// ---------------------------------------------------------------- the server API

function checkChannel(channel: unknown): string {
  if (!isValidChannel(channel) || isMeta(channel) || isService(channel)) throw ProtocolErrors.channelInvalid(channel);
  return channel;
}

function checkUser(user: unknown, method: string): string {
  if (typeof user !== 'string' || user.length === 0) throw new TypeError(`${method}: userId must be a non-empty string`);
  return user;
}

function readEntries(core: ServerCore, channel: string): Promise<PresenceEntry[]> {
  const engine = core.engine;
  return (engine.presence as NonNullable<Engine['presence']>).call(engine, channel, core.options.presenceLimit);
}

function readCount(core: ServerCore, channel: string): Promise<PresenceState> {
  const engine = core.engine;
  return (engine.presenceCount as NonNullable<Engine['presenceCount']>).call(engine, channel);
}

function userSessions(engine: Engine, user: string): Promise<string[]> {
  return (engine.userSessions as NonNullable<Engine['userSessions']>).call(engine, user);
}

/** `cometd.presence(channel)`: one entry per user (anonymous: per session), at most `presenceLimit` sessions read. */
export async function presenceOf(core: ServerCore, channel: unknown): Promise<PresenceUser[]> {
  const checked = checkChannel(channel);
  if (!core.options.presence?.tracks(checked)) throw ProtocolErrors.noPresence(checked);
  await core.open();
  const byUser = new Map<string, PresenceUser>();
  const out: PresenceUser[] = [];
  for (const entry of await readEntries(core, checked)) {
    const known = entry.user === undefined ? undefined : byUser.get(entry.user);
    if (known) {
      known.clients.push(entry.clientId);
      continue;
    }
    const user: PresenceUser = { user: entry.user, info: entry.info === undefined ? undefined : JSON.parse(entry.info), clients: [entry.clientId] };
    if (entry.user !== undefined) byUser.set(entry.user, user);
    out.push(user);
  }
  return out;
}

/** `cometd.presenceCount(channel)`. */
export async function presenceCountOf(core: ServerCore, channel: unknown): Promise<PresenceCount> {
  const checked = checkChannel(channel);
  if (!core.options.presence?.tracks(checked)) throw ProtocolErrors.noPresence(checked);
  await core.open();
  const { users, clients } = await readCount(core, checked);
  return { users, clients };
}

/** `cometd.sessionsOf(userId)`. */
export async function sessionsOf(core: ServerCore, user: unknown): Promise<string[]> {
  const checked = checkUser(user, 'sessionsOf');
  if (!core.options.identify) throw new TypeError('sessionsOf needs the identify option');
  await core.open();
  return userSessions(core.engine, checked);
}
