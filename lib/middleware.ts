/**
 * `bayeux(options)`: the Express middleware, and the server object users
 * call (`use`, `service`, `publish`, `subscribe`, `deliver`, events,
 * `stats`, `attach`, `close`).
 */
import type { Server as HttpServer } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { type BayeuxOptions, resolveOptions } from './options.js';
import { type LocalListener, type LocalSubscription, Server } from './server/server.js';
import type { Middleware, OutgoingHook, PublishOptions, ServerEvents, ServiceHandler, SessionData, Stats } from './server/types.js';
import { CallbackPollingTransport } from './transports/callback-polling.js';
import { HttpError } from './errors.js';
import { LongPollingTransport } from './transports/long-polling.js';
import { sendHttpError } from './transports/http.js';
import { applyCors } from './transports/cors.js';
import { type AttachOptions, findMountPath, WebSocketTransport } from './transports/websocket.js';

type Listener<K extends keyof ServerEvents> = (...args: ServerEvents[K]) => void;

/** The value `bayeux()` returns: an Express middleware with the server's API on it. */
export interface BayeuxMiddleware {
  (req: Request, res: Response, next: NextFunction): void;
  /** Message middleware for every message, or for messages about channels matching `pattern`. */
  use(fn: Middleware): BayeuxMiddleware;
  use(pattern: string, fn: Middleware): BayeuxMiddleware;
  /** A hook on every message the server sends (see `OutgoingHook`). */
  outgoing(fn: OutgoingHook): BayeuxMiddleware;
  /** Answer `/service/...` requests; the return value goes back to the sender only. */
  service(channel: string, handler: ServiceHandler): BayeuxMiddleware;
  /**
   * Publish from the server; resolves to how many sessions it was queued
   * for. `except`: a clientId or a list that does not receive it; `ext`,
   * `id`: carried by every copy.
   */
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<number>;
  /** An in-process subscriber; returns a handle that unsubscribes. */
  subscribe(pattern: string, listener: LocalListener): LocalSubscription;
  /** Push one message to one session; resolves to false for an unknown session. */
  deliver(clientId: string, channel: string, data: unknown): Promise<boolean>;
  /** Subscribe a session to a channel from the server (rooms); false for an unknown session. */
  join(clientId: string, channel: string): Promise<boolean>;
  /** Unsubscribe a session from the server; false for an unknown session. */
  leave(clientId: string, channel: string): Promise<boolean>;
  /** The clientIds subscribed to exactly `channel`, on every node. */
  subscribers(channel: string): Promise<string[]>;
  /** End a session from the server; its client is told to handshake again. False for an unknown session. */
  disconnect(clientId: string): Promise<boolean>;
  /** A session's data: async `get`, `set`, `delete`, `all`; shared by every node. */
  session(clientId: string): SessionData;
  on<K extends keyof ServerEvents>(event: K, listener: Listener<K>): BayeuxMiddleware;
  once<K extends keyof ServerEvents>(event: K, listener: Listener<K>): BayeuxMiddleware;
  off<K extends keyof ServerEvents>(event: K, listener: Listener<K>): BayeuxMiddleware;
  stats(): Promise<Stats>;
  /** Accept Bayeux over WebSocket on this HTTP server, at the mount path (or `options.path`). */
  attach(server: HttpServer, options?: AttachOptions): BayeuxMiddleware;
  /** Answer held connects, close sockets, stop timers, close the engine. */
  close(): Promise<void>;
  /** The protocol server behind the middleware (for transports and tests). */
  readonly server: Server;
}

/** Create the Bayeux middleware. Throws a `TypeError` naming a bad or unknown option. */
export function bayeux(options: BayeuxOptions = {}): BayeuxMiddleware {
  const resolved = resolveOptions(options);
  const server = new Server(resolved);
  const longPolling = new LongPollingTransport(server);
  const callbackPolling = new CallbackPollingTransport(server);
  let websocket: WebSocketTransport | undefined;
  let learnedMount: string | undefined;
  const cors = resolved.cors;

  const middleware = function bayeuxMiddleware(req: Request, res: Response, next: NextFunction): void {
    learnedMount ??= req.baseUrl || undefined;
    if (cors && !applyCors(cors, req, res)) return;
    if (req.method === 'OPTIONS') {
      if (cors) res.status(204).end();
      else next();
      return;
    }
    if (req.method === 'POST') {
      void longPolling.handle(req, res);
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (req.query['message'] === undefined) {
        sendHttpError(res, new HttpError(400, 'message.missing', 'a Bayeux endpoint: POST messages, or GET with message= (and jsonp=)'));
      } else if (req.query['jsonp'] !== undefined) {
        if (resolved.jsonp) void callbackPolling.handle(req, res);
        else sendHttpError(res, new HttpError(400, 'jsonp.disabled', 'callback-polling (JSONP) is turned off on this server'));
      } else {
        void longPolling.handle(req, res);
      }
      return;
    }
    res.setHeader('Allow', 'GET, POST, OPTIONS');
    sendHttpError(res, new HttpError(405, 'method.not.allowed', `${req.method} is not a Bayeux method`));
  } as BayeuxMiddleware;

  const api: Omit<BayeuxMiddleware, never> = middleware;
  Object.defineProperty(api, 'server', { value: server, enumerable: true });
  api.use = function use(patternOrFn: string | Middleware, fn?: Middleware): BayeuxMiddleware {
    if (typeof patternOrFn === 'function') server.use(undefined, patternOrFn);
    else server.use(patternOrFn, fn as Middleware);
    return middleware;
  } as BayeuxMiddleware['use'];
  api.outgoing = (fn) => (server.outgoing(fn), middleware);
  api.service = (channel, handler) => (server.service(channel, handler), middleware);
  api.publish = (channel, data, publishOptions) => server.publish(channel, data, publishOptions);
  api.subscribe = (pattern, listener) => server.subscribe(pattern, listener);
  api.deliver = (clientId, channel, data) => server.deliver(clientId, channel, data);
  api.join = (clientId, channel) => server.join(clientId, channel);
  api.leave = (clientId, channel) => server.leave(clientId, channel);
  api.subscribers = (channel) => server.subscribers(channel);
  api.disconnect = (clientId) => server.disconnect(clientId);
  api.session = (clientId) => server.session(clientId);
  api.on = (event, listener) => (server.on(event, listener as never), middleware);
  api.once = (event, listener) => (server.once(event, listener as never), middleware);
  api.off = (event, listener) => (server.off(event, listener as never), middleware);
  api.stats = () => server.stats();
  api.attach = function attach(http: HttpServer, attachOptions: AttachOptions = {}): BayeuxMiddleware {
    if (attachOptions.path !== undefined && (typeof attachOptions.path !== 'string' || !attachOptions.path.startsWith('/'))) {
      throw new TypeError('attach option path must start with /');
    }
    websocket ??= new WebSocketTransport(server);
    let found: string | undefined;
    websocket.attach(http, () => {
      if (attachOptions.path !== undefined) return attachOptions.path.replace(/\/+$/, '') || '/';
      found ??= findMountPath(http, middleware);
      return found ?? learnedMount;
    });
    return middleware;
  };
  api.close = async function close(): Promise<void> {
    // Held connects are answered first, on their sockets; then the sockets close.
    await server.close();
    await websocket?.close();
  };
  return middleware;
}
