/**
 * MemoryEngine's presence: who is present on each presence channel, and
 * each user's sessions. Plain maps, changed synchronously with the
 * subscriptions they follow, so a join or leave is decided exactly once.
 */
import type { PresenceChange, PresenceEntry, PresenceMember, PresenceState } from './engine.js';

interface Channel {
  /** clientId → who it is. */
  readonly members: Map<string, PresenceMember>;
  /** user → how many of its sessions are present. */
  readonly users: Map<string, number>;
  /** Sessions present without a user. */
  anonymous: number;
  /** Joins and leaves so far (`PresenceChange.version`). */
  version: number;
}

export class MemoryPresence {
  readonly #channels = new Map<string, Channel>();
  /** user → its live sessions. */
  readonly #users = new Map<string, Set<string>>();

  /** Record a session as present; the join it makes, if any. */
  add(channel: string, clientId: string, member: PresenceMember): PresenceChange | undefined {
    let state = this.#channels.get(channel);
    if (!state) this.#channels.set(channel, (state = { members: new Map(), users: new Map(), anonymous: 0, version: 0 }));
    if (state.members.has(clientId)) return undefined;
    state.members.set(clientId, member);
    const { user } = member;
    if (user === undefined) {
      state.anonymous++;
    } else {
      const n = (state.users.get(user) ?? 0) + 1;
      state.users.set(user, n);
      if (n > 1) return undefined;
    }
    return { type: 'join', channel, clientId, ...member, version: ++state.version };
  }

  /** Remove a session from a channel's presence; the leave it makes, if any. */
  remove(channel: string, clientId: string): PresenceChange | undefined {
    const state = this.#channels.get(channel);
    const member = state?.members.get(clientId);
    if (!state || !member) return undefined;
    state.members.delete(clientId);
    if (state.members.size === 0) this.#channels.delete(channel);
    const { user } = member;
    if (user === undefined) {
      state.anonymous--;
    } else {
      const n = (state.users.get(user) ?? 1) - 1;
      if (n > 0) {
        state.users.set(user, n);
        return undefined;
      }
      state.users.delete(user);
    }
    return { type: 'leave', channel, clientId, user, version: ++state.version };
  }

  list(channel: string, limit: number): PresenceEntry[] {
    const out: PresenceEntry[] = [];
    for (const [clientId, member] of this.#channels.get(channel)?.members ?? []) {
      if (out.length >= limit) break;
      out.push({ clientId, ...member });
    }
    return out;
  }

  count(channel: string): PresenceState {
    const state = this.#channels.get(channel);
    if (!state) return { users: 0, clients: 0, version: 0 };
    return { users: state.users.size + state.anonymous, clients: state.members.size, version: state.version };
  }

  /** A session of `user` was created. */
  addSession(user: string, clientId: string): void {
    let ids = this.#users.get(user);
    if (!ids) this.#users.set(user, (ids = new Set()));
    ids.add(clientId);
  }

  /** A session of `user` ended. */
  removeSession(user: string, clientId: string): void {
    const ids = this.#users.get(user);
    if (!ids) return;
    ids.delete(clientId);
    if (ids.size === 0) this.#users.delete(user);
  }

  sessions(user: string): string[] {
    return [...(this.#users.get(user) ?? [])];
  }

  clear(): void {
    this.#channels.clear();
    this.#users.clear();
  }
}
