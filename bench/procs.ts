/**
 * The parent's handles on its child processes: the server under test and
 * the load clients. Every wait is bounded; every child is ended by the
 * handle that started it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ClientSetup, FromClient, FromServer, ServerKind, ToClient, ToServer } from './common.js';
import { within as timeout } from '../test/helpers/within.js';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class ServerProcess {
  readonly kind: ServerKind;
  readonly port: number;
  readonly path: string;
  readonly #child: ChildProcess;
  #nextId = 0;
  readonly #waiters = new Map<number, (m: FromServer) => void>();

  private constructor(kind: ServerKind, child: ChildProcess, port: number, path: string) {
    this.kind = kind;
    this.#child = child;
    this.port = port;
    this.path = path;
    child.on('message', (m: FromServer) => {
      if (m.type === 'ready') return;
      const waiter = this.#waiters.get(m.id);
      this.#waiters.delete(m.id);
      waiter?.(m);
    });
  }

  /**
   * `profileDir`: run with --cpu-prof, the profile written there on exit, named `<kind>-<tag>-<time>`.
   * `args`: more arguments for server.js (bayeux-redis, sio-redis: the Redis URL).
   */
  static async start(kind: ServerKind, profileDir?: string, tag = '', args: readonly string[] = []): Promise<ServerProcess> {
    const execArgv = ['--expose-gc'];
    const name = `${kind}${tag ? '-' + tag : ''}-${Date.now()}.cpuprofile`;
    if (profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}`);
    const child = fork(here('./server.js'), [kind, ...args], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = new Promise<{ port: number; path: string }>((resolve, reject) => {
      child.on('message', (m: FromServer) => {
        if (m.type === 'ready') resolve(m);
      });
      child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
    });
    try {
      const { port, path } = await timeout(ready, 15_000, `${kind} server start`);
      return new ServerProcess(kind, child, port, path);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  }

  #ask(type: 'cpu' | 'heap' | 'snapshot' | 'start' | 'stop', file = ''): Promise<FromServer> {
    const id = ++this.#nextId;
    const reply = new Promise<FromServer>((resolve) => this.#waiters.set(id, resolve));
    const message: ToServer =
      type === 'snapshot' ? { type, id, file } : type === 'start' || type === 'stop' ? { type: 'profile', id, action: type, file } : { type, id };
    this.#child.send(message);
    return timeout(reply, type === 'snapshot' ? 300_000 : 30_000, `server ${type}`);
  }

  /** Start the server's CPU profiler (a window of its own, unlike --cpu-prof's whole life). */
  async profileStart(): Promise<void> {
    await this.#ask('start');
  }

  /** Stop the CPU profiler and write the profile to `file`. */
  async profileStop(file: string): Promise<void> {
    await this.#ask('stop', file);
  }

  /** Write a heap snapshot of the server to `file` (slow: seconds per 100 MB of heap). */
  async snapshot(file: string): Promise<void> {
    await this.#ask('snapshot', file);
  }

  /**
   * User + system CPU time of the server process so far (µs), when it was
   * read, and when the server last ended an HTTP response (µs, nowUs()).
   */
  async cpu(): Promise<{ cpu: number; at: number; lastEnd: number }> {
    const m = await this.#ask('cpu');
    return m.type === 'cpu' ? { cpu: m.user + m.system, at: m.at, lastEnd: m.lastEnd ?? NaN } : { cpu: NaN, at: NaN, lastEnd: NaN };
  }

  /** Heap in use after a full GC, in bytes. */
  async heap(): Promise<{ heapUsed: number; rss: number }> {
    const m = await this.#ask('heap');
    return m.type === 'heap' ? { heapUsed: m.heapUsed, rss: m.rss } : { heapUsed: NaN, rss: NaN };
  }

  async stop(): Promise<void> {
    if (this.#child.connected) this.#child.send({ type: 'exit' } satisfies ToServer);
    await exited(this.#child, 15_000);
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

export type ClientReport = Extract<FromClient, { type: 'report' }>;
type ClientStatus = Extract<FromClient, { type: 'status' }>;

/** Load-client processes, the subscribers spread evenly over them. */
export class LoadClients {
  readonly #children: ChildProcess[];
  readonly subscribers: number;
  readonly failed: number;
  #reports: Array<(r: ClientReport) => void> = [];
  #statuses: Array<(r: ClientStatus) => void> = [];

  private constructor(children: ChildProcess[], subscribers: number, failed: number) {
    this.#children = children;
    this.subscribers = subscribers;
    this.failed = failed;
    for (const child of children) {
      child.on('message', (m: FromClient) => {
        if (m.type === 'report') this.#reports.shift()?.(m);
        else if (m.type === 'status') this.#statuses.shift()?.(m);
      });
    }
  }

  get count(): number {
    return this.#children.length;
  }

  static async start(
    processes: number,
    setup: Omit<ClientSetup, 'type' | 'subscribers'> & { subscribers: number },
    onDone: (seq: number, at: number) => void,
  ): Promise<LoadClients> {
    const n = Math.max(1, Math.min(processes, setup.subscribers));
    const children: ChildProcess[] = [];
    const readies: Array<Promise<{ subscribers: number; failed: number }>> = [];
    let first = 0;
    for (let i = 0; i < n; i++) {
      const share = Math.floor(setup.subscribers / n) + (i < setup.subscribers % n ? 1 : 0);
      const child = fork(here('./client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      child.on('message', (m: FromClient) => {
        if (m.type === 'done') onDone(m.seq, m.at);
      });
      readies.push(
        new Promise((resolve, reject) => {
          child.on('message', (m: FromClient) => {
            if (m.type === 'ready') resolve(m);
          });
          child.once('exit', (code) => reject(new Error(`load client exited with ${code}`)));
        }),
      );
      child.send({ ...setup, type: 'setup', subscribers: share, first } satisfies ToClient);
      first += share;
    }
    try {
      const results = await timeout(Promise.all(readies), setup.setupTimeoutMs + 10_000, 'load client setup');
      const subscribers = results.reduce((a, r) => a + r.subscribers, 0);
      const failed = results.reduce((a, r) => a + r.failed, 0);
      return new LoadClients(children, subscribers, failed);
    } catch (err) {
      for (const child of children) child.kill('SIGKILL');
      throw err;
    }
  }

  start(fromSeq: number): void {
    for (const child of this.#children) child.send({ type: 'start', fromSeq } satisfies ToClient);
  }

  stop(toSeq: number): void {
    for (const child of this.#children) child.send({ type: 'stop', toSeq } satisfies ToClient);
  }

  /** Every process's report on the last window. */
  report(): Promise<ClientReport[]> {
    const reports = this.#children.map(() => new Promise<ClientReport>((resolve) => this.#reports.push(resolve)));
    for (const child of this.#children) child.send({ type: 'report' } satisfies ToClient);
    return timeout(Promise.all(reports), 15_000, 'load client reports');
  }

  /** Sessions, and how many have a `/meta/connect` in flight, summed over the processes. */
  async status(): Promise<{ sessions: number; connecting: number; errors: number }> {
    const replies = this.#children.map(() => new Promise<ClientStatus>((resolve) => this.#statuses.push(resolve)));
    for (const child of this.#children) child.send({ type: 'status' } satisfies ToClient);
    const all = await timeout(Promise.all(replies), 15_000, 'load client status');
    return {
      sessions: all.reduce((a, s) => a + s.sessions, 0),
      connecting: all.reduce((a, s) => a + s.connecting, 0),
      errors: all.reduce((a, s) => a + s.errors, 0),
    };
  }

  async exit(): Promise<void> {
    for (const child of this.#children) if (child.connected) child.send({ type: 'exit' } satisfies ToClient);
    await Promise.all(this.#children.map((c) => exited(c, 5000)));
  }
}
