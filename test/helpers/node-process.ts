/**
 * A cluster node in a child process (helpers/redis-node.ts), driven over
 * IPC: start it, read the server events it reports, publish and read stats
 * through it, freeze it (SIGSTOP), `kill -9` it. Every wait is bounded, and
 * {@link killAllNodes} ends every node this module started (call it in
 * `after`); a node also dies with the test process and never outlives its
 * `lifetime`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChannelLogs } from '../../lib/engines/redis/index.js';
import type { Stats } from '../../lib/index.js';
import { channelLogsMode } from './channel-logs.js';
import type { NodeEventName, NodeReport, NodeRequest } from './redis-node.js';
import { waitFor } from './wait.js';
import { within as timeout } from './within.js';

export interface NodeOptions {
  /** `redis://127.0.0.1:<port>`; required for the Redis engine. */
  redisUrl?: string;
  /** Redis Cluster: the primaries' URLs, comma-separated (instead of `redisUrl`). */
  redisCluster?: string;
  /** Default `'redis'`. */
  engine?: 'redis' | 'memory';
  /** RedisEngine key prefix: nodes of one cluster share it. */
  prefix?: string;
  /** bayeux `timeout` (ms a connect is held). Default 30000. */
  timeout?: number;
  /** bayeux `maxInterval`. Default 10000. */
  maxInterval?: number;
  /** RedisEngine `commandTimeout`. Default 5000. */
  commandTimeout?: number;
  /** RedisEngine `reconnectMaxDelay`. Default 2000. */
  reconnectMaxDelay?: number;
  /** The node's winston level. Default `'error'`. */
  logLevel?: string;
  /** Port to listen on; default a free one. */
  port?: number;
  /** How long to wait for `ready`, ms. Default 15000. */
  startTimeout?: number;
  /** The node exits by itself after this long, ms. Default 120000. */
  lifetime?: number;
  /** Serve `cometd.publishHandler({ token })` at `POST /publish` with this token. */
  publishToken?: string;
  /** bayeux `history` for one pattern: `PATTERN:SIZE:TTL`. Default none. */
  history?: string;
  /** bayeux `presence` for one pattern, users identified by the handshake's `ext.user`. Default none. */
  presence?: string;
  /** RedisEngine `channelLogs`. Default: this run's (helpers/channel-logs.ts, through the environment). */
  channelLogs?: ChannelLogs;
}

export interface NodeEvent {
  event: NodeEventName;
  clientId: string;
  /** The channel (subscribe/unsubscribe), the reason (disconnect), or the transport (handshake/connect). */
  detail?: string;
  /** Date.now() in the node. */
  at: number;
}

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

const nodeScript = fileURLToPath(new URL('./redis-node.js', import.meta.url));
const started = new Set<NodeProcess>();
/** Every child still running, for the one exit hook below. */
const children = new Set<ChildProcess>();
// Never leave a node behind, even when the test process dies.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export class NodeProcess {
  readonly name: string;
  readonly port: number;
  readonly nodeId: string;
  readonly pid: number;
  /** The layout the node's RedisEngine was built with (undefined on a MemoryEngine). */
  readonly channelLogs: ChannelLogs | undefined;
  /** Every event the node reported, in order. */
  readonly events: NodeEvent[] = [];
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(err: Error): void }>();
  #nextId = 0;
  #output = '';

  private constructor(name: string, child: ChildProcess, ready: Extract<NodeReport, { type: 'ready' }>, exited: Promise<void>, output: string) {
    this.name = name;
    this.#child = child;
    this.port = ready.port;
    this.nodeId = ready.nodeId;
    this.pid = ready.pid;
    this.channelLogs = ready.channelLogs;
    this.#exited = exited;
    this.#output = output;
    child.stdout?.on('data', (chunk: Buffer) => this.#collect(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.#collect(chunk));
    child.on('message', (message: NodeReport) => {
      if (message.type === 'event') {
        const { event, clientId, detail, at } = message;
        this.events.push(detail === undefined ? { event, clientId, at } : { event, clientId, detail, at });
      } else if (message.type === 'reply') {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (!waiter) return;
        if (message.ok) waiter.resolve(message.value);
        else waiter.reject(new Error(`${this.name}: ${message.error}`));
      }
    });
    void exited.then(() => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${this.name} exited`));
      this.#pending.clear();
    });
  }

  /** Fork a node and wait until it listens (its engine is open by then). */
  static async start(name: string, options: NodeOptions): Promise<NodeProcess> {
    const args: string[] = [`--engine=${options.engine ?? 'redis'}`];
    const add = (flag: string, value: string | number | undefined) => {
      if (value !== undefined) args.push(`--${flag}=${value}`);
    };
    add('redis', options.redisUrl);
    add('cluster', options.redisCluster);
    add('prefix', options.prefix);
    add('timeout', options.timeout);
    add('max-interval', options.maxInterval);
    add('command-timeout', options.commandTimeout);
    add('reconnect-max-delay', options.reconnectMaxDelay);
    add('log-level', options.logLevel);
    add('port', options.port);
    add('lifetime', options.lifetime ?? 120_000);
    add('publish-token', options.publishToken);
    add('history', options.history);
    add('presence', options.presence);
    add('channel-logs', options.channelLogs);
    const child = fork(nodeScript, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    children.add(child);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        children.delete(child);
        resolve();
      });
    });
    let output = '';
    const early = (chunk: Buffer) => {
      if (output.length < 20_000) output += chunk.toString();
    };
    child.stdout?.on('data', early);
    child.stderr?.on('data', early);
    const ready = new Promise<Extract<NodeReport, { type: 'ready' }>>((resolve, reject) => {
      child.on('message', (message: NodeReport) => {
        if (message.type === 'ready') resolve(message);
      });
      void exited.then(() => reject(new Error(`node ${name} exited before it was ready (code ${child.exitCode}): ${output.trim()}`)));
    });
    try {
      const info = await timeout(ready, options.startTimeout ?? 15_000, `node ${name} start`);
      child.stdout?.off('data', early);
      child.stderr?.off('data', early);
      const layout = (options.engine ?? 'redis') === 'redis' ? options.channelLogs ?? channelLogsMode() : undefined;
      if (info.channelLogs !== layout) throw new Error(`node ${name} built its engine with channelLogs ${info.channelLogs}, not ${layout}`);
      const node = new NodeProcess(name, child, info, exited, output);
      started.add(node);
      void exited.then(() => started.delete(node));
      return node;
    } catch (err) {
      child.kill('SIGKILL');
      await timeout(exited, 5000, `node ${name} exit`).catch(() => undefined);
      throw err;
    }
  }

  /** `http://127.0.0.1:<port>/cometd` */
  get url(): string {
    return `http://127.0.0.1:${this.port}/cometd`;
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** What the node wrote to stdout and stderr (the last 20 kB). */
  get output(): string {
    return this.#output;
  }

  #collect(chunk: Buffer): void {
    this.#output += chunk.toString();
    if (this.#output.length > 20_000) this.#output = this.#output.slice(-20_000);
  }

  #request(request: WithoutId<NodeRequest>, ms = 10_000): Promise<unknown> {
    if (!this.alive || !this.#child.connected) return Promise.reject(new Error(`${this.name} is not running`));
    const id = ++this.#nextId;
    const reply = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    this.#child.send({ ...request, id });
    return timeout(reply, ms, `${this.name} ${request.type}`).finally(() => this.#pending.delete(id));
  }

  /** `cometd.publish(channel, data)` on the node; resolves to the number of recipients. */
  async publish(channel: string, data: unknown, ms?: number): Promise<number> {
    return (await this.#request({ type: 'publish', channel, data }, ms)) as number;
  }

  /** `cometd.deliver(clientId, channel, data)` on the node; resolves to false for an unknown session. */
  async deliver(clientId: string, channel: string, data: unknown, ms?: number): Promise<boolean> {
    return (await this.#request({ type: 'deliver', clientId, channel, data }, ms)) as boolean;
  }

  /** `cometd.publish` of `{ i, pad }` for i = 1..count, at most `window` in flight, in the node; resolves to the ms it took there. */
  async publishMany(channel: string, count: number, window: number, pad: string, ms = 120_000): Promise<number> {
    return (await this.#request({ type: 'publishMany', channel, count, window, pad }, ms)) as number;
  }

  /** `cometd.stats()` on the node. */
  async stats(ms?: number): Promise<Stats> {
    return (await this.#request({ type: 'stats' }, ms)) as Stats;
  }

  /** Events of one kind, optionally for one session. */
  eventsOf(event: NodeEventName, clientId?: string): NodeEvent[] {
    return this.events.filter((e) => e.event === event && (clientId === undefined || e.clientId === clientId));
  }

  /** Wait (bounded) for an event the node reported. */
  async waitForEvent(predicate: (e: NodeEvent) => boolean, ms: number, what: string): Promise<NodeEvent> {
    const found = (): NodeEvent | undefined => this.events.find(predicate);
    await waitFor(() => found() !== undefined, { timeout: ms, what: `${what} from ${this.name}` });
    return found() as NodeEvent;
  }

  /** SIGSTOP: the process freezes; its sockets stay open. */
  freeze(): void {
    this.#child.kill('SIGSTOP');
  }

  /** `cometd.close({ drain: ms })` on the node (a rolling deploy), then wait until the process is gone. */
  async drain(ms: number): Promise<void> {
    await this.#request({ type: 'close', drain: ms }, ms + 10_000);
    await timeout(this.#exited, 5000, `${this.name} exit after its drain`);
  }

  /** `kill -9`, and wait until the process is gone. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.#child.kill('SIGKILL');
    await timeout(this.#exited, 5000, `${this.name} exit after SIGKILL`);
  }

  /** Close the server gracefully (bounded), then make sure the process is gone. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    await this.#request({ type: 'close' }, 3000).catch(() => undefined);
    await timeout(this.#exited, 3000, `${this.name} exit`).catch(() => undefined);
    if (this.alive) await this.kill();
  }
}

/** `kill -9` every node this module started that is still running (ready or not). */
export async function killAllNodes(): Promise<void> {
  await Promise.all([...started].map((node) => node.kill().catch(() => undefined)));
  for (const child of children) child.kill('SIGKILL');
}
