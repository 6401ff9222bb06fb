/**
 * What the admin page shows, gathered with bounded memory: a ring of
 * per-second samples of `stats()`, the busiest channels (a bounded table
 * fed by the server's `publish` events), and the latest disconnects.
 */
import { hostname } from 'node:os';
import type { OpsSource } from './source.js';
import type { Stats } from '../server/types.js';
import { withTimeout } from './http.js';
import { isService, isWildcard } from '../protocol/channel.js';

/** Limits of the admin page's data. */
export interface AdminDataOptions {
  /** Seconds of history in the chart (one sample per second). Default 300. */
  history?: number;
  /** Busiest channels shown. Default 10. */
  topChannels?: number;
  /**
   * Most channels tracked at once (by publishes); when full, the least
   * busy are forgotten once a second. Bounds memory however many distinct
   * channels are used. Default 500.
   */
  trackedChannels?: number;
  /** Recent disconnects kept. Default 50. */
  recentDisconnects?: number;
  /** How long the engine may take to answer one sample, in ms. Default 2000. */
  timeout?: number;
}

/** One second of the chart. */
export interface AdminSample {
  /** Epoch ms. */
  t: number;
  /** Messages received per second on this node. */
  in: number;
  /** Messages sent per second on this node. */
  out: number;
}

/** One of the busiest channels. */
export interface AdminChannel {
  channel: string;
  /** Publishes per second (smoothed over the last several seconds). */
  rate: number;
  /** Publishes seen since the channel was first tracked. */
  publishes: number;
  /**
   * Sessions that receive a publish to this channel: those subscribed to
   * it or to a wildcard pattern that matches it (`/stocks/a` counts the
   * subscribers of `/stocks/a`, `/stocks/*`, `/stocks/**` and `/**`, each
   * session once). For a wildcard row (`/stocks/**`, tracked when someone
   * subscribes to it), the sessions subscribed to that pattern. Null when
   * the engine cannot say.
   */
  subscribers: number | null;
}

/** One recent disconnect. */
export interface AdminDisconnect {
  /** Epoch ms. */
  at: number;
  /** The first 8 characters of the session id (the whole id is a bearer secret). */
  client: string;
  reason: 'client' | 'timeout' | 'server' | 'drain';
}

/** A node: this one, or on a shared engine that lists them (Redis), each node of the cluster. */
export interface AdminNode {
  hostname: string;
  pid: number;
  /** Seconds since the process started. */
  uptime: number;
  /** The engine's class name. */
  engine: string;
  /** Resident memory in bytes. */
  rss: number;
  /** Sessions whose connections the node holds, when the engine reports it. */
  sessions?: number;
  /** This node (the one serving the page). */
  self?: boolean;
}

/** The JSON the admin page polls. */
export interface AdminSnapshot {
  /** Epoch ms. */
  now: number;
  /** The latest `stats()`, or undefined before the engine first answered. */
  stats: Stats | undefined;
  /** Whether the latest sample reached the engine. */
  engineUp: boolean;
  series: AdminSample[];
  channels: AdminChannel[];
  /** Newest first. */
  disconnects: AdminDisconnect[];
  nodes: AdminNode[];
}

interface Tracked {
  count: number;
  prev: number;
  rate: number;
}

/**
 * Publishes per channel for the busiest channels. `hit` is O(1) and
 * allocates only for a channel it has not seen; at twice `capacity` new
 * channels are ignored until the next `tick` forgets the least busy.
 */
export class ChannelTable {
  readonly #map = new Map<string, Tracked>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#map.size;
  }

  hit(channel: string): void {
    const entry = this.#map.get(channel);
    if (entry) entry.count++;
    else if (this.#map.size < this.#capacity * 2) this.#map.set(channel, { count: 1, prev: 0, rate: 0 });
  }

  /** Track a channel without a publish (it was subscribed to). */
  touch(channel: string): void {
    if (!this.#map.has(channel) && this.#map.size < this.#capacity * 2) this.#map.set(channel, { count: 0, prev: 0, rate: 0 });
  }

  forget(channel: string): void {
    this.#map.delete(channel);
  }

  /** Once a second: update the rates and keep at most `capacity` channels. */
  tick(): void {
    for (const entry of this.#map.values()) {
      entry.rate += 0.3 * (entry.count - entry.prev - entry.rate);
      if (entry.rate < 0.001) entry.rate = 0;
      entry.prev = entry.count;
    }
    if (this.#map.size <= this.#capacity) return;
    const ranked = [...this.#map].sort(byBusiest);
    for (let i = this.#capacity; i < ranked.length; i++) this.#map.delete((ranked[i] as [string, Tracked])[0]);
  }

  top(n: number): Array<{ channel: string; rate: number; publishes: number }> {
    return [...this.#map].sort(byBusiest).slice(0, n)
      .map(([channel, entry]) => ({ channel, rate: Math.round(entry.rate * 100) / 100, publishes: entry.count }));
  }
}

function byBusiest(a: [string, Tracked], b: [string, Tracked]): number {
  return b[1].rate - a[1].rate || b[1].count - a[1].count || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
}

/**
 * The subscription patterns whose subscribers receive a publish to
 * `channel`: `/a/b` → `/a/b`, `/a/*`, `/a/**`, `/**` (the Bayeux wildcard
 * rules, as the server's own expansion for engines applies them). A
 * wildcard row counts its own subscribers only, and `/service/*` is never
 * broadcast, so wildcards do not reach it.
 */
export function receivingPatterns(channel: string): string[] {
  if (isWildcard(channel) || isService(channel)) return [channel];
  const segments = channel.slice(1).split('/');
  const patterns = [channel, `/${segments.slice(0, -1).map((s) => s + '/').join('')}*`];
  for (let n = segments.length - 1; n >= 0; n--) patterns.push(`/${segments.slice(0, n).map((s) => s + '/').join('')}**`);
  return patterns;
}

/** How long a channel's subscriber count is reused. */
const SUBSCRIBERS_TTL_MS = 3000;

/** How long the sampler keeps running after the page last asked for data. */
const IDLE_MS = 5 * 60_000;

/**
 * Gathers the admin page's data. Sampling (one `stats()` a second) runs
 * only while the page is being watched, and stops five minutes after the
 * last request.
 */
export class AdminData {
  readonly #server: OpsSource;
  readonly #history: number;
  readonly #top: number;
  readonly #keepDisconnects: number;
  readonly #timeout: number;
  readonly #channels: ChannelTable;
  readonly #series: AdminSample[] = [];
  readonly #disconnects: AdminDisconnect[] = [];
  #stats: Stats | undefined;
  #engineUp = false;
  #timer: NodeJS.Timeout | undefined;
  #lastRequest = 0;
  #sampling: Promise<void> | undefined;
  readonly #stop: Array<() => void> = [];
  /** Subscriber counts of the channels on show (at most `topChannels`). */
  readonly #counts = new Map<string, { at: number; count: number | null }>();

  constructor(server: OpsSource, options: Required<AdminDataOptions>) {
    this.#server = server;
    this.#history = options.history;
    this.#top = options.topChannels;
    this.#keepDisconnects = options.recentDisconnects;
    this.#timeout = options.timeout;
    const channels = (this.#channels = new ChannelTable(options.trackedChannels));
    // The 'publish' event fires once per publish on this node, after the
    // engine took it; hit() is O(1), so it is as cheap as an observer.
    const onPublish = (_clientId: string | undefined, channel: string): void => channels.hit(channel);
    const onSubscribe = (_clientId: string, channel: string): void => channels.touch(channel);
    const onDisconnect = (clientId: string, reason: AdminDisconnect['reason']): void => {
      this.#disconnects.push({ at: Date.now(), client: clientId.slice(0, 8), reason });
      if (this.#disconnects.length > this.#keepDisconnects) this.#disconnects.shift();
    };
    server.on('publish', onPublish);
    server.on('subscribe', onSubscribe);
    server.on('disconnect', onDisconnect);
    this.#stop.push(() => server.off('publish', onPublish), () => server.off('subscribe', onSubscribe), () => server.off('disconnect', onDisconnect));
  }

  /** The page's data; starts sampling if it was idle. */
  async snapshot(): Promise<AdminSnapshot> {
    this.#lastRequest = Date.now();
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#sample(), 1000);
      this.#timer.unref();
      await this.#sample();
    } else if (!this.#stats) {
      await this.#sampling;
    }
    const top = this.#channels.top(this.#top);
    const engine = this.#server.options.engine;
    const channels = await Promise.all(top.map(async (entry): Promise<AdminChannel> => ({
      ...entry,
      subscribers: await this.#subscriberCount(entry.channel),
    })));
    for (const channel of this.#counts.keys()) {
      if (!top.some((entry) => entry.channel === channel)) this.#counts.delete(channel);
    }
    const mem = process.memoryUsage();
    return {
      now: Date.now(),
      stats: this.#stats,
      engineUp: this.#engineUp,
      series: this.#series.slice(),
      channels,
      disconnects: this.#disconnects.slice().reverse(),
      nodes: (await this.#clusterNodes()) ?? [{
        hostname: hostname(),
        pid: process.pid,
        uptime: Math.round(process.uptime()),
        engine: engine.constructor.name,
        rss: mem.rss,
        self: true,
      }],
    };
  }

  /** Every node of the cluster, from an engine that lists them; undefined otherwise (or when it cannot say now). */
  async #clusterNodes(): Promise<AdminNode[] | undefined> {
    const engine = this.#server.options.engine;
    if (!engine.nodes) return undefined;
    try {
      const nodes = await engine.nodes();
      if (nodes.length === 0) return undefined;
      const name = engine.constructor.name;
      return nodes.map((node) => ({
        hostname: node.hostname, pid: node.pid, uptime: node.uptime, engine: name, rss: node.rss, sessions: node.sessions,
        self: node.pid === process.pid && node.hostname === hostname(),
      }));
    } catch {
      return undefined;
    }
  }

  /** Stop sampling and observing. */
  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const stop of this.#stop.splice(0)) stop();
  }

  /**
   * The sessions that receive `channel` (see {@link AdminChannel.subscribers}),
   * asked of the engine at most every few seconds per channel (listing them
   * costs the engine a walk over them, and several pages may be open); null
   * when the engine cannot say.
   */
  async #subscriberCount(channel: string): Promise<number | null> {
    const cached = this.#counts.get(channel);
    const now = Date.now();
    if (cached && now - cached.at < SUBSCRIBERS_TTL_MS) return cached.count;
    let count: number | null = null;
    try {
      const patterns = receivingPatterns(channel);
      const engine = this.#server.options.engine;
      const lists = await withTimeout(Promise.all(patterns.map((pattern) => engine.subscribers(pattern))), this.#timeout, 'the engine');
      if (lists.length === 1) count = (lists[0] as string[]).length;
      else {
        const ids = new Set<string>();
        for (const list of lists) for (const id of list) ids.add(id);
        count = ids.size;
      }
    } catch {
      // An engine that cannot list subscribers (or is down): shown as unknown.
    }
    this.#counts.set(channel, { at: now, count });
    return count;
  }

  #sample(): Promise<void> {
    if (Date.now() - this.#lastRequest > IDLE_MS) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#series.length = 0;
      return Promise.resolve();
    }
    this.#sampling ??= this.#takeSample().finally(() => (this.#sampling = undefined));
    return this.#sampling;
  }

  async #takeSample(): Promise<void> {
    this.#channels.tick();
    let stats: Stats;
    try {
      stats = await withTimeout(this.#server.stats(), this.#timeout, 'the engine');
      this.#engineUp = true;
    } catch {
      this.#engineUp = false;
      return;
    }
    const before = this.#stats;
    this.#stats = stats;
    const prev = this.#series[this.#series.length - 1];
    const now = Date.now();
    if (before && prev) {
      const seconds = Math.max(0.001, (now - prev.t) / 1000);
      this.#series.push({
        t: now,
        in: Math.max(0, Math.round((stats.messagesIn - before.messagesIn) / seconds)),
        out: Math.max(0, Math.round((stats.messagesOut - before.messagesOut) / seconds)),
      });
    } else {
      this.#series.push({ t: now, in: 0, out: 0 });
    }
    if (this.#series.length > this.#history) this.#series.shift();
  }
}
