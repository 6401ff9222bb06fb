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

export const SERVE_USAGE = `Usage: express-bayeux serve [options]

Run a Bayeux server: Express with the middleware at --mount, WebSocket on
the same port, and a health check at /health (200 when the engine answers,
503 otherwise). SIGTERM or SIGINT shut it down gracefully: held connects
are answered, sockets closed, then the process exits (a second signal
exits at once).

Options:
  --port N             port to listen on (default: $PORT, else 8080; 0 picks one)
  --host HOST          address to listen on (default 127.0.0.1; use 0.0.0.0
                       or :: in a container)
  --mount PATH         where Bayeux is served (default /cometd)
  --redis URL          share sessions through Redis (redis://host:6379), so
                       several nodes serve the same clients; needs the
                       'redis' package
  --static DIR         also serve the files in DIR at /
  --admin              serve the admin page at /admin/
  --admin-token TOKEN  password for the admin page (HTTP Basic, any user
                       name; default: $EXPRESS_BAYEUX_ADMIN_TOKEN). Required
                       with --admin unless --host is a loopback address
  --metrics            serve Prometheus metrics at /metrics
  --cors               answer cross-origin requests (any origin)
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
    return (await import('express')).default as ExpressFactory;
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new CliFailure('serve needs Express, which is not installed: run  npm install express');
    }
    throw err;
  }
}

/** Import the Redis engine only when --redis is given (it needs the 'redis' package). */
async function loadRedisEngine(): Promise<RedisEngineClass> {
  const candidates = ['../engines/redis/index.js', '../engines/redis.js'];
  for (const path of candidates) {
    try {
      const mod = (await import(path)) as { RedisEngine?: RedisEngineClass };
      if (mod.RedisEngine) return mod.RedisEngine;
    } catch (err) {
      const code = (err as { code?: string }).code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' && describe(err).includes("'redis'");
      if (missing) throw new CliFailure("--redis needs the 'redis' package, which is not installed: run  npm install redis");
      if (code !== 'ERR_MODULE_NOT_FOUND') throw err;
    }
  }
  throw new CliFailure('this build of express-bayeux has no Redis engine');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
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
  const options: BayeuxOptions = { logLevel: logLevel as BayeuxOptions['logLevel'] };
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
  if (admin) {
    if (adminToken) app.use('/admin', basicAuth(adminToken), admin);
    else app.use('/admin', admin);
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
  io.stderr.write(`serve: ${signal}: shutting down (answering held connects, closing sockets)\n`);
  const forced = io.onSignal(() => {
    io.stderr.write('serve: second signal: exiting now\n');
    io.exit(EXIT_FAILED);
  });
  try {
    const closed = new Promise<void>((resolve) => http.close(() => resolve()));
    metrics?.close();
    admin?.close();
    await cometd.close();
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
