/** Bayeux message shapes, as the client sends and receives them. */

/** Reconnect advice from the server (`advice` on handshake and connect replies). */
export interface Advice {
  /** `retry`: connect again after `interval`; `handshake`: start a new session; `none`: stop. */
  reconnect?: 'retry' | 'handshake' | 'none';
  /** Milliseconds to wait before the next connect; the client clamps it to 0..60000. */
  interval?: number;
  /** Milliseconds the server may hold a `/meta/connect`; the client clamps it to 0..600000. */
  timeout?: number;
  [field: string]: unknown;
}

/** A Bayeux message. Unknown fields are kept as they are. */
export interface BayeuxMessage {
  channel: string;
  id?: string;
  clientId?: string;
  data?: unknown;
  successful?: boolean;
  error?: string;
  advice?: Advice;
  ext?: Record<string, unknown>;
  subscription?: string | string[];
  connectionType?: string;
  supportedConnectionTypes?: string[];
  version?: string;
  minimumVersion?: string;
  [field: string]: unknown;
}

/** What an extension hook may return: the message (changed or not), or null to drop it. */
export type ExtensionResult = BayeuxMessage | null | undefined | void;

/**
 * A client extension (`client.use(extension)`), as in CometD and Faye.
 * Hooks may change the message in place or return a replacement; returning
 * `null` drops it. Outgoing hooks run in the order extensions were added,
 * incoming hooks in reverse order.
 */
export interface BayeuxExtension {
  /**
   * Called with every message before it is sent, the handshake included,
   * e.g. to put an auth token in `ext`. May return a promise. A dropped
   * message's operation rejects with a `BayeuxClientError` of type `cancelled`.
   */
  outgoing?(message: BayeuxMessage): ExtensionResult | Promise<ExtensionResult>;
  /**
   * Called with every message received, before the client acts on it.
   * Synchronous, so messages stay in order. A dropped message is ignored.
   */
  incoming?(message: BayeuxMessage): ExtensionResult;
}

/** Names of the transports the client speaks, as Bayeux `connectionType`s. */
export type TransportName = 'websocket' | 'long-polling';

/** Whether `value` looks like a Bayeux message (an object with a string `channel`). */
export function isMessage(value: unknown): value is BayeuxMessage {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    && typeof (value as { channel?: unknown }).channel === 'string';
}
