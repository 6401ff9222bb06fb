/**
 * Bayeux over WebSocket, on the HTTP server's `upgrade` event (`ws` in
 * `noServer` mode), for the middleware's mount path only. Each text frame
 * is a JSON array of messages (or one message). A held `/meta/connect` does
 * not block the socket: later frames are handled while it waits. Deliveries
 * are pushed as they arrive, one frame per flush.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Server } from '../server/server.js';
import type { Connection } from '../server/types.js';
import { upgradeOriginAllowed } from './cors.js';
import { jsonArray } from './http.js';

/** Send options for a text frame given as a Buffer. */
const TEXT = { binary: false } as const;

/** How long an upgrade request for another path may wait for another listener to answer it. */
const UNANSWERED_UPGRADE_MS = 3000;

export interface AttachOptions {
  /** The path to accept upgrades on. Default: where the middleware is mounted. */
  path?: string;
}

interface SocketState {
  conn: Connection;
  alive: boolean;
  /** Frames are handled in order: each waits for the one before. Never rejects. */
  chain: Promise<void>;
  /** Frames received and not yet answered. */
  pending: number;
}

/** Most frames one socket may have waiting to be handled; beyond it the socket is closed (1008). */
const MAX_PENDING_FRAMES = 256;

export class WebSocketTransport {
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #sockets = new Map<WebSocket, SocketState>();
  readonly #attached: Array<{ http: HttpServer; listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void }> = [];
  #heartbeat: NodeJS.Timeout | undefined;
  #lastFrame: { messages: readonly string[]; buffer: Buffer } | undefined;

  constructor(server: Server) {
    this.#server = server;
    const { maxBodyBytes, wsPerMessageDeflate } = server.options;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: maxBodyBytes, perMessageDeflate: wsPerMessageDeflate });
    server.addConnectionType('websocket');
  }

  /** Take upgrades for `path()` on `http`; leave the others to other listeners. */
  attach(http: HttpServer, path: () => string | undefined): void {
    const listener = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const pathname = (req.url ?? '/').split('?')[0] as string;
      const mount = path();
      const ours = mount !== undefined && (pathname === mount || pathname === mount + '/' || pathname.startsWith(mount + '/'));
      if (!ours || this.#server.closed) {
        this.#closeIfUnanswered(socket, ours ? 503 : 404);
        return;
      }
      if (!upgradeOriginAllowed(this.#server.options.cors, req)) {
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        socket.destroy();
        return;
      }
      socket.on('error', () => socket.destroy());
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, req));
    };
    http.on('upgrade', listener);
    this.#attached.push({ http, listener });
    const interval = this.#server.options.wsPingInterval;
    if (interval > 0 && !this.#heartbeat) {
      this.#heartbeat = setInterval(() => this.#ping(), interval);
      this.#heartbeat.unref();
    }
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
    const closing = [...this.#sockets.keys()].map(
      (ws) =>
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
      const reason = status === 404 ? 'Not Found' : 'Service Unavailable';
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    }, UNANSWERED_UPGRADE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  #open(ws: WebSocket, req: IncomingMessage): void {
    const controller = new AbortController();
    const highWater = this.#server.options.wsHighWaterMark;
    const expressReq = req as IncomingMessage & { ip?: string };
    const conn: Connection = {
      transport: 'websocket',
      req,
      socket: ws,
      ip: expressReq.ip ?? req.socket.remoteAddress,
      signal: controller.signal,
      clientId: undefined,
      push: (messages) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(this.#pushFrame(messages), TEXT);
      },
      congested: () => ws.bufferedAmount > highWater,
      writable: () => ws.readyState === WebSocket.OPEN,
    };
    const state: SocketState = { conn, alive: true, chain: Promise.resolve(), pending: 0 };
    this.#sockets.set(ws, state);
    this.#server.socketOpened();
    ws.on('pong', () => (state.alive = true));
    ws.on('message', (data, isBinary) => this.#frame(state, data, isBinary));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      this.#sockets.delete(ws);
      controller.abort();
      this.#server.detach(conn);
    });
  }

  #frame(state: SocketState, data: RawData, isBinary: boolean): void {
    const ws = state.conn.socket as WebSocket;
    let messages: unknown[];
    try {
      if (isBinary) throw new Error('binary frames are not Bayeux');
      const parsed: unknown = JSON.parse(data.toString());
      messages = Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      this.#error(ws, '400::invalid JSON frame');
      return;
    }
    const { maxBatch } = this.#server.options;
    if (messages.length === 0) return this.#error(ws, '400::empty frame');
    if (messages.length > maxBatch) return this.#error(ws, `400:${maxBatch}:too_many_messages`);
    if (state.pending >= MAX_PENDING_FRAMES) {
      // The client sends faster than its frames can be handled: stop it rather than buffer without bound.
      ws.close(1008, 'too many frames in flight');
      return;
    }
    state.pending++;
    const run = async (): Promise<void> => {
      try {
        const replies = await this.#server.process(messages, state.conn);
        if (replies.length > 0 && ws.readyState === WebSocket.OPEN) ws.send(jsonArray(replies));
      } catch (err) {
        // process() does not reject; if it ever does, this socket ends, never the process.
        this.#server.options.logger.error(`websocket frame failed: ${err instanceof Error ? err.message : String(err)}`);
        ws.close(1011, 'internal error');
      } finally {
        state.pending--;
      }
    };
    // Frames are handled in order, but a lone /meta/connect (which may be
    // held) does not hold up the frames after it.
    const lone = messages.length === 1 && (messages[0] as { channel?: unknown } | null)?.channel === '/meta/connect';
    if (lone) void state.chain.then(run);
    else state.chain = state.chain.then(run);
  }

  /**
   * The frame for a push. In a fan-out every session gets the same messages
   * (the same strings, from one serialization) in the same flush pass, so
   * the last frame is reused when its messages are identical: one join and
   * one UTF-8 encoding per flush pass instead of one per session.
   */
  #pushFrame(messages: readonly string[]): Buffer {
    const last = this.#lastFrame;
    if (last && last.messages.length === messages.length && last.messages.every((m, i) => m === messages[i])) {
      return last.buffer;
    }
    const buffer = Buffer.from(jsonArray(messages));
    this.#lastFrame = { messages, buffer };
    return buffer;
  }

  #error(ws: WebSocket, error: string): void {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify([{ channel: '/meta/unknown', successful: false, error }]));
    }
  }

  #ping(): void {
    for (const [ws, state] of this.#sockets) {
      if (!state.alive) {
        ws.terminate();
        continue;
      }
      state.alive = false;
      ws.ping();
    }
  }
}

/**
 * Where `handle` is mounted in the Express app serving `http`: walks the
 * app's router stack (Express 5 layers keep their `rawPath`). Undefined if
 * it cannot be found.
 */
export function findMountPath(http: HttpServer, handle: unknown): string | undefined {
  for (const listener of http.listeners('request')) {
    const router = (listener as { router?: { stack?: unknown[] } }).router;
    const found = router?.stack ? search(router.stack, '', handle, 0) : undefined;
    if (found !== undefined) return found;
  }
  return undefined;
}

function search(stack: unknown[], prefix: string, handle: unknown, depth: number): string | undefined {
  if (depth > 8) return undefined;
  for (const layer of stack as Array<{ handle?: unknown; rawPath?: unknown }>) {
    const raw = typeof layer.rawPath === 'string' ? layer.rawPath : '';
    const path = (prefix + (raw === '/' ? '' : raw)).replace(/\/+$/, '');
    if (layer.handle === handle) return path || '/';
    const inner = layer.handle as { stack?: unknown[]; router?: { stack?: unknown[] } } | undefined;
    const innerStack = inner?.stack ?? inner?.router?.stack;
    if (Array.isArray(innerStack)) {
      const found = search(innerStack, path, handle, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
