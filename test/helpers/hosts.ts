/**
 * Test helpers: the middleware on every host it supports (Express 5,
 * Express 4, connect, a bare `http.createServer` handler), each on a real
 * HTTP server on 127.0.0.1 with an app route (`GET /hello`) and the app's
 * own WebSocket endpoint (`/app-ws`, an echo) beside Bayeux.
 */
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import connect from 'connect';
import express5 from 'express';
import { WebSocketServer } from 'ws';
import { bayeux, type AttachOptions, type BayeuxMiddleware, type BayeuxOptions, type UpgradeMiddleware } from '../../lib/index.js';

/** Express 4, installed beside Express 5 as `express4`; its API for these tests is Express 5's. */
const express4 = createRequire(import.meta.url)('express4') as typeof express5;

export type HostName = 'express5' | 'express4' | 'connect' | 'http';
export const HOSTS: readonly HostName[] = ['express5', 'express4', 'connect', 'http'];

export interface HostServer {
  host: HostName;
  /** The Bayeux endpoint (`origin + mount`). */
  url: string;
  origin: string;
  mount: string;
  cometd: BayeuxMiddleware;
  http: HttpServer;
  close(): Promise<void>;
}

export interface HostOptions {
  /** Where the middleware is mounted. Default `/cometd`; `/` mounts it at the root of the app. */
  mount?: string;
  /** Options for `attach()`; `false`: no WebSocket. Default `{ path: mount }`. */
  attach?: AttachOptions | false;
  /** Connect-style middleware the app runs before the Bayeux middleware. */
  before?: UpgradeMiddleware[];
  /**
   * The app's own routes beside Bayeux, made from the middleware object (a
   * `cometd.publishHandler()`, say): on Express a `POST` route (after
   * `express.json()` when `json`), on connect `app.use(path, handler)`, on
   * a bare handler called without `next` for that path.
   */
  routes?: (cometd: BayeuxMiddleware) => HostRoute[];
}

/** A route of the app (see {@link HostOptions.routes}). */
export interface HostRoute {
  path: string;
  handler: (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;
  /** Express only: parse the body with the host's `express.json()` first. */
  json?: boolean;
}

function hello(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.end('hello from the app');
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('app: not found');
}

/** The Bayeux middleware mounted the way an app on `host` mounts it. */
function appFor(host: HostName, mount: string, cometd: BayeuxMiddleware, before: NonNullable<HostOptions['before']>, routes: readonly HostRoute[]) {
  switch (host) {
    case 'express5':
    case 'express4': {
      const express = host === 'express5' ? express5 : express4;
      const app = express();
      for (const fn of before) app.use(fn);
      app.get('/hello', (_req, res) => hello(res));
      for (const route of routes) {
        if (route.json) app.post(route.path, express.json(), route.handler);
        else app.post(route.path, route.handler);
      }
      if (mount === '/') app.use(cometd);
      else app.use(mount, cometd);
      return app;
    }
    case 'connect': {
      const app = connect();
      for (const fn of before) app.use(fn);
      app.use('/hello', (_req: IncomingMessage, res: ServerResponse) => hello(res));
      for (const route of routes) app.use(route.path, route.handler);
      if (mount === '/') app.use(cometd);
      else app.use(mount, cometd);
      app.use((_req: IncomingMessage, res: ServerResponse) => notFound(res));
      return app;
    }
    case 'http':
      return function bareHandler(req: IncomingMessage, res: ServerResponse): void {
        const path = (req.url ?? '/').split('?')[0] as string;
        const run = (i: number): void => {
          const fn = before[i];
          if (fn) {
            fn(req, res, () => run(i + 1));
            return;
          }
          if (path === '/hello') return hello(res);
          const route = routes.find((r) => r.path === path);
          if (route) return route.handler(req, res);
          if (mount === '/' || path === mount || path.startsWith(mount + '/')) return cometd(req, res, () => notFound(res));
          notFound(res);
        };
        run(0);
      };
  }
}

/** Start the app on `host` with the middleware mounted at `options.mount`. */
export async function startHost(host: HostName, bayeuxOptions: BayeuxOptions = {}, options: HostOptions = {}): Promise<HostServer> {
  const mount = options.mount ?? '/cometd';
  const cometd = bayeux({ logLevel: 'error', ...bayeuxOptions });
  const app = appFor(host, mount, cometd, options.before ?? [], options.routes?.(cometd) ?? []);
  const http = createServer(app);
  // The app's own WebSocket endpoint, beside Bayeux: an echo at /app-ws.
  const appWss = new WebSocketServer({ noServer: true });
  appWss.on('connection', (ws) => ws.on('message', (data) => ws.send(`echo:${String(data)}`)));
  http.on('upgrade', function appUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    if (req.url === '/app-ws') appWss.handleUpgrade(req, socket, head, (ws) => appWss.emit('connection', ws, req));
  });
  if (options.attach !== false) cometd.attach(http, options.attach ?? { path: mount });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    host,
    url: origin + (mount === '/' ? '' : mount),
    origin,
    mount,
    cometd,
    http,
    async close() {
      await cometd.close();
      for (const ws of appWss.clients) ws.terminate();
      appWss.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
