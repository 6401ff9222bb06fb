/**
 * What a transport may call on the protocol server, and nothing more: a
 * transport turns its framing into message arrays and back, and leaves
 * the protocol to the server. The `Server` class satisfies these
 * interfaces; transports never import it, so they can be read, and
 * tested, without it.
 */
import type { Connection } from '../server/types.js';

/** Hands one request's (or one frame's) messages to the protocol server. */
export interface MessageHandler {
  /**
   * Handle `messages`, in order, for `conn`. `respond` is called once with
   * the JSON texts to send back (deliveries first, then replies), at once
   * or when a held `/meta/connect` is released. Never throws.
   */
  handle(messages: readonly unknown[], conn: Connection, respond: (replies: string[]) => void): void;
}

/** What a transport whose connections outlive a request (WebSocket) also tells the server. */
export interface SocketProtocol extends MessageHandler {
  /** True once the server is closing: new sockets are refused. */
  readonly closed: boolean;
  /** Offer a connection type in handshake replies. */
  addConnectionType(type: string): void;
  /** A socket opened (counted in `stats().sockets`). */
  socketOpened(): void;
  /** A connection went away: stop pushing to it, answer what it held. */
  detach(conn: Connection): void;
}
