/** The client's message types: the protocol's shapes, extensions, transport names. */
import type { Message } from '../protocol/message.js';

export type { Advice } from '../protocol/message.js';

/**
 * A Bayeux message, as the client sends and receives it: the protocol's
 * `Message`, under the name the client has always exported.
 */
export type BayeuxMessage = Message;

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
