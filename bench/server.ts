/**
 * The server under test, in a process of its own: express-bayeux or Faye
 * 1.4's NodeAdapter, on 127.0.0.1 and a free port, long-polling and
 * WebSocket on the same mount path; or, for comparison, the bare `ws`
 * floor (bench/ws-floor.ts), express-bayeux on a RedisEngine, or Socket.IO
 * 4.8 with or without its Redis adapter (bench/sio.ts). Answers the
 * parent's requests for its CPU time and its heap after a full GC (run it
 * with `--expose-gc`).
 *
 *   node --expose-gc dist/bench/server.js bayeux|faye|bayeux-http|ws
 *   node --expose-gc dist/bench/server.js bayeux-redis|bayeux-redis-shard|sio-redis redis://127.0.0.1:PORT
 *   node --expose-gc dist/bench/server.js sio
 *
 * Flags after the kind (express-bayeux only; the presence bench):
 *   --presence=P1,P2   the `presence` option, and `identify` taking the
 *                      user from the handshake's `ext.user` (anonymous without)
 *   --identify         just that `identify`, no presence
 *   --presence-limit=N the `presenceLimit` option (with --presence)
 */
import { createServer, OutgoingMessage, type Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { writeHeapSnapshot } from 'node:v8';
import express from 'express';
import { bayeux } from '../lib/index.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { serverOf } from '../lib/internal.js';
import { nowUs, usesRedis, type FromServer, type ServerKind, type ToServer } from './common.js';
import { attachSocketIo, SIO_PATH } from './sio.js';
import { attachWsFloor } from './ws-floor.js';

interface FayeAdapter {
  attach(server: HttpServer): void;
}
interface FayeModule {
  NodeAdapter: new (options: { mount: string; timeout: number }) => FayeAdapter;
}

const kind = process.argv[2] as ServerKind;
const redisUrl = process.argv.slice(3).find((a) => !a.startsWith('--'));
const flag = (name: string): string | undefined => {
  const a = process.argv.slice(3).find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  return a === undefined ? undefined : a.includes('=') ? a.slice(a.indexOf('=') + 1) : '';
};
const presence = flag('presence')?.split(',').filter(Boolean);
/** Who a session is: the handshake's `ext.user`, as a token check would give it. */
const identify = (handshake: { ext?: unknown }): string | undefined => {
  const user = (handshake.ext as { user?: unknown } | undefined)?.user;
  return typeof user === 'string' ? user : undefined;
};
const presenceLimit = flag('presence-limit') ? { presenceLimit: Number(flag('presence-limit')) } : {};
const userOptions = presence?.length ? { presence, identify, ...presenceLimit } : flag('identify') !== undefined ? { identify } : {};
const KINDS: readonly ServerKind[] = ['bayeux', 'faye', 'bayeux-http', 'ws', 'bayeux-redis', 'bayeux-redis-shard', 'sio', 'sio-redis'];
if (!KINDS.includes(kind) || (usesRedis(kind) && !redisUrl)) {
  console.error(`usage: server.js ${KINDS.join('|')} [redis-url]`);
  process.exit(2);
}
if (!process.send) {
  console.error('server.js is started by bench/run.js over IPC');
  process.exit(2);
}

function send(message: FromServer): void {
  process.send?.(message);
}

async function start(): Promise<{ http: HttpServer; path: string }> {
  if (kind === 'bayeux' || kind === 'bayeux-redis' || kind === 'bayeux-redis-shard') {
    const app = express();
    const engine = kind === 'bayeux' ? undefined : new RedisEngine({ url: redisUrl as string }, kind === 'bayeux-redis-shard' ? { channelLogs: 'shard' } : {});
    // Setting up thousands of load clients at once is not a herd to admit slowly.
    const cometd = bayeux({ timeout: 30_000, logLevel: 'error', maxHandshakeRate: 0, ...userOptions, ...(engine ? { engine } : {}) });
    // The Redis engine connects before the server takes requests.
    if (engine) await serverOf(cometd).open();
    if (process.env['BENCH_OPS'] === '1') {
      // What an operator turns on: metrics scraped every second and the admin page's observers.
      const metrics = cometd.metrics();
      app.get('/metrics', metrics);
      app.use('/admin', cometd.admin());
      setInterval(() => void metrics.registry.metrics(), 1000).unref();
    }
    app.use('/cometd', cometd);
    const http = createServer(app);
    cometd.attach(http, { path: '/cometd' });
    return { http, path: '/cometd' };
  }
  if (kind === 'bayeux-http') {
    // The middleware as a bare http handler (it serves any path when not mounted).
    const cometd = bayeux({ timeout: 30_000, logLevel: 'error', maxHandshakeRate: 0 });
    const http = createServer((req, res) => void cometd(req, res, () => {
      res.statusCode = 404;
      res.end();
    }));
    cometd.attach(http, { path: '/cometd' });
    return { http, path: '/cometd' };
  }
  if (kind === 'ws') {
    const http = createServer();
    attachWsFloor(http, '/cometd');
    return { http, path: '/cometd' };
  }
  if (kind === 'sio' || kind === 'sio-redis') {
    const http = createServer();
    await attachSocketIo(http, kind === 'sio-redis' ? redisUrl : undefined);
    return { http, path: SIO_PATH };
  }
  const require = createRequire(import.meta.url);
  const faye = require('faye') as FayeModule;
  const adapter = new faye.NodeAdapter({ mount: '/faye', timeout: 30 });
  const http = createServer();
  adapter.attach(http);
  return { http, path: '/faye' };
}

const { http, path } = await start();
http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  send({ type: 'ready', port, path });
});

/** The CPU profiler, for one measured window at a time. */
const inspector = new Session();
function post<T>(method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    inspector.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T))),
  );
}

async function profile(action: 'start' | 'stop', file: string): Promise<void> {
  if (action === 'start') {
    inspector.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 250 });
    await post('Profiler.start');
    return;
  }
  const { profile } = await post<{ profile: object }>('Profiler.stop');
  writeFileSync(file, JSON.stringify(profile));
  inspector.disconnect();
}

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * When the server last ended an HTTP response: both servers answer a held
 * connect with `res.end`, so the held scenario can tell when the server had
 * written its last answer, apart from when the load clients had read it.
 */
let lastEnd = 0;
const end = OutgoingMessage.prototype.end;
OutgoingMessage.prototype.end = function timedEnd(this: OutgoingMessage, ...args: unknown[]) {
  const result = (end as (...a: unknown[]) => OutgoingMessage).apply(this, args);
  lastEnd = nowUs();
  return result;
} as OutgoingMessage['end'];

process.on('message', (message: ToServer) => {
  switch (message.type) {
    case 'cpu': {
      const { user, system } = process.cpuUsage();
      send({ type: 'cpu', id: message.id, user, system, at: nowUs(), lastEnd });
      return;
    }
    case 'heap': {
      // Twice: the first pass can leave finalizer-held garbage for the second.
      gc?.();
      gc?.();
      const m = process.memoryUsage();
      send({ type: 'heap', id: message.id, heapUsed: gc ? m.heapUsed : NaN, rss: m.rss, external: m.external });
      return;
    }
    case 'snapshot': {
      gc?.();
      gc?.();
      const file = writeHeapSnapshot(message.file);
      send({ type: 'snapshot', id: message.id, file });
      return;
    }
    case 'profile':
      profile(message.action, message.file).then(
        () => send({ type: 'profile', id: message.id }),
        (err: Error) => {
          console.error(`profiler: ${err.message}`);
          send({ type: 'profile', id: message.id });
        },
      );
      return;
    case 'exit':
      // process.exit lets --cpu-prof write its profile.
      process.exit(0);
  }
});

// Never outlive the parent; never run longer than 20 minutes.
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(0), 20 * 60_000).unref();
