/**
 * The shapes the Server works with: Bayeux messages, the context handed to
 * middleware and services, and the connection a transport hands the Server.
 */
import type { IncomingMessage } from 'node:http';

import type { Advice, Message } from '../protocol/message.js';

export type { Advice, Message };

/**
 * The WebSocket a message arrived on: `ws`'s `WebSocket`, typed by what
 * middleware may safely use, so the typings need no `@types/ws` (cast to
 * `import('ws').WebSocket` for more).
 */
export interface BayeuxSocket {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: 0 | 1 | 2 | 3;
  /** The subprotocol the server selected (empty when none). */
  readonly protocol: string;
  /** The extensions the server accepted (for example `permessage-deflate`). */
  readonly extensions: string;
  /** Bytes queued to send and not yet handed to the operating system. */
  readonly bufferedAmount: number;
  /** Close the socket with a WebSocket close code and reason. */
  close(code?: number, reason?: string): void;
  /** Destroy the socket at once, without a closing handshake. */
  terminate(): void;
}

/** How a message reached the Server. */
export type TransportName = 'long-polling' | 'callback-polling' | 'websocket' | 'local';

/**
 * One client connection as a transport sees it: an HTTP request, or a
 * WebSocket for its whole life. Transports create these; the Server reads them.
 */
export interface Connection {
  readonly transport: TransportName;
  /** The HTTP request (long-polling, JSONP) or the upgrade request (WebSocket). */
  readonly req?: IncomingMessage;
  /** The WebSocket, for the WebSocket transport. */
  readonly socket?: BayeuxSocket;
  /** The client's address (Express's `req.ip`, so `trust proxy` applies). */
  readonly ip?: string;
  /**
   * HTTP connections: whether the client went away before its answer was
   * written, and a way to be told (once) when it does, so a held connect
   * is answered at once and nothing is taken for it. A listener object,
   * not a closure: a held connect costs no allocation for it. (A socket
   * reports its end through `Server.detach` instead.)
   */
  aborted?(): boolean;
  onAbort?(listener: AbortListener): void;
  offAbort?(listener: AbortListener): void;
  /**
   * Push-capable connections (WebSocket) send messages as they arrive
   * instead of waiting for a `/meta/connect` reply. `messages` are JSON texts.
   */
  push?(messages: readonly string[]): void;
  /** True while the connection's outgoing buffer is over its high-water mark. */
  congested?(): boolean;
  /** False once the connection is closing: nothing should be taken from the queue for it. */
  writable?(): boolean;
  /**
   * A drain hands its session off: a WebSocket closes once the replies
   * under way are written (at once if none is); an HTTP request's answer
   * closes its connection, so the next request may go to another node.
   * Idempotent.
   */
  drain?(): void;
}

/** Told when a connection's client went away (see `Connection.onAbort`). */
export interface AbortListener {
  handleEvent(): void;
}

/** What middleware and services see besides the message. */
export interface Context {
  /** The sender's session id (`clientId`), once it has one. */
  readonly client: string | undefined;
  /** How the message arrived. */
  readonly transport: TransportName;
  /** The HTTP request, or the WebSocket's upgrade request. Undefined for server-side calls. */
  readonly req: IncomingMessage | undefined;
  /** The WebSocket, when the message arrived on one. */
  readonly socket: BayeuxSocket | undefined;
  /** The client's address. */
  readonly ip: string | undefined;
  /**
   * The sender's per-session data (see {@link SessionData}). In
   * `/meta/handshake` middleware the session does not exist yet: what is
   * set there is kept when the handshake succeeds.
   */
  readonly session: SessionData;
}

/**
 * Per-session data: JSON values by key, bounded by `maxSessionDataBytes`,
 * gone with the session, shared by every node on a shared engine. Every
 * method rejects with `402::session_unknown` for a session that does not
 * exist (any more).
 */
export interface SessionData {
  /** The value stored under `key`, or undefined. */
  get<T = unknown>(key: string): Promise<T | undefined>;
  /**
   * Store a JSON-serializable value (`undefined` deletes). Rejects with a
   * `BayeuxError` `413:<max>:session_data_too_large` beyond
   * `maxSessionDataBytes`, and a `TypeError` for a value JSON cannot hold.
   */
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key and value. */
  all(): Promise<Record<string, unknown>>;
}

/** A `next` callback: call it with nothing to go on, or with an error to refuse the message. */
export type Next = (err?: unknown) => void;

/**
 * Message middleware. Call `next()` to go on, or `next(err)`, throw, or
 * reject to refuse the message (a `BayeuxError` chooses the code). A
 * function declared with two parameters is awaited instead of given `next`.
 */
export type Middleware = (message: Message, ctx: Context, next: Next) => unknown;

/** A `/service/*` handler: its return value (or resolved value) is the reply's `data`. */
export type ServiceHandler = (message: Message, ctx: Context) => unknown;

/**
 * A hook on everything the server sends: meta and service replies (once per
 * reply) and published messages (once per publish, before fan-out). Change
 * the message in place or return a replacement. `ctx` is the requester's
 * for replies and the publisher's for published messages. It may be async:
 * the reply waits for it. A throw or rejection is logged and turns that
 * reply into a `500::server_error` refusal; on a published or delivered
 * message it refuses the publish (or rejects `publish()`/`deliver()`) with
 * that error.
 */
export type OutgoingHook = (message: Message, ctx: Context) => Message | void | Promise<Message | void>;

/** Server events and their arguments. */
export interface ServerEvents {
  handshake: [clientId: string, ctx: Context];
  connect: [clientId: string, ctx: Context];
  /** `drain`: handed off by `close({ drain })` (on a shared engine it goes on on another node). */
  disconnect: [clientId: string, reason: 'client' | 'timeout' | 'server' | 'drain'];
  subscribe: [clientId: string, channel: string];
  unsubscribe: [clientId: string, channel: string];
  /** A publish (clientId undefined for the server's own), with the message as published. */
  publish: [clientId: string | undefined, channel: string, data: unknown, message: Message];
  /** `deliver()` queued a message for one session. */
  deliver: [clientId: string, channel: string, data: unknown];
  /**
   * A user's first session subscribed to a presence channel (anonymous
   * sessions: each one). Once per cluster, on the node that subscribed it.
   */
  join: [channel: string, user: string | undefined, info: unknown, clientId: string];
  /**
   * A user's last session left a presence channel: it unsubscribed,
   * disconnected or expired. Once per cluster, on the node that saw it go.
   */
  leave: [channel: string, user: string | undefined, clientId: string];
}

/** Options of `cometd.close()`. */
export interface CloseOptions {
  /**
   * Take the node out of service gracefully over this many ms: health
   * answers 503 `draining`, new handshakes are refused with advice to try
   * again, and the sessions here are handed off in evenly spread slices
   * over the window; then the server closes. `0` or absent: close now.
   */
  drain?: number;
}

/** Options of `cometd.publish()`. */
export interface PublishOptions {
  /** A clientId, or a list of them, that must not receive this message. */
  except?: string | readonly string[];
  /** The `ext` every copy carries. */
  ext?: Record<string, unknown>;
  /** The `id` every copy carries. */
  id?: string | number;
}

/** `stats()` */
export interface Stats {
  /** Sessions in the engine (cluster-wide for a shared engine). */
  sessions: number;
  /** Subscriptions in the engine. */
  subscriptions: number;
  /** `/meta/connect`s held open on this node. */
  heldConnections: number;
  /** WebSockets open on this node. */
  sockets: number;
  /** Messages received by this node. */
  messagesIn: number;
  /** Messages sent by this node (replies and deliveries). */
  messagesOut: number;
}

/** An in-process subscription: call it (or its `unsubscribe`) to stop. */
export interface LocalSubscription {
  (): Promise<void>;
  unsubscribe(): Promise<void>;
  /** Settles when the subscription is active in the engine. */
  readonly ready: Promise<void>;
}

/** What an in-process subscriber learns besides the message. */
export interface LocalMessageInfo {
  /**
   * The publisher's clientId; undefined for the server's own publishes
   * (and, on a shared engine, for publishes made on another node).
   */
  client: string | undefined;
}

/** An in-process subscriber. It may return a promise; a rejection is logged. */
export type LocalListener = (data: unknown, message: Message, info: LocalMessageInfo) => unknown;
