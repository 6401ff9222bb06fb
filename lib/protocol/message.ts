/**
 * Bayeux message shapes, as both the server and the client send and receive
 * them, and the wire form of a batch. Imports nothing: the browser bundle
 * uses this file as it is.
 */

/** Reconnect advice (`advice` on handshake and connect replies). */
export interface Advice {
  /** `retry`: connect again after `interval`; `handshake`: start a new session; `none`: stop. */
  reconnect?: 'retry' | 'handshake' | 'none';
  /** Milliseconds to wait before the next connect. */
  interval?: number;
  /** Milliseconds the server may hold a `/meta/connect`. */
  timeout?: number;
  /** Set when another connection of the same session holds the connect. */
  'multiple-clients'?: boolean;
  [field: string]: unknown;
}

/** A Bayeux message, as received or sent. Unknown fields are kept as they are. */
export interface Message {
  channel: string;
  clientId?: string;
  /** The request's id, echoed in its reply. Bayeux says string; numbers are accepted and echoed as sent. */
  id?: string | number;
  data?: unknown;
  ext?: Record<string, unknown>;
  advice?: Advice;
  successful?: boolean;
  /** A refusal, as `code:args:message` (see `BayeuxError`). */
  error?: string;
  subscription?: string | string[];
  version?: string;
  minimumVersion?: string;
  supportedConnectionTypes?: string[];
  connectionType?: string;
  [field: string]: unknown;
}

/** Whether `value` looks like a Bayeux message (an object with a string `channel`). */
export function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    && typeof (value as { channel?: unknown }).channel === 'string';
}

/** A batch as parsed JSON may hold it: one message, or an array of them. */
export function messageList(parsed: unknown): unknown[] {
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** Serialized messages joined into the JSON array text of one batch. */
export function jsonArray(messages: readonly string[]): string {
  return '[' + messages.join(',') + ']';
}
