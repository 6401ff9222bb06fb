/**
 * The package's own way to the protocol `Server` behind a middleware: for
 * the `express-bayeux` command, the benchmarks and the tests, which need
 * what users do not (open the engine before listening, observe the server,
 * build an ops handler by hand). Not reachable from the public entry, so
 * the `Server` class stays out of the public type and can change freely.
 */
import type { Server } from './server/server.js';

/**
 * A WeakMap, not a property: nothing on the middleware function shows the
 * server, and it goes with the middleware. Keyed by any object, so this
 * file need not import the middleware it serves.
 */
const SERVERS = new WeakMap<object, Server>();

/** Remember the server behind `middleware` (called once, by `bayeux()`). */
export function registerServer(middleware: object, server: Server): void {
  SERVERS.set(middleware, server);
}

/** The protocol server behind a middleware `bayeux()` made. Throws a `TypeError` for anything else. */
export function serverOf(middleware: object): Server {
  const server = SERVERS.get(middleware);
  if (!server) throw new TypeError('not a middleware made by bayeux()');
  return server;
}
