/**
 * The client half of CometD's ack extension, on the wire exactly as
 * CometD's `AckExtension.js` speaks it:
 *
 * - handshake request: `ext.ack = true`;
 * - handshake reply: `ext.ack === true` (or the newer
 *   `ext.ack = { enabled: true, batch }`) turns acks on for the session;
 * - connect request: `ext.ack = <the last batch received>` (-1 before any);
 * - connect reply: `ext.ack = <the batch number of the messages it carries>`.
 *
 * The server sends again every message of a batch it has not seen
 * acknowledged. When a batch the client did receive is sent again (its ack
 * was lost, or raced with a reconnect), the copies come first in the next
 * batch: the tracker remembers what it delivered from batches the server
 * has not confirmed and drops those leading copies, so a handler sees each
 * message once.
 *
 * A batch the client cannot read (longer than `maxResponseBytes`) would be
 * sent again for ever: {@link AckTracker.skip} acknowledges it unread. Its
 * number is in the part not read, so the client counts: this package's
 * server numbers a batch each time it takes a session's queue, at most
 * twice per connect (when a held connect arrives, and when it is
 * released), so the batch lost is at most the last one received plus two
 * per connect sent since that answer. Acknowledging a number above the
 * server's drops only what it has sent (and this server resends only
 * that); a server that numbers messages before sending them (CometD's
 * Java server) may drop messages queued after the skipped batch as well.
 */

import type { BayeuxMessage } from './message.js';

/** At most this many delivered messages are remembered for dropping copies. */
const MAX_REMEMBERED = 10_000;

/** Most batches this package's server numbers for one connect (see {@link AckTracker.skip}). */
const TAKES_PER_CONNECT = 2;

export class AckTracker {
  readonly #wanted: boolean;
  #enabled = false;
  #batch = -1;
  #window: Array<{ batch: number; keys: string[] }> = [];
  /** Connects sent since the last connect reply was received. */
  #sinceReply = 0;

  constructor(wanted: boolean) {
    this.#wanted = wanted;
  }

  /** Whether the current session uses acks. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** The last batch received, -1 before any. */
  get batch(): number {
    return this.#batch;
  }

  /** Forget the session. */
  reset(): void {
    this.#enabled = false;
    this.#batch = -1;
    this.#window = [];
    this.#sinceReply = 0;
  }

  /** Add `ext.ack = true` to a handshake request (when acks are wanted). */
  outgoingHandshake(message: BayeuxMessage): void {
    this.reset();
    if (this.#wanted) message.ext = { ...message.ext, ack: true };
  }

  /** Read the server's answer from a successful handshake reply. */
  incomingHandshake(reply: BayeuxMessage): void {
    this.reset();
    if (!this.#wanted) return;
    const ack = reply.ext?.['ack'];
    if (typeof ack === 'object' && ack !== null) {
      const { enabled, batch } = ack as { enabled?: unknown; batch?: unknown };
      this.#enabled = enabled === true;
      if (typeof batch === 'number') this.#batch = batch;
    } else {
      this.#enabled = ack === true;
    }
  }

  /**
   * Add `ext.ack = <last batch>` to a connect request. Returns the value
   * sent, to pass to {@link incomingConnect}, or undefined when acks are off.
   */
  outgoingConnect(message: BayeuxMessage): number | undefined {
    if (!this.#enabled) return undefined;
    message.ext = { ...message.ext, ack: this.#batch };
    this.#sinceReply++;
    return this.#batch;
  }

  /**
   * The answer to a connect could not be read (too large): acknowledge the
   * batch it carried, so the server drops it rather than send it again.
   * Returns the batch acknowledged by the next connect, or undefined when
   * acks are off (the server does not send a batch twice then).
   */
  skip(): number | undefined {
    if (!this.#enabled || this.#sinceReply === 0) return undefined;
    // The client starts from -1; this package's server numbers its first batch 1.
    this.#batch = Math.max(this.#batch, 0) + TAKES_PER_CONNECT * this.#sinceReply;
    this.#sinceReply = 0;
    return this.#batch;
  }

  /**
   * Handle a connect reply and the deliveries that came with it; returns
   * the deliveries to hand to subscribers. `sentAck` is what the connect
   * request carried (undefined when unknown).
   */
  incomingConnect(reply: BayeuxMessage, sentAck: number | undefined, deliveries: BayeuxMessage[]): BayeuxMessage[] {
    this.#sinceReply = 0;
    if (!this.#enabled || reply.successful !== true) return deliveries;
    // The server has dropped every batch up to the one this connect acknowledged.
    if (sentAck !== undefined) this.#window = this.#window.filter((entry) => entry.batch > sentAck);
    const batch = reply.ext?.['ack'];
    if (typeof batch !== 'number') return deliveries;

    const keys = deliveries.map(keyOf);
    const seen = new Set<string>();
    for (const entry of this.#window) for (const key of entry.keys) seen.add(key);
    let skip = 0;
    while (skip < keys.length && seen.has(keys[skip] as string)) skip++;

    this.#window.push({ batch, keys });
    let remembered = 0;
    for (const entry of this.#window) remembered += entry.keys.length;
    while (remembered > MAX_REMEMBERED && this.#window.length > 1) remembered -= this.#window.shift()?.keys.length ?? 0;
    this.#batch = batch;
    return skip === 0 ? deliveries : deliveries.slice(skip);
  }
}

/** What identifies a delivered message: its channel, id and data. */
function keyOf(message: BayeuxMessage): string {
  let data: string;
  try {
    data = JSON.stringify(message.data) ?? '';
  } catch {
    data = '';
  }
  return `${message.channel}\u0000${message.id ?? ''}\u0000${data}`;
}
