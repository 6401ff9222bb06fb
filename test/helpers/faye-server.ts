/**
 * A foreign Bayeux server for tests: Faye 1.4's NodeAdapter on an
 * `http.Server` bound to 127.0.0.1 (a free port, or the one asked for).
 * It records what it received, so tests can check the transport the
 * client used, and can refuse messages to test error handling.
 */

import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';

/** A message as Faye's extensions see it. */
export interface FayeMessage {
  channel: string;
  clientId?: string;
  connectionType?: string;
  subscription?: string | string[];
  data?: unknown;
  error?: string;
  ext?: Record<string, unknown>;
  [field: string]: unknown;
}

/** A Faye server-side extension. */
export interface FayeExtension {
  incoming?(message: FayeMessage, request: IncomingMessage | null, callback: (message: FayeMessage) => void): void;
  outgoing?(message: FayeMessage, request: IncomingMessage | null, callback: (message: FayeMessage) => void): void;
}

interface NodeAdapter {
  attach(server: Server): void;
  addExtension(extension: FayeExtension): void;
  close(): void;
}

const require = createRequire(import.meta.url);
const faye = require('faye') as { NodeAdapter: new (options: { mount: string; timeout: number }) => NodeAdapter };

export interface FayeServerOptions {
  /** Port to listen on (to restart a server on the port it had). @default 0 (a free port) */
  port?: number;
  /** Mount path. @default '/faye' */
  mount?: string;
  /** Seconds Faye holds a `/meta/connect`. @default 5 */
  timeout?: number;
  /** Destroy every WebSocket upgrade request, as a proxy that drops upgrades would. @default false */
  dropUpgrades?: boolean;
  /**
   * Refuse messages: return an error string (`"code:args:message"`) to
   * refuse one, or undefined to let it through.
   */
  refuse?: (message: FayeMessage) => string | undefined;
  /** Change replies and deliveries before they are sent. */
  rewrite?: (message: FayeMessage) => void;
}

export interface Received {
  message: FayeMessage;
  websocket: boolean;
  request: number;
}

export interface FayeServer {
  readonly port: number;
  /** The Bayeux URL, `http://127.0.0.1:<port>/faye`. */
  readonly url: string;
  /**
   * Every message the server received (a shallow copy, after `refuse` ran),
   * whether it came over a WebSocket, and a number for the HTTP request
   * that carried it (the upgrade request, for a WebSocket).
   */
  readonly received: Received[];
  /** How many WebSocket upgrade requests arrived. */
  readonly upgrades: number;
  /** The `connectionType` of every `/meta/connect` received. */
  connectionTypes(): string[];
  /** Stop at once, as a crash would: close the listener and destroy every socket. */
  close(): Promise<void>;
}

export async function startFaye(options: FayeServerOptions = {}): Promise<FayeServer> {
  const mount = options.mount ?? '/faye';
  const adapter = new faye.NodeAdapter({ mount, timeout: options.timeout ?? 5 });
  const received: Received[] = [];
  const requests = new WeakMap<IncomingMessage, number>();
  let nextRequest = 1;
  adapter.addExtension({
    incoming(message, request, callback) {
      const error = options.refuse?.(message);
      if (error) message.error = error;
      let number = 0;
      if (request) {
        number = requests.get(request) ?? nextRequest++;
        requests.set(request, number);
      }
      received.push({ message: { ...message }, websocket: request?.headers.upgrade?.toLowerCase() === 'websocket', request: number });
      callback(message);
    },
    outgoing(message, _request, callback) {
      options.rewrite?.(message);
      callback(message);
    },
  });

  const server = createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  let upgrades = 0;
  adapter.attach(server);
  server.on('upgrade', () => { upgrades++; });
  if (options.dropUpgrades) {
    server.removeAllListeners('upgrade');
    server.on('upgrade', (_request: IncomingMessage, socket: Socket) => {
      upgrades++;
      socket.destroy();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}${mount}`,
    received,
    get upgrades() {
      return upgrades;
    },
    connectionTypes() {
      return received.filter((r) => r.message.channel === '/meta/connect').map((r) => String(r.message.connectionType));
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        adapter.close();
      });
      return closed;
    },
  };
}
