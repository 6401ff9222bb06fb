/**
 * The presence scripts (`presence` option): who is present on a channel,
 * kept on the channel's exact pattern base beside its subscriber set, so
 * a presence changes in the same script as the subscription it follows
 * (ADD_SUBSCRIBER and HISTORY add, REMOVE_SUBSCRIBER removes), and each
 * user's sessions, kept in the session's bucket (CREATE adds, `remove()`
 * removes, USER_SESSIONS reads).
 */
import type { PresenceMember, PresenceState } from '../../engine.js';
import { int, list, text, texts } from '../replies.js';
import { readLua } from './files.js';

/** Shared Lua: `p_add`, `p_remove`. */
export const PRESENCE = readLua('presence');

/** A session leaves a pattern's subscribers (and the channel's presence). */
export const REMOVE_SUBSCRIBER = readLua('remove-subscriber');

/** How many users and sessions are present on a channel. */
export const PRESENCE_COUNT = readLua('presence-count');

/** A user's live sessions in one bucket (a session script). */
export const USER_SESSIONS = readLua('user-sessions');

/** The presence arguments of ADD_SUBSCRIBER and HISTORY: `'p', user, info`, or none. */
export function presenceArgs(member: PresenceMember | undefined): string[] {
  return member ? ['p', member.user ?? '', member.info ?? ''] : [];
}

/** REMOVE_SUBSCRIBER's reply: undefined when the session was not present; else the version of the leave it made (0: none), and whose. */
export function parseRemoveSubscriber(reply: unknown): { version: number; user: string | undefined } | undefined {
  if (!Array.isArray(reply)) return undefined;
  const user = text(reply[1]);
  return { version: int(reply[0]), user: user === '' ? undefined : user };
}

export function parsePresenceCount(reply: unknown): PresenceState {
  const items = list(reply);
  return { users: int(items[0]), clients: int(items[1]), version: int(items[2]) };
}

/** A `:pc` field's value, `<user>\n<info>`, as a member ('' user: anonymous). */
export function parseMember(value: string): PresenceMember {
  const at = value.indexOf('\n');
  const user = at < 0 ? value : value.slice(0, at);
  const info = at < 0 ? '' : value.slice(at + 1);
  if (user === '') return {};
  return info === '' ? { user } : { user, info };
}

export function parseUserSessions(reply: unknown): string[] {
  return texts(reply);
}
