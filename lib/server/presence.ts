/**
 * Per-node bookkeeping of the sessions that have a connection on this node:
 * a held `/meta/connect`, a WebSocket that deliveries are pushed to, or both.
 * A wake-up from the engine for a session with no presence here is ignored;
 * its messages wait in the engine for the next connect.
 */
import type { HeldConnect } from './meta/held-connect.js';
import type { Connection } from './types.js';

export interface Presence {
  readonly clientId: string;
  /** Its held `/meta/connect` on this node, until it is released. */
  held: HeldConnect | undefined;
  /** The push-capable connection (WebSocket) the session last connected on. */
  sink: Connection | undefined;
  /** The session uses acks: deliveries travel only in connect replies. */
  ack: boolean;
  /** A look-again timer is set for its congested socket. */
  retrying?: boolean;
  /** Set when the session ended while a connect was held, so its reply can say why. */
  ended?: 'client' | 'server';
}

export class Presences {
  readonly #byId = new Map<string, Presence>();
  #pending = new Set<string>();
  #scheduled = false;
  readonly #flush: (presences: Presence[]) => void;

  /** `flush` gets, once per tick, every present session that was woken in it. */
  constructor(flush: (presences: Presence[]) => void) {
    this.#flush = flush;
  }

  get(clientId: string): Presence | undefined {
    return this.#byId.get(clientId);
  }

  ensure(clientId: string, ack: boolean): Presence {
    let presence = this.#byId.get(clientId);
    if (!presence) {
      presence = { clientId, held: undefined, sink: undefined, ack };
      this.#byId.set(clientId, presence);
    }
    return presence;
  }

  /** Put back a presence that was pruned while still in use (its older connect was just answered). */
  keep(presence: Presence): void {
    if (!this.#byId.has(presence.clientId)) this.#byId.set(presence.clientId, presence);
  }

  /** Forget a presence that has nothing left on this node. */
  prune(presence: Presence): void {
    if (!presence.held && !presence.sink && this.#byId.get(presence.clientId) === presence) {
      this.#byId.delete(presence.clientId);
    }
  }

  delete(clientId: string): Presence | undefined {
    const presence = this.#byId.get(clientId);
    this.#byId.delete(clientId);
    return presence;
  }

  /** Sessions with a connection here. */
  get size(): number {
    return this.#byId.size;
  }

  values(): IterableIterator<Presence> {
    return this.#byId.values();
  }

  /**
   * Mark sessions as having messages; each is flushed once, after this
   * tick. The one place wakes are coalesced: engines (and the Server
   * itself) call this as they go, however often.
   */
  wake(clientIds: readonly string[]): void {
    for (const id of clientIds) {
      if (this.#byId.has(id)) this.#pending.add(id);
    }
    if (this.#pending.size === 0 || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const ids = this.#pending;
      this.#pending = new Set();
      const woken: Presence[] = [];
      for (const id of ids) {
        const presence = this.#byId.get(id);
        if (presence) woken.push(presence);
      }
      if (woken.length > 0) this.#flush(woken);
    });
  }
}
