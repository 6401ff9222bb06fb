/**
 * Start and stop a throw-away `redis-server` for tests: the binary from
 * PATH, listening on a free port on 127.0.0.1 only, with no persistence
 * (`--save '' --appendonly no`) and its working directory in a temporary
 * folder that is removed when it stops.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { sleep } from './wait.js';
import { skipWithout } from './missing.js';

/** The message printed when the Redis tests cannot run. */
export const REDIS_SKIP_MESSAGE = 'redis-server not found: Redis engine tests SKIPPED';

/** The path of `redis-server` on PATH, or undefined. */
export function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Say loudly that the Redis tests are skipped (in CI: fail); returns the message for `skip`. */
export function announceRedisSkip(): string {
  return skipWithout(false, 'redis-server', 'apt-get install redis-server; .ci/run does') || REDIS_SKIP_MESSAGE;
}

export interface RedisServerOptions {
  /** Port to listen on; default a free one. */
  port?: number;
  /** Extra arguments, e.g. `['--requirepass', 'pw']`. */
  args?: readonly string[];
  /** How long to wait for the server to answer PING, in ms. Default 10000. */
  startTimeout?: number;
}

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Whether the process is running. */
  readonly running: boolean;
  /** Stop the server (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Start it again on the same port with the same arguments. */
  restart(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/** One PING over a fresh TCP connection; resolves true on `+PONG` (or an auth error: it answers). */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: string) => {
      answer += chunk;
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG') || answer.startsWith('-NOAUTH'));
    });
  });
}

/** Start `redis-server`; rejects if it is not on PATH or does not answer in time. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = findRedisServer();
  if (!binary) throw new Error(REDIS_SKIP_MESSAGE);
  const startTimeout = options.startTimeout ?? 10_000;
  const extra = options.args ?? [];
  const dir = mkdtempSync(join(tmpdir(), 'bayeux-redis-'));
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (port: number): Promise<void> => {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--loglevel', 'warning',
      ...extra,
    ];
    mkdirSync(dir, { recursive: true });
    const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    // Never leave a server behind, even when the test process dies.
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    proc.once('exit', () => process.removeListener('exit', reap));
    let output = '';
    const collect = (chunk: Buffer) => {
      if (output.length < 10_000) output += chunk.toString();
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    let gone = false;
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        gone = true;
        resolve();
      });
      proc.once('error', () => {
        gone = true;
        resolve();
      });
    });
    const deadline = Date.now() + startTimeout;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`redis-server exited on start (port ${port}): ${output.trim()}`);
      if (await ping(port, 500)) return;
      await sleep(20);
    }
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`redis-server did not answer on port ${port} within ${startTimeout} ms: ${output.trim()}`);
  };

  let port = options.port ?? 0;
  for (let attempt = 0; ; attempt++) {
    if (!options.port) port = await freePort();
    try {
      await launch(port);
      break;
    } catch (err) {
      // Another process may have taken the free port in between: try another.
      if (options.port || attempt >= 2) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const stopProcess = async (): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async stop() {
      await stopProcess();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess();
      await launch(port);
    },
  };
}
