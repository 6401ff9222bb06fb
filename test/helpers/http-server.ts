/**
 * Test helpers: an Express app with the middleware on a real HTTP server on
 * 127.0.0.1, and a raw Bayeux poster.
 */
import type { AddressInfo } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import express from 'express';
import { bayeux, type BayeuxMiddleware, type BayeuxOptions, type ServerEvents } from '../../lib/index.js';

export interface TestServer {
  url: string;
  origin: string;
  port: number;
  cometd: BayeuxMiddleware;
  http: HttpServer;
  app: express.Express;
  close(): Promise<void>;
}

export interface StartOptions {
  mount?: string;
  websocket?: boolean;
  port?: number;
  configure?: (app: express.Express) => void;
}

export async function startServer(options: BayeuxOptions = {}, start: StartOptions = {}): Promise<TestServer> {
  const mount = start.mount ?? '/cometd';
  const app = express();
  start.configure?.(app);
  const cometd = bayeux({ logLevel: 'error', ...options });
  app.use(mount, cometd);
  const http = await new Promise<HttpServer>((resolve) => {
    const s = app.listen(start.port ?? 0, '127.0.0.1', () => resolve(s));
  });
  if (start.websocket !== false) cometd.attach(http, { path: mount });
  const { port } = http.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: origin + mount,
    origin,
    port,
    cometd,
    http,
    app,
    async close() {
      await cometd.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** POST a body (object/array → JSON, string → as is) and read the answer. */
export async function post(url: string, body: unknown, contentType = 'application/json', timeoutMs = 10_000): Promise<RawResponse> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return read(res);
}

export async function get(url: string, timeoutMs = 10_000, headers: Record<string, string> = {}): Promise<RawResponse> {
  return read(await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) }));
}

/** Read a fetch Response whole: status, headers, text, and the JSON if it is JSON. */
export async function read(res: Response): Promise<RawResponse> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Handshake over long-polling and return the clientId. */
export async function handshake(url: string, ext?: Record<string, unknown>): Promise<string> {
  const res = await post(url, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: 'h', ...(ext ? { ext } : {}) }]);
  const reply = res.json?.[0];
  if (!reply?.successful) throw new Error('handshake failed: ' + res.text);
  return reply.clientId as string;
}

/** Resolve with the arguments of the next server `event` that passes `pred`, or reject after `ms`. */
export function nextEvent<T extends unknown[]>(
  server: TestServer,
  event: keyof ServerEvents,
  pred: (...args: T) => boolean,
  ms = 5000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const listener = (...args: unknown[]): void => {
      if (!pred(...(args as T))) return;
      clearTimeout(timer);
      server.cometd.off(event, listener);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      server.cometd.off(event, listener);
      reject(new Error(`no '${event}' event within ${ms} ms`));
    }, ms);
    server.cometd.on(event, listener);
  });
}
