/**
 * The record of one held `/meta/connect`: what answering it needs. Its own
 * file so that replies (`reply.ts`) can name it without importing the
 * connect handler.
 */
import type { ServerCore } from '../core.js';
import type { Presence } from '../presence.js';
import type { Connection, Message } from '../types.js';

/** A held connect: everything needed to answer it, in one record. */
export interface PendingConnect {
  readonly core: ServerCore;
  readonly message: Message;
  readonly conn: Connection;
  readonly presence: Presence;
  readonly ip: string | undefined;
  readonly firstConnect: boolean;
  readonly multipleClients: boolean;
  /** On a socket without acks: nothing is taken for the reply (pushes carry the messages). */
  readonly pushMode: boolean;
  readonly ack: number | undefined;
  /** When it was received, for timesync. */
  readonly received: number;
  /** Where the texts go, once the request's caller registered. */
  respond: ((replies: string[]) => void) | undefined;
  /** The texts, if they were ready before the caller registered. */
  answered: string[] | undefined;
}
