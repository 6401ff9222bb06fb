/**
 * `bayeux(options)`: the middleware, and the server object users call
 * (`use`, `service`, `publish`, `subscribe`, `deliver`, events, `stats`,
 * `attach`, `close`). The middleware is written on Node's
 * `IncomingMessage`/`ServerResponse` alone, so it runs mounted in Express 5
 * or 4, in connect, or called from a bare `http.createServer` handler.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { type BayeuxOptions, resolveOptions } from './options.js';
import { registerServer } from './internal.js';
import type { LocalListener, LocalSubscription } from './server/types.js';
import { Server } from './server/server.js';
import type { CloseOptions, Middleware, OutgoingHook, PublishOptions, ServerEvents, ServiceHandler, SessionData, Stats } from './server/types.js';
import type { HistoryOptions, HistoryResult } from './server/history.js';
import type { PresenceUser } from './server/users.js';
import type { PresenceCount } from './engines/engine.js';
import { CallbackPollingTransport } from './transports/callback-polling.js';
import { HttpError } from './errors.js';
import { LongPollingTransport } from './transports/long-polling.js';
import { type HostRequest, queryOf, sendHttpError } from './transports/http.js';
import { applyCors } from './transports/cors.js';
import { type AttachOptions, checkAttachOptions } from './transports/attach.js';
import { HostShapes } from './transports/host-shapes.js';
import { WebSocketTransport } from './transports/websocket.js';
import {
  type AdminHandler, type AdminOptions, createAdminHandler, createHealthHandler, createMetricsHandler, type HealthOptions,
  type MetricsHandler, type MetricsOptions, type OpsHandler, createPublishHandler, type PublishHandlerOptions,
} from './ops/index.js';
import { describeError } from './protocol/error.js';
import { isUnderMount, pathnameOf } from './transports/mount.js';

type Listener<K extends keyof ServerEvents> = (...args: ServerEvents[K]) => void;

/** Connect's and Express's `next`: call it to pass the request on, or with an error. */
export type NextFunction = (err?: unknown) => void;

/**
 * The value `bayeux()` returns: a connect-style middleware (Express 5 and
 * 4, connect, or a bare `http` handler, where `next` may be left out) with
 * the server's API on it.
 */
export interface BayeuxMiddleware {
  (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void;
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
  /**
   * A channel's kept messages (`history` option), oldest first, each with
   * its `position`, and the channel's position: `since` only those after
   * a position, `limit` at most so many. Rejects with a `BayeuxError`
   * `404:<channel>:no_history` for a channel without history.
   */
  history(channel: string, options?: HistoryOptions): Promise<HistoryResult>;
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
  /**
   * Who is subscribed to a presence channel (`presence` option), on every
   * node: one entry per user with their clientIds there (anonymous
   * sessions: one entry each, `user` undefined); at most `presenceLimit`
   * sessions read. Rejects with `404:<channel>:no_presence` for a channel
   * without presence.
   */
  presence(channel: string): Promise<PresenceUser[]>;
  /** How many users and sessions are on a presence channel, on every node; never capped. */
  presenceCount(channel: string): Promise<PresenceCount>;
  /** The live sessions of a user (`identify`), on every node. */
  sessionsOf(userId: string): Promise<string[]>;
  /** Push one message to every session of a user, on every node; resolves to how many it reached. */
  deliverToUser(userId: string, channel: string, data: unknown): Promise<number>;
  /** End every session of a user, as {@link disconnect} does; resolves to how many ended. */
  disconnectUser(userId: string): Promise<number>;
  on<K extends keyof ServerEvents>(event: K, listener: Listener<K>): BayeuxMiddleware;
  once<K extends keyof ServerEvents>(event: K, listener: Listener<K>): BayeuxMiddleware;
  off<K extends keyof ServerEvents>(event: K, listener: Listener<K>): BayeuxMiddleware;
  stats(): Promise<Stats>;
  /**
   * A request handler serving Prometheus metrics (prom-client's text
   * format); `{ registry }` joins the application's own registry.
   */
  metrics(options?: MetricsOptions): MetricsHandler;
  /** A request handler serving the live admin page; mount it behind your own auth. */
  admin(options?: AdminOptions): AdminHandler;
  /** A request handler answering 200 while the engine is reachable, 503 otherwise (load balancers, probes). */
  health(options?: HealthOptions): OpsHandler;
  /**
   * A request handler publishing what is POSTed to it (`{ channel, data,
   * ext?, id? }` or an array) as {@link publish} does, answering
   * `{ "published": n }`: for other processes and languages. Needs
   * `{ token }` (a Bearer token) or `{ authorize }`; throws without either.
   */
  publishHandler(options: PublishHandlerOptions): OpsHandler;
  /**
   * Accept Bayeux over WebSocket on this HTTP server, at `options.path`
   * (or the mount path learned from the first HTTP request), running
   * `options.middleware` on each upgrade request first. Also gives
   * long-polling requests under that path the fields the host's router
   * adds to them before it runs, so that behind Express they keep one
   * shared hidden class (less memory per held connect, less CPU per
   * request); call it on every server the middleware serves.
   */
  attach(server: HttpServer, options?: AttachOptions): BayeuxMiddleware;
  /**
   * Answer held connects, close sockets, stop timers, close the engine.
   * `{ drain: ms }` first takes the node out of service gracefully over
   * that window: health answers 503 `draining`, new handshakes are refused
   * with advice to retry, and sessions are handed off in evenly spread
   * slices (see the Deploying page).
   */
  close(options?: CloseOptions): Promise<void>;
}

/** Where the browser client bundle is, next to the compiled package (`dist/browser/client.js`). */
const CLIENT_BUNDLE = new URL('../browser/client.js', import.meta.url);

/** Create the Bayeux middleware. Throws a `TypeError` naming a bad or unknown option. */
export function bayeux(options: BayeuxOptions = {}): BayeuxMiddleware {
  const resolved = resolveOptions(options);
  const server = new Server(resolved);
  // Each transport gets the few options it reads, not the whole set.
  const { maxBodyBytes, bodyTimeout, maxBatch } = resolved;
  /** The mount path, learned from the first request a host routed here with its mount path on it. */
  let learnedMount: string | undefined;
  /** The path given to attach(), for hosts (bare http) that do not strip the mount path from `req.url`. */
  let attachedPath: string | undefined;
  // Requests under the mount path get the host's routing fields before the host runs (see host-shapes.ts).
  const shapes = new HostShapes(() => attachedPath ?? learnedMount);
  /** Servers attach() put the shapes' `request` listener on. */
  const shaped = new Set<HttpServer>();
  const longPolling = new LongPollingTransport(server, { maxBodyBytes, bodyTimeout, maxBatch, shapes });
  const callbackPolling = new CallbackPollingTransport(server, { maxBatch, shapes });
  const logger = resolved.logger;
  let websocket: WebSocketTransport | undefined;
  const cors = resolved.cors;
  const clientScript = new ClientScript();

  /** Whether the first request looked for an attached server (the warning below is logged once). */
  let attachChecked = false;

  const unexpected = (err: unknown): void => {
    logger.error(`request failed: ${describeError(err)}`);
  };

  const middleware = function bayeuxMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const hreq = req as HostRequest;
    learnedMount ??= mountOf(hreq);
    if (!attachChecked) {
      attachChecked = true;
      // Without attach() nothing takes the upgrades: clients quietly fall back to long-polling.
      if (websocket === undefined) {
        logger.warn('no HTTP server was attached, so WebSocket is unavailable: clients fall back to long-polling ' +
          '(a held request per client, and a new request after every delivery). ' +
          `Call cometd.attach(server, { path: '${attachedPath ?? learnedMount ?? '/cometd'}' }) with the server app.listen() returns.`);
      }
    }
    const pass = next ?? function notFound(err?: unknown): void {
      if (err !== undefined) sendHttpError(res, new HttpError(500, 'server.error', 'internal error'));
      else sendHttpError(res, new HttpError(404, 'not.found', 'not a Bayeux request'));
    };
    if (cors && !applyCors(cors, req, res)) return;
    if (req.method === 'OPTIONS') {
      if (cors) {
        res.statusCode = 204;
        res.end();
      } else pass();
      return;
    }
    if (req.method === 'POST') {
      longPolling.handle(hreq, res).catch(unexpected);
      return;
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      const query = queryOf(req);
      if (!query.has('message')) {
        // Not a Bayeux request: the client bundle, or whatever comes after this middleware.
        if (relativePath(hreq, attachedPath) === '/client.js') clientScript.serve(req, res, pass);
        else pass();
      } else if (query.has('jsonp')) {
        if (resolved.jsonp) callbackPolling.handle(hreq, res).catch(unexpected);
        else sendHttpError(res, new HttpError(400, 'jsonp.disabled', 'callback-polling (JSONP) is turned off on this server'));
      } else {
        longPolling.handle(hreq, res).catch(unexpected);
      }
      return;
    }
    res.setHeader('Allow', 'GET, POST, OPTIONS');
    sendHttpError(res, new HttpError(405, 'method.not.allowed', `${req.method ?? ''} is not a Bayeux method`));
  } as BayeuxMiddleware;

  const api: Omit<BayeuxMiddleware, never> = middleware;
  registerServer(middleware, server);
  api.use = function use(patternOrFn: string | Middleware, fn?: Middleware): BayeuxMiddleware {
    if (typeof patternOrFn === 'function') server.use(undefined, patternOrFn);
    else server.use(patternOrFn, fn as Middleware);
    return middleware;
  };
  /** Outgoing hooks added: with one, the publish handler publishes a batch one message at a time. */
  let outgoingHooks = 0;
  api.outgoing = (fn) => (server.outgoing(fn), outgoingHooks++, middleware);
  api.service = (channel, handler) => (server.service(channel, handler), middleware);
  api.publish = (channel, data, publishOptions) => server.publish(channel, data, publishOptions);
  api.subscribe = (pattern, listener) => server.subscribe(pattern, listener);
  api.deliver = (clientId, channel, data) => server.deliver(clientId, channel, data);
  api.history = (channel, historyOptions) => server.history(channel, historyOptions);
  api.join = (clientId, channel) => server.join(clientId, channel);
  api.leave = (clientId, channel) => server.leave(clientId, channel);
  api.subscribers = (channel) => server.subscribers(channel);
  api.disconnect = (clientId) => server.disconnect(clientId);
  api.session = (clientId) => server.session(clientId);
  api.presence = (channel) => server.presence(channel);
  api.presenceCount = (channel) => server.presenceCount(channel);
  api.sessionsOf = (userId) => server.sessionsOf(userId);
  api.deliverToUser = (userId, channel, data) => server.deliverToUser(userId, channel, data);
  api.disconnectUser = (userId) => server.disconnectUser(userId);
  api.on = (event, listener) => (server.on(event, listener as never), middleware);
  api.once = (event, listener) => (server.once(event, listener as never), middleware);
  api.off = (event, listener) => (server.off(event, listener as never), middleware);
  api.stats = () => server.stats();
  /** Handlers made by metrics() and admin(), closed with the server. */
  const opsHandlers: Array<{ close(): void }> = [];
  api.metrics = (metricsOptions) => {
    const handler = createMetricsHandler(server, metricsOptions);
    opsHandlers.push(handler);
    return handler;
  };
  api.admin = (adminOptions) => {
    const handler = createAdminHandler(server, adminOptions);
    opsHandlers.push(handler);
    return handler;
  };
  api.health = (healthOptions) => createHealthHandler(server, healthOptions);
  api.publishHandler = (publishOptions) => createPublishHandler({
    publish: (channel, data, options) => server.publish(channel, data, options),
    inOrder: () => outgoingHooks === 0,
    limits: { maxBodyBytes, maxBatch, bodyTimeout },
    logger,
    get closed() {
      return server.closed;
    },
  }, publishOptions);
  api.attach = function attach(http: HttpServer, attachOptions: AttachOptions = {}): BayeuxMiddleware {
    const { path: fixed, middleware: stack } = checkAttachOptions(attachOptions);
    attachedPath ??= fixed;
    if (!shaped.has(http)) {
      shaped.add(http);
      http.prependListener('request', shapes.prepare);
    }
    websocket ??= new WebSocketTransport(server, {
      maxBodyBytes, maxBatch, cors,
      wsPerMessageDeflate: resolved.wsPerMessageDeflate,
      wsPingInterval: resolved.wsPingInterval,
      wsHighWaterMark: resolved.wsHighWaterMark,
      upgradeTimeout: resolved.upgradeTimeout,
      logger,
    });
    let warned = false;
    websocket.attach(http, {
      path: () => fixed ?? learnedMount,
      middleware: stack,
      unknownPath() {
        if (warned) return;
        warned = true;
        logger.warn('a WebSocket upgrade arrived before the mount path was known, and was left to other listeners: ' +
          "pass it to attach (cometd.attach(server, { path: '/cometd' }))");
      },
    });
    return middleware;
  };
  api.close = async function close(closeOptions?: CloseOptions): Promise<void> {
    // Held connects are answered first, on their sockets; then the sockets close.
    await server.close(closeOptions);
    await websocket?.close();
    for (const http of shaped) http.off('request', shapes.prepare);
    shaped.clear();
    for (const handler of opsHandlers.splice(0)) handler.close();
  };
  return middleware;
}

/**
 * Where the host mounted the middleware, from what it left on the request:
 * Express's `req.baseUrl`, or connect's `req.originalUrl` minus `req.url`.
 * Undefined for a bare `http` handler (nothing is stripped there) and at
 * the root of an app.
 */
function mountOf(req: HostRequest): string | undefined {
  // At the root of an app every upgrade would look like ours, the app's own
  // WebSocket endpoints included: a root mount needs attach(server, { path }).
  if (typeof req.baseUrl === 'string') return req.baseUrl.replace(/\/+$/, '') || undefined;
  if (typeof req.originalUrl !== 'string' || req.originalUrl === req.url) return undefined;
  const original = pathnameOf(req.originalUrl);
  const rest = pathnameOf(req.url);
  if (rest === '/') return original.replace(/\/+$/, '') || undefined;
  if (!original.endsWith(rest)) return undefined;
  return original.slice(0, original.length - rest.length).replace(/\/+$/, '') || undefined;
}

/** The request path below the mount path. */
function relativePath(req: HostRequest, attachedPath: string | undefined): string {
  const pathname = pathnameOf(req.url);
  const stripped = typeof req.baseUrl === 'string' || (typeof req.originalUrl === 'string' && req.originalUrl !== req.url);
  if (stripped || attachedPath === undefined || attachedPath === '/' || !isUnderMount(pathname, attachedPath)) return pathname;
  return pathname.slice(attachedPath.length) || '/';
}

/**
 * The browser client as one ES module (built into `dist/browser/client.js`
 * by the package build), served at `<mount>/client.js` with an `ETag`; a
 * browser revalidates it on each load and gets `304` while it is unchanged.
 */
class ClientScript {
  #loaded: Promise<{ body: Buffer; etag: string } | undefined> | undefined;

  serve(req: IncomingMessage, res: ServerResponse, next: NextFunction): void {
    this.#loaded ??= readFile(CLIENT_BUNDLE).then(
      (body) => ({ body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }),
      () => undefined,
    );
    this.#loaded.then(
      function sendClient(script) {
        if (!script) {
          sendHttpError(res, new HttpError(404, 'client.missing', 'the browser client bundle is not built (dist/browser/client.js)'));
          return;
        }
        res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
        res.setHeader('Cache-Control', 'public, max-age=0, must-revalidate');
        res.setHeader('ETag', script.etag);
        res.setHeader('X-Content-Type-Options', 'nosniff');
        const match = req.headers['if-none-match'];
        if (match !== undefined && match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === script.etag)) {
          res.statusCode = 304;
          res.end();
          return;
        }
        res.statusCode = 200;
        res.setHeader('Content-Length', script.body.length);
        if (req.method === 'HEAD') res.end();
        else res.end(script.body);
      },
      next,
    ).catch(function clientFailed() {
      res.destroy();
    });
  }
}
