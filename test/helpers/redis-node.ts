/**
 * One cluster node, in a process of its own: Express + `bayeux()` on a
 * RedisEngine (or a MemoryEngine), long-polling and WebSocket on
 * `/cometd`, listening on 127.0.0.1. Used by the multi-process tests
 * (through helpers/node-process.ts) and runnable by hand:
 *
 *   node dist/test/helpers/redis-node.js --redis=redis://127.0.0.1:6379 --port=8080
 *
 * Flags (all `--name=value`):
 *   --redis=URL               Redis URL (required unless --engine=memory or --cluster)
 *   --cluster=URL,URL,...     Redis Cluster primaries, instead of --redis
 *   --engine=redis|memory     default redis
 *   --port=N                  default 0 (a free port)
 *   --prefix=STR              RedisEngine key prefix, default 'bayeux:'
 *   --timeout=MS              bayeux timeout (held connects), default 30000
 *   --max-interval=MS         bayeux maxInterval, default 10000
 *   --command-timeout=MS      RedisEngine commandTimeout, default 5000
 *   --reconnect-max-delay=MS  RedisEngine reconnectMaxDelay, default 2000
 *   --log-level=LEVEL         default 'error'
 *   --lifetime=MS             exit after this long whatever happens, default 300000
 *   --publish-token=TOKEN     also serve cometd.publishHandler({ token }) at POST /publish
 *   --history=PATTERN:SIZE:TTL  bayeux history for one pattern (e.g. /chat/**:1000:60000), default none
 *   --presence=PATTERN        bayeux presence for one pattern, with identify taking the user from the handshake's ext.user
 *   --channel-logs=pattern|shard  RedisEngine channelLogs; default the BAYEUX_TEST_CHANNEL_LOGS
 *                             environment variable (helpers/channel-logs.ts), else the engine's default
 *
 * Reporting: when started with an IPC channel (`fork`), it sends
 * `{ type: 'ready', port, nodeId, pid, channelLogs }`, then one `{ type: 'event', ... }`
 * per server event (handshake, connect, disconnect, subscribe, unsubscribe),
 * and answers the parent's requests (see {@link NodeRequest}). Without IPC
 * it prints `READY <port>` on stdout. It exits when the parent goes away.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { bayeux, type BayeuxOptions, MemoryEngine, type Engine } from '../../lib/index.js';
import { RedisEngine, type ChannelLogs } from '../../lib/engines/redis/index.js';
import { serverOf } from '../../lib/internal.js';
import { testChannelLogs } from './channel-logs.js';

/** parent → node */
export type NodeRequest =
  | { type: 'publish'; id: number; channel: string; data: unknown }
  | { type: 'deliver'; id: number; clientId: string; channel: string; data: unknown }
  /** Publish `{ i, pad }` for i = 1..count with at most `window` in flight; answers the ms it took (bench/publish-paths.ts). */
  | { type: 'publishMany'; id: number; channel: string; count: number; window: number; pad: string }
  | { type: 'stats'; id: number }
  | { type: 'close'; id: number; drain?: number };

/** node → parent */
export type NodeReport =
  /** `channelLogs`: the layout the node's RedisEngine was built with (undefined on a MemoryEngine). */
  | { type: 'ready'; port: number; nodeId: string; pid: number; channelLogs: ChannelLogs | undefined }
  | { type: 'event'; event: NodeEventName; clientId: string; detail?: string; at: number }
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: string };

export type NodeEventName = 'handshake' | 'connect' | 'disconnect' | 'subscribe' | 'unsubscribe' | 'join' | 'leave';

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  const arg = process.argv.find((a) => a.startsWith(prefix));
  return arg === undefined ? undefined : arg.slice(prefix.length);
}

function numberFlag(name: string, fallback: number): number {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`redis-node: --${name} must be a non-negative number`);
    process.exit(2);
  }
  return n;
}

function report(message: NodeReport): void {
  if (process.send && process.connected) process.send(message);
}

const kind = flag('engine') ?? 'redis';
const url = flag('redis');
const clusterUrls = flag('cluster');
if (kind !== 'memory' && kind !== 'redis') {
  console.error('redis-node: --engine must be redis or memory');
  process.exit(2);
}
if (kind === 'redis' && !url && !clusterUrls) {
  console.error('redis-node: --redis=URL is required');
  process.exit(2);
}

let engine: Engine;
let nodeId = `memory-${process.pid}`;
let channelLogs: ChannelLogs | undefined;
if (kind === 'redis') {
  const raw = flag('channel-logs');
  if (raw !== undefined && raw !== 'pattern' && raw !== 'shard') {
    console.error('redis-node: --channel-logs must be pattern or shard');
    process.exit(2);
  }
  const layout: { channelLogs?: ChannelLogs } = raw === undefined ? testChannelLogs() : { channelLogs: raw };
  channelLogs = layout.channelLogs ?? 'pattern';
  const redisEngine = new RedisEngine(
    clusterUrls ? { cluster: { rootNodes: clusterUrls.split(',').map((u) => ({ url: u })) } } : { url: url as string },
    {
      prefix: flag('prefix') ?? 'bayeux:',
      commandTimeout: numberFlag('command-timeout', 5000),
      reconnectMaxDelay: Math.max(1, numberFlag('reconnect-max-delay', 2000)),
      ...layout,
    },
  );
  nodeId = redisEngine.nodeId;
  engine = redisEngine;
} else {
  engine = new MemoryEngine();
}

const app = express();
const cometd = bayeux({
  engine,
  timeout: numberFlag('timeout', 30_000),
  maxInterval: numberFlag('max-interval', 10_000),
  logLevel: flag('log-level') ?? 'error',
  ...historyOption(flag('history')),
  ...presenceOption(flag('presence')),
});

function presenceOption(pattern: string | undefined): Pick<BayeuxOptions, 'presence' | 'identify'> {
  if (pattern === undefined) return {};
  return { presence: [pattern], identify: (handshake) => (handshake.ext as { user?: string } | undefined)?.user };
}
// join/leave: detail is '<channel> <user>' ('-' anonymous).
cometd.on('join', (channel, user, _info, clientId) => report({ type: 'event', event: 'join', clientId, detail: `${channel} ${user ?? '-'}`, at: Date.now() }));
cometd.on('leave', (channel, user, clientId) => report({ type: 'event', event: 'leave', clientId, detail: `${channel} ${user ?? '-'}`, at: Date.now() }));

function historyOption(raw: string | undefined): { history?: Record<string, { size: number; ttl: number }> } {
  if (raw === undefined) return {};
  const [pattern, size, ttl] = raw.split(':');
  return { history: { [pattern as string]: { size: Number(size), ttl: Number(ttl) } } };
}
for (const event of ['handshake', 'connect', 'subscribe', 'unsubscribe'] as const) {
  cometd.on(event, (clientId: string, second: unknown) => {
    // subscribe/unsubscribe: the channel; handshake/connect: the transport.
    const detail = typeof second === 'string' ? second : (second as { transport?: string } | undefined)?.transport;
    report({ type: 'event', event, clientId, detail, at: Date.now() });
  });
}
cometd.on('disconnect', (clientId, reason) => report({ type: 'event', event: 'disconnect', clientId, detail: reason, at: Date.now() }));
app.use('/cometd', cometd);
app.get('/health', cometd.health()); // what the balancer configs in deploy/ check
const publishToken = flag('publish-token');
if (publishToken) app.post('/publish', cometd.publishHandler({ token: publishToken }));
app.get('/healthz', (_req, res) => {
  cometd.stats().then(
    (stats) => res.json({ nodeId, ...stats }),
    (err: unknown) => res.status(503).json({ nodeId, error: String(err) }),
  );
});

const http = createServer(app);
cometd.attach(http, { path: '/cometd' });

async function answer(request: NodeRequest): Promise<unknown> {
  switch (request.type) {
    case 'publish':
      return cometd.publish(request.channel, request.data);
    case 'deliver':
      return cometd.deliver(request.clientId, request.channel, request.data);
    case 'publishMany': {
      const started = performance.now();
      const inFlight = new Set<Promise<number>>();
      for (let i = 1; i <= request.count; i++) {
        const sent = cometd.publish(request.channel, { i, pad: request.pad });
        inFlight.add(sent);
        const settled = () => inFlight.delete(sent);
        sent.then(settled, settled);
        if (inFlight.size >= request.window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      return performance.now() - started;
    }
    case 'stats':
      return cometd.stats();
    case 'close':
      await cometd.close(request.drain ? { drain: request.drain } : {});
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      setImmediate(() => process.exit(0));
      return true;
  }
}

process.on('message', (request: NodeRequest) => {
  answer(request).then(
    (value) => report({ type: 'reply', id: request.id, ok: true, value }),
    (err: unknown) => report({ type: 'reply', id: request.id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});

// Never outlive the parent, nor the lifetime.
process.on('disconnect', () => process.exit(0));
setTimeout(() => process.exit(0), numberFlag('lifetime', 300_000)).unref();

// Open the engine before listening, so a node that reports ready can serve.
serverOf(cometd).open().then(
  () => {
    http.listen(numberFlag('port', 0), '127.0.0.1', () => {
      const { port } = http.address() as AddressInfo;
      if (process.send) report({ type: 'ready', port, nodeId, pid: process.pid, channelLogs });
      else process.stdout.write(`READY ${port}\n`);
    });
  },
  (err: unknown) => {
    console.error(`redis-node: could not open the engine: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
