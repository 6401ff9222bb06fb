/**
 * Per-node bookkeeping of the sessions that have a connection on this node:
 * a held `/meta/connect`, a WebSocket that deliveries are pushed to, or both.
 * A wake-up from the engine for a session with no attachment here is ignored;
 * its messages wait in the engine for the next connect.
 */
import type { HeldConnect } from './meta/held-connect.js';
import type { Connection } from './types.js';

export interface Attachment {
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

export class Attachments {
  readonly #byId = new Map<string, Attachment>();
  #pending = new Set<string>();
  #scheduled = false;
  readonly #flush: (attachments: Attachment[]) => void;

  /** `flush` gets, once per tick, every present session that was woken in it. */
  constructor(flush: (attachments: Attachment[]) => void) {
    this.#flush = flush;
  }

  get(clientId: string): Attachment | undefined {
    return this.#byId.get(clientId);
  }

  ensure(clientId: string, ack: boolean): Attachment {
    let attachment = this.#byId.get(clientId);
    if (!attachment) {
      attachment = { clientId, held: undefined, sink: undefined, ack };
      this.#byId.set(clientId, attachment);
    }
    return attachment;
  }

  /** Put back a attachment that was pruned while still in use (its older connect was just answered). */
  keep(attachment: Attachment): void {
    if (!this.#byId.has(attachment.clientId)) this.#byId.set(attachment.clientId, attachment);
  }

  /** Forget a attachment that has nothing left on this node. */
  prune(attachment: Attachment): void {
    if (!attachment.held && !attachment.sink && this.#byId.get(attachment.clientId) === attachment) {
      this.#byId.delete(attachment.clientId);
    }
  }

  delete(clientId: string): Attachment | undefined {
    const attachment = this.#byId.get(clientId);
    this.#byId.delete(clientId);
    return attachment;
  }

  /** Sessions with a connection here. */
  get size(): number {
    return this.#byId.size;
  }

  values(): IterableIterator<Attachment> {
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
      const woken: Attachment[] = [];
      for (const id of ids) {
        const attachment = this.#byId.get(id);
        if (attachment) woken.push(attachment);
      }
      if (woken.length > 0) this.#flush(woken);
    });
  }
}
