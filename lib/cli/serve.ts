/**
 * `express-bayeux serve`: a ready server (Express, the middleware,
 * WebSocket, health; optionally metrics, the admin page and static files)
 * that shuts down gracefully on SIGTERM and SIGINT.
 */
import type { Server as HttpServer } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bayeux, type BayeuxOptions, type Engine } from '../index.js';
import { serverOf } from '../internal.js';
import { CliFailure, type CliIo, describe, EXIT_FAILED, EXIT_OK, parse, UsageError } from './common.js';
import { isRedisMissing } from '../engines/redis/node-redis.js';

export const SERVE_USAGE = `Usage: express-bayeux serve [options]

Run a Bayeux server: Express with the middleware at --mount, WebSocket on
the same port, and a health check at /health (200 when the engine answers,
503 otherwise). SIGTERM drains the node first (see --drain): /health
answers 503 "draining", new handshakes are refused with advice to retry,
and sessions are handed off spread over the window. SIGINT skips the
drain. Then held connects are answered, sockets closed, and the process
exits 0 (a second signal exits at once).

Options:
  --port N             port to listen on (default: $PORT, else 8080; 0 picks one)
  --host HOST          address to listen on (default 127.0.0.1; use 0.0.0.0
                       or :: in a container)
  --mount PATH         where Bayeux is served (default /cometd)
  --redis URL          share sessions through Redis (redis://host:6379), so
                       several nodes serve the same clients; needs the
                       'redis' package (npm install redis)
  --static DIR         also serve the files in DIR at /
  --admin              serve the admin page at /admin/
  --admin-token TOKEN  password for the admin page (HTTP Basic, any user
                       name; default: $EXPRESS_BAYEUX_ADMIN_TOKEN). Required
                       with --admin unless --host is a loopback address;
                       without it the page answers only requests for
                       localhost, 127.0.0.1 or [::1] at the port (403 for
                       any other Host header, against DNS rebinding)
  --metrics            serve Prometheus metrics at /metrics
  --cors               answer cross-origin requests (any origin)
  --drain MS           on SIGTERM, hand the sessions off over this many ms
                       before closing (default 10000; 0: close at once);
                       keep it below the orchestrator's grace period
  --log-level LEVEL    error, warn, info or debug (default warn)
  -h, --help           show this help

Exit codes: 0 shut down by a signal, 1 could not start, 2 bad usage.

Example:
  express-bayeux serve --host 0.0.0.0 --port 8080 --metrics --static ./public
`;

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'];
/** How long a graceful shutdown waits for connections to end before cutting them. */
const SHUTDOWN_GRACE_MS = 5000;

type ExpressFactory = typeof import('express');
type RedisEngineClass = new (source: { url: string }) => Engine;

/** Import express, or explain how to get it. */
async function loadExpress(): Promise<ExpressFactory> {
  try {
    return (await import('express')).default;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new CliFailure('serve needs Express, which is not installed: run  npm install express');
    }
    throw err;
  }
}

/** What serve says when the 'redis' package cannot be imported. */
export const REDIS_MISSING = "--redis: the 'redis' package is not installed; install the redis package: npm install redis";

/** Import the Redis engine only when --redis is given (it needs the 'redis' package). */
async function loadRedisEngine(): Promise<RedisEngineClass> {
  let mod: { RedisEngine?: RedisEngineClass };
  try {
    await import('redis');   // the engine imports it only when it opens: say it now, before serving
    mod = (await import('../engines/redis/index.js'));
  } catch (err) {
    if (isRedisMissing(err)) throw new CliFailure(REDIS_MISSING);
    throw err;
  }
  if (!mod.RedisEngine) throw new CliFailure('this build of express-bayeux has no Redis engine');
  return mod.RedisEngine;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * For an admin page on a loopback address without a password: answer only
 * requests whose `Host` names this machine's loopback at `port()`
 * (`localhost`, `127.0.0.1`, `[::1]`, or the `--host` address itself), so
 * a page on another origin whose name was pointed at 127.0.0.1 (DNS
 * rebinding) cannot read the admin data. Others get a 403 saying why.
 */
function loopbackHostOnly(listenHost: string, port: () => number): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const names = new Set(['localhost', '127.0.0.1', '[::1]']);
  names.add(isIP(listenHost) === 6 ? `[${listenHost.toLowerCase()}]` : listenHost.toLowerCase());
  return function requireLoopbackHost(req, res, next) {
    const given = (req.headers.host ?? '').toLowerCase();
    const at = given.lastIndexOf(':');
    const hasPort = at > given.lastIndexOf(']');
    const name = hasPort ? given.slice(0, at) : given;
    const givenPort = hasPort ? given.slice(at + 1) : '80';
    if (names.has(name) && givenPort === String(port())) {
      next();
      return;
    }
    const body = `admin page: Host ${JSON.stringify(req.headers.host ?? '')} refused. Without --admin-token the admin page `
      + `answers only requests for localhost, 127.0.0.1 or [::1] at port ${port()} (against DNS rebinding): open it at `
      + `http://127.0.0.1:${port()}/admin/, or set --admin-token to serve it under other names.\n`;
    res.statusCode = 403;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  };
}

/** HTTP Basic with any user name and `token` as the password. */
function basicAuth(token: string): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  const expected = Buffer.from(token);
  return function requireAdminToken(req, res, next) {
    const header = req.headers.authorization ?? '';
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    const decoded = match ? Buffer.from(match[1] as string, 'base64').toString() : '';
    const given = Buffer.from(decoded.slice(decoded.indexOf(':') + 1));
    if (match && decoded.includes(':') && given.length === expected.length && timingSafeEqual(given, expected)) {
      next();
      return;
    }
    res.statusCode = 401;
    res.setHeader('WWW-Authenticate', 'Basic realm="express-bayeux admin", charset="UTF-8"');
    res.end('admin password required\n');
  };
}

/** Run `serve`; resolves with the exit code once shut down. */
export async function serve(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    port: { type: 'string' },
    host: { type: 'string' },
    mount: { type: 'string' },
    redis: { type: 'string' },
    static: { type: 'string' },
    admin: { type: 'boolean' },
    'admin-token': { type: 'string' },
    metrics: { type: 'boolean' },
    cors: { type: 'boolean' },
    'log-level': { type: 'string' },
    drain: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(SERVE_USAGE);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got ${positionals.join(' ')}`);

  const portText = values.port ?? (io.env['PORT'] || '8080');
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new UsageError(`--port must be 0 to 65535, got ${portText}`);
  const host = values.host ?? '127.0.0.1';
  const mount = (values.mount ?? '/cometd').replace(/\/+$/, '') || '/';
  if (!mount.startsWith('/')) throw new UsageError(`--mount must start with /, got ${mount}`);
  if (['/health', '/metrics', '/admin'].includes(mount)) throw new UsageError(`--mount ${mount} is taken by the server's own pages`);
  const logLevel = values['log-level'] ?? 'warn';
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${logLevel}`);
  const drainText = values.drain ?? '10000';
  const drain = Number(drainText);
  if (!/^\d+$/.test(drainText) || drain > 2 ** 31 - 1) throw new UsageError(`--drain must be a number of ms from 0 to 2147483647, got ${drainText}`);
  const adminToken = values['admin-token'] ?? (io.env['EXPRESS_BAYEUX_ADMIN_TOKEN'] || undefined);
  if (values.admin && !adminToken && !isLoopback(host)) {
    throw new UsageError(`--admin on ${host} needs a password: --admin-token TOKEN or EXPRESS_BAYEUX_ADMIN_TOKEN (the page has no other protection)`);
  }
  let staticDir: string | undefined;
  if (values.static !== undefined) {
    staticDir = resolvePath(values.static);
    let isDir = false;
    try {
      isDir = statSync(staticDir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) throw new UsageError(`--static ${values.static} is not a directory`);
  }
  if (values.redis !== undefined) {
    let protocol = '';
    try {
      protocol = new URL(values.redis).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') throw new UsageError('--redis must be a redis:// or rediss:// URL');
  }

  const express = await loadExpress();
  const options: BayeuxOptions = { logLevel: logLevel };
  if (values.cors) options.cors = true;
  if (values.redis !== undefined) {
    const RedisEngine = await loadRedisEngine();
    options.engine = new RedisEngine({ url: values.redis });
  }
  const cometd = bayeux(options);
  const app = express();
  app.disable('x-powered-by');
  const health = cometd.health();
  app.get('/health', health);
  const metrics = values.metrics ? cometd.metrics() : undefined;
  if (metrics) app.get('/metrics', metrics);
  const admin = values.admin ? cometd.admin() : undefined;
  // The port is known once listening (--port 0 picks one).
  let listeningPort = port;
  if (admin) {
    if (adminToken) app.use('/admin', basicAuth(adminToken), admin);
    else app.use('/admin', loopbackHostOnly(host, () => listeningPort), admin);
  }
  if (staticDir) app.use(express.static(staticDir));
  app.use(mount, cometd);

  const http = await new Promise<HttpServer>((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', (err) => reject(new CliFailure(`cannot listen on ${host}:${port}: ${describe(err)}`)));
  });
  cometd.attach(http, { path: mount });
  const address = http.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  listeningPort = actualPort;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const origin = `http://${shownHost}:${actualPort}`;
  io.stdout.write(`express-bayeux listening on ${origin}${mount === '/' ? '/' : mount}\n`);
  io.stdout.write(`  health  ${origin}/health\n`);
  if (metrics) io.stdout.write(`  metrics ${origin}/metrics\n`);
  if (admin) io.stdout.write(`  admin   ${origin}/admin/\n`);
  if (staticDir) io.stdout.write(`  files   ${staticDir}\n`);

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    const stop = io.onSignal((received) => {
      stop();
      resolve(received);
    });
  });
  // Open the engine now, so an unreachable Redis shows at start rather than
  // at the first request; without waiting, so a signal still stops us meanwhile.
  serverOf(cometd).open().catch((err: unknown) => {
    io.stderr.write(`serve: warning: the engine is not reachable yet (/health answers 503): ${describe(err)}\n`);
  });

  const signal = await signalled;
  const forced = io.onSignal(() => {
    io.stderr.write('serve: second signal: exiting now\n');
    io.exit(EXIT_FAILED);
  });
  try {
    const drained = signal === 'SIGTERM' && drain > 0;
    if (drained) {
      // Still listening: the balancer reads /health (503 draining) while the sessions are handed off.
      io.stderr.write(`serve: ${signal}: draining for up to ${drain} ms (/health answers 503 draining)\n`);
      await cometd.close({ drain });
    }
    io.stderr.write(`serve: ${signal}: shutting down (answering held connects, closing sockets)\n`);
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    metrics?.close();
    admin?.close();
    if (!drained) await cometd.close();
    http.closeIdleConnections();
    const cut = setTimeout(() => http.closeAllConnections(), SHUTDOWN_GRACE_MS);
    await closed;
    clearTimeout(cut);
  } finally {
    forced();
  }
  io.stderr.write('serve: stopped\n');
  return EXIT_OK;
}
