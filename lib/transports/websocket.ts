/**
 * Bayeux over WebSocket, on the HTTP server's `upgrade` event (`ws` in
 * `noServer` mode), for the middleware's mount path only. Each text frame
 * is a JSON array of messages (or one message). A held `/meta/connect` does
 * not block the socket: later frames are handled while it waits. Deliveries
 * are pushed as they arrive, one frame per flush.
 *
 * Upgrades for other paths are left to other listeners. Connect-style
 * middleware given to `attach` runs on the upgrade request before the
 * socket is accepted (`attach.ts`). Every socket gets an error listener
 * first thing, and nothing is written to a socket past `wsHighWaterMark`:
 * pushes follow the `slowConsumer` policy (the Server checks
 * `congested()`), and a socket whose own replies would go past the mark
 * is closed with 1013.
 */
import { type IncomingMessage, type Server as HttpServer, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { ProtocolErrors } from '../errors.js';
import type { CorsOptions, Logger } from '../options.js';
import { jsonArray, messageList } from '../protocol/message.js';
import type { Connection } from '../server/types.js';
import { runUpgradeMiddleware, type UpgradeMiddleware } from './attach.js';
import type { SocketProtocol } from './core.js';
import { upgradeOriginAllowed } from './cors.js';
import { isUnderMount, pathnameOf } from './mount.js';

/** Send options for a text frame given as a Buffer. */
const TEXT = { binary: false } as const;

/** How long an upgrade request for another path may wait for another listener to answer it. */
const UNANSWERED_UPGRADE_MS = 3000;

/** How long a socket closed for reading too slowly gets to take its close frame before it is cut. */
const SLOW_CLOSE_GRACE_MS = 1000;

/** The options the WebSocket transport reads (see `BayeuxOptions` for each). */
export interface WebSocketOptions {
  /** Largest frame, in bytes (`ws`'s `maxPayload`). */
  readonly maxBodyBytes: number;
  /** Most messages in one frame. */
  readonly maxBatch: number;
  /** Offer permessage-deflate. */
  readonly wsPerMessageDeflate: boolean;
  /** Ping every socket this often, in ms; 0: never. */
  readonly wsPingInterval: number;
  /** Most bytes a socket may buffer before pushes follow the slowConsumer policy and replies close it. */
  readonly wsHighWaterMark: number;
  /** Which browser origins may open a socket; false: the page's own host only. */
  readonly cors: CorsOptions | false;
  /** Where a socket closed for reading too slowly is reported. */
  readonly logger: Logger;
  /** How long, in ms, upgrade middleware may take before the upgrade is refused with 503; 0: no limit. */
  readonly upgradeTimeout: number;
}

/** What the middleware tells the transport about an `attach()`. */
export interface AttachConfig {
  /** The mount path, or undefined while it is not known. */
  path(): string | undefined;
  middleware: readonly UpgradeMiddleware[];
  /** Called (once per attach) when an upgrade arrives and the mount path is not known. */
  unknownPath(): void;
}

/** Where a socket keeps its connection, for the listeners all sockets share. */
const CONNECTION = Symbol('bayeux.connection');

type TaggedSocket = WebSocket & { [CONNECTION]: WsConnection };

/**
 * One WebSocket as the Server sees it, and its frame bookkeeping. Its
 * methods live on the prototype and its event listeners are shared by
 * every socket: a subscriber's socket costs one closure (`answer`), which
 * its held connects share.
 */
class WsConnection implements Connection {
  readonly transport = 'websocket' as const;
  readonly req: IncomingMessage;
  readonly socket: WebSocket;
  readonly ip: string | undefined;
  readonly owner: Sockets;
  readonly #highWater: number;
  /** Answered the last ping. */
  alive = true;
  /** Frames are handled in order: each waits for the one before. Never rejects. */
  chain: Promise<void> = Promise.resolve();
  /** Frames received and not yet answered. */
  pending = 0;
  /** A drain handed its session off: closed once no frame waits for an answer. */
  draining = false;
  /** Where the Server's replies to a frame go: one function per socket, so a held connect makes no closure of its own. */
  readonly answer: (replies: readonly string[]) => void;

  constructor(owner: Sockets, ws: WebSocket, req: IncomingMessage, highWater: number) {
    this.owner = owner;
    this.socket = ws;
    this.req = req;
    this.ip = (req as IncomingMessage & { ip?: string }).ip ?? req.socket.remoteAddress;
    this.#highWater = highWater;
    this.answer = (replies) => owner.answer(this, replies);
  }

  push(messages: readonly string[]): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(this.owner.pushFrame(messages), TEXT, ignoreError);
  }

  /** The Server checks it before it takes messages for a push (the slowConsumer policy). */
  congested(): boolean {
    return this.socket.bufferedAmount > this.#highWater;
  }

  writable(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  drain(): void {
    if (this.draining) return;
    this.draining = true;
    if (this.pending === 0) closeDrained(this);
    // A frame whose answer never comes (a held connect of another session's) must not keep it open.
    else setTimeout(() => closeDrained(this), DRAIN_CLOSE_GRACE_MS).unref();
  }
}

/** How long a socket handed off by a drain waits for the answers under way before it closes anyway. */
const DRAIN_CLOSE_GRACE_MS = 2000;

/** Close a socket a drain handed off (1001, going away); the client reconnects, to another node. */
function closeDrained(conn: WsConnection): void {
  const ws = conn.socket;
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.close(1001, 'server draining');
  setTimeout(() => ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
}

function onPong(this: WebSocket): void {
  (this as TaggedSocket)[CONNECTION].alive = true;
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const conn = (this as TaggedSocket)[CONNECTION];
  conn.owner.frame(conn, data, isBinary);
}

function onSocketError(this: WebSocket): void {
  this.terminate();
}

function onClose(this: WebSocket): void {
  const conn = (this as TaggedSocket)[CONNECTION];
  conn.owner.closed(conn);
}

/** Most frames one socket may have waiting to be handled; beyond it the socket is closed (1008). */
const MAX_PENDING_FRAMES = 256;

function ignoreError(): void {}

export class WebSocketTransport {
  readonly #server: SocketProtocol;
  readonly #options: WebSocketOptions;
  readonly #wss: WebSocketServer;
  readonly #hub: Sockets;
  readonly #attached: Array<{ http: HttpServer; listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void }> = [];
  #heartbeat: NodeJS.Timeout | undefined;
  constructor(server: SocketProtocol, options: WebSocketOptions) {
    this.#server = server;
    this.#options = options;
    this.#hub = new Sockets(server, options);
    const { maxBodyBytes, wsPerMessageDeflate } = options;
    // `Sockets` tracks the sockets; ws's own set would cost every subscriber a second entry and a close listener.
    this.#wss = new WebSocketServer({ noServer: true, clientTracking: false, maxPayload: maxBodyBytes, perMessageDeflate: wsPerMessageDeflate });
    server.addConnectionType('websocket');
  }

  /** Take upgrades for the mount path on `http`; leave the others to other listeners. */
  attach(http: HttpServer, config: AttachConfig): void {
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      // Whoever answers this socket, a reset on it must not be an uncaught 'error'.
      socket.on('error', ignoreError);
      const mount = config.path();
      if (mount === undefined) config.unknownPath();
      const ours = isUnderMount(pathnameOf(req.url), mount);
      if (!ours || this.#server.closed) {
        this.#closeIfUnanswered(socket, ours ? 503 : 404);
        return;
      }
      if (!upgradeOriginAllowed(this.#options.cors, req)) {
        refuse(socket, 403);
        return;
      }
      if (config.middleware.length === 0) {
        this.#accept(req, socket, head, undefined);
        return;
      }
      const wait = new UpgradeWait(socket, this.#options.upgradeTimeout);
      runUpgradeMiddleware(config.middleware, req).then(
        (outcome) => {
          if (!wait.end()) return;
          if (typeof outcome === 'number') refuse(socket, outcome);
          else this.#accept(req, socket, head, outcome);
        },
        () => {
          if (wait.end()) refuse(socket, 500);
        },
      ).catch(function upgradeFailed() {
        socket.destroy();
      });
    };
    http.on('upgrade', listener);
    this.#attached.push({ http, listener });
    const interval = this.#options.wsPingInterval;
    if (interval > 0 && !this.#heartbeat) {
      this.#heartbeat = setInterval(() => this.#hub.ping(), interval);
      this.#heartbeat.unref();
    }
  }

  #accept(req: IncomingMessage, socket: Duplex, head: Buffer, extraHeaders: readonly string[] | undefined): void {
    if (this.#server.closed) {
      refuse(socket, 503);
      return;
    }
    if (extraHeaders && extraHeaders.length > 0) {
      const addHeaders = (headers: string[], forReq: IncomingMessage): void => {
        if (forReq !== req) return;
        this.#wss.off('headers', addHeaders);
        headers.push(...extraHeaders);
      };
      this.#wss.on('headers', addHeaders);
      socket.once('close', () => this.#wss.off('headers', addHeaders));
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#hub.open(ws, req));
  }

  /**
   * Stop listening for upgrades and close every socket: a close frame
   * first, then, for a peer that does not answer it within `graceMs`, the
   * TCP connection is cut.
   */
  async close(graceMs = 1000): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    for (const { http, listener } of this.#attached) http.off('upgrade', listener);
    this.#attached.length = 0;
    const closing = [...this.#hub.all()].map(
      ({ socket: ws }) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => ws.terminate(), graceMs);
          ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          ws.close(1001, 'server closing');
        }),
    );
    await Promise.all(closing);
    this.#wss.close();
  }

  #closeIfUnanswered(socket: Duplex, status: number): void {
    const timer = setTimeout(() => {
      const raw = socket as Duplex & { bytesWritten?: number };
      if (socket.destroyed || (raw.bytesWritten ?? 0) > 0) return;
      refuse(socket, status);
    }, UNANSWERED_UPGRADE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }
}


/**
 * The open sockets and their frames: what each one sends and receives once
 * it is accepted. Not exported: its methods take the `ws` types, which the
 * package's public declarations must not need.
 */
class Sockets {
  readonly #server: SocketProtocol;
  readonly #options: WebSocketOptions;
  readonly #sockets = new Set<WsConnection>();
  #lastFrame: { messages: readonly string[]; buffer: Buffer } | undefined;

  constructor(server: SocketProtocol, options: WebSocketOptions) {
    this.#server = server;
    this.#options = options;
  }

  all(): IterableIterator<WsConnection> {
    return this.#sockets.values();
  }

  open(ws: WebSocket, req: IncomingMessage): void {
    const conn = new WsConnection(this, ws, req, this.#options.wsHighWaterMark);
    (ws as TaggedSocket)[CONNECTION] = conn;
    this.#sockets.add(conn);
    this.#server.socketOpened();
    ws.on('pong', onPong);
    ws.on('message', onMessage);
    ws.on('error', onSocketError);
    req.socket.on('error', ignoreError);
    ws.on('close', onClose);
  }

  /** A socket closed. */
  closed(conn: WsConnection): void {
    this.#sockets.delete(conn);
    this.#server.detach(conn);
  }

  /** A frame arrived. */
  frame(conn: WsConnection, data: RawData, isBinary: boolean): void {
    const ws = conn.socket;
    if (ws.readyState !== WebSocket.OPEN) return;
    // A client that sends but does not read: its replies would pile up in memory.
    if (this.#overHighWater(ws)) return;
    let messages: unknown[];
    try {
      if (isBinary) throw new Error('binary frames are not Bayeux');
      // ws hands text and binary frames as one Buffer (binaryType 'nodebuffer', its default).
      const parsed: unknown = JSON.parse((data as Buffer).toString());
      messages = messageList(parsed);
    } catch {
      this.#error(ws, ProtocolErrors.badMessage('invalid JSON frame').toString());
      return;
    }
    const { maxBatch } = this.#options;
    if (messages.length === 0) return this.#error(ws, ProtocolErrors.badMessage('empty frame').toString());
    if (messages.length > maxBatch) return this.#error(ws, ProtocolErrors.tooManyMessages(maxBatch).toString());
    if (conn.pending >= MAX_PENDING_FRAMES) {
      // The client sends faster than its frames can be handled: stop it rather than buffer without bound.
      ws.close(1008, 'too many frames in flight');
      return;
    }
    conn.pending++;
    // Frames are handled in order, but a lone /meta/connect (which may be
    // held) does not hold up the frames after it; while it is held, nothing
    // waits here but its callback.
    const lone = messages.length === 1 && (messages[0] as { channel?: unknown } | null)?.channel === '/meta/connect';
    if (lone) {
      // Held for as long as a connect is: no closure of its own, only the connection's `answer`.
      void conn.chain.then(() => this.#server.handle(messages, conn, conn.answer));
    } else {
      conn.chain = conn.chain.then(
        () => new Promise<void>((resolve) => {
          this.#server.handle(messages, conn, (replies) => {
            this.answer(conn, replies);
            resolve();
          });
        }),
      );
    }
  }

  /** Send a frame's replies (`WsConnection.answer`). */
  answer(conn: WsConnection, replies: readonly string[]): void {
    conn.pending--;
    if (replies.length > 0) this.#reply(conn.socket, jsonArray(replies));
    if (conn.draining && conn.pending === 0) closeDrained(conn);
  }

  /**
   * The frame for a push. In a fan-out every session gets the same messages
   * (the same strings, from one serialization) in the same flush pass, so
   * the last frame is reused when its messages are identical: one join and
   * one UTF-8 encoding per flush pass instead of one per session.
   */
  pushFrame(messages: readonly string[]): Buffer {
    const last = this.#lastFrame;
    if (last && last.messages.length === messages.length && last.messages.every((m, i) => m === messages[i])) {
      return last.buffer;
    }
    const buffer = Buffer.from(jsonArray(messages));
    this.#lastFrame = { messages, buffer };
    return buffer;
  }

  #error(ws: WebSocket, error: string): void {
    this.#reply(ws, JSON.stringify([{ channel: '/meta/unknown', successful: false, error }]));
  }

  /** Send a reply frame, unless the socket already buffers more than `wsHighWaterMark`. */
  #reply(ws: WebSocket, text: string): void {
    if (ws.readyState !== WebSocket.OPEN || this.#overHighWater(ws)) return;
    ws.send(text, ignoreError);
  }

  /**
   * Whether `ws` buffers more than `wsHighWaterMark` bytes. Such a socket
   * is closed with 1013 (try again later) and cut if it does not take the
   * close frame within a second: replies are never dropped silently (the
   * client would wait for them forever), and never buffered without bound.
   */
  #overHighWater(ws: WebSocket): boolean {
    const { wsHighWaterMark, logger } = this.#options;
    if (ws.bufferedAmount <= wsHighWaterMark) return false;
    logger.warn(`websocket closed: more than ${wsHighWaterMark} bytes waiting to be read by its client`);
    ws.close(1013, 'reading too slowly');
    setTimeout(() => ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
    return true;
  }

  ping(): void {
    for (const conn of this.#sockets) {
      const ws = conn.socket;
      if (!conn.alive) {
        ws.terminate();
        continue;
      }
      conn.alive = false;
      ws.ping();
    }
  }
}

/**
 * An upgrade request while its middleware runs. The middleware may never
 * finish (a hanging session store, an auth call that never answers): the
 * socket would then stay open for good, in CLOSE_WAIT once its client
 * gives up, since an HTTP server's sockets allow half-open connections.
 * So the wait has a deadline (`upgradeTimeout`, refused with 503), and a
 * client that goes away while it waits ('end', 'close') has its socket
 * destroyed at once.
 */
class UpgradeWait {
  readonly #socket: Duplex;
  readonly #timer: NodeJS.Timeout | undefined;
  #waiting = true;

  constructor(socket: Duplex, timeoutMs: number) {
    this.#socket = socket;
    socket.once('end', this.#gone);
    socket.once('close', this.#gone);
    if (timeoutMs > 0) {
      this.#timer = setTimeout(this.#expired, timeoutMs);
      this.#timer.unref();
    }
  }

  /** The middleware finished: true if the upgrade is still ours to answer. */
  end(): boolean {
    if (!this.#waiting) return false;
    this.#stop();
    return !this.#socket.destroyed;
  }

  #stop(): void {
    this.#waiting = false;
    clearTimeout(this.#timer);
    this.#socket.off('end', this.#gone);
    this.#socket.off('close', this.#gone);
  }

  readonly #gone = (): void => {
    if (!this.#waiting) return;
    this.#stop();
    this.#socket.destroy();
  };

  readonly #expired = (): void => {
    if (!this.#waiting) return;
    this.#stop();
    refuse(this.#socket, 503);
  };
}

/** Answer an upgrade request with an HTTP status and close its connection. */
function refuse(socket: Duplex, status: number): void {
  if (socket.destroyed) return;
  const code = status >= 400 && status <= 599 ? status : 500;
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? 'Error'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
