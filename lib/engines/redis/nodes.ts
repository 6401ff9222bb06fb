/**
 * The nodes of a cluster, for the admin page: each node reports itself
 * (host, pid, uptime, memory, sessions held) every few seconds in one
 * hash; `list()` gives those that reported lately and removes the others.
 */
import { hostname } from 'node:os';
import type { EngineNode } from '../engine.js';
import { texts } from './replies.js';
import type { Keys } from './keys.js';
import type { ChannelLogs } from './options.js';
import type { Runner } from './runner.js';

/** How often a node reports itself, and how old a report may be. */
const NODE_REPORT_MS = 2000;
const NODE_STALE_MS = 3 * NODE_REPORT_MS;

/** A node's report as stored: what the admin page shows, and the node's channel-log layout (absent: a version before it, `'pattern'`). */
interface StoredReport extends EngineNode {
  channelLogs?: ChannelLogs;
}

/**
 * A live node on the same prefix whose channel logs are laid out otherwise
 * than `mine` (`channelLogs`; a report without it is from a version that
 * only has `'pattern'`), or undefined. Publishes of the two would not reach
 * each other's sessions: a node or publisher refuses to start beside it.
 */
export async function otherLayout(runner: Runner, keys: Keys, mine: ChannelLogs, self = ''): Promise<StoredReport | undefined> {
  const key = keys.nodes();
  const flat = texts(await runner.command(key, ['HGETALL', key], true));
  const now = Date.now();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === self) continue;
    let node: StoredReport;
    try {
      node = JSON.parse(flat[i + 1] as string) as StoredReport;
    } catch {
      continue;
    }
    if (now - node.seen <= NODE_STALE_MS && (node.channelLogs ?? 'pattern') !== mine) return node;
  }
  return undefined;
}

/** The error a node or publisher refuses to start with beside a node of another layout. */
export function layoutError(what: string, mine: ChannelLogs, other: StoredReport): Error {
  return new Error(
    `${what}: node ${other.id} (${other.hostname}, pid ${other.pid}) on this prefix logs channels by '${other.channelLogs ?? 'pattern'}' ` +
    `(option channelLogs), this one by '${mine}': publishes would not reach each other's sessions. ` +
    'Give every node and RedisPublisher of a deployment the same channelLogs, or another prefix.',
  );
}

export class NodeReports {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #nodeId: string;
  readonly #sessions: { readonly size: number };
  readonly #channelLogs: ChannelLogs;
  #timer: NodeJS.Timeout | undefined;

  /** `sessions`: how many sessions this node holds; `channelLogs`: its layout, in its report. */
  constructor(runner: Runner, keys: Keys, nodeId: string, sessions: { readonly size: number }, channelLogs: ChannelLogs = 'pattern') {
    this.#runner = runner;
    this.#keys = keys;
    this.#nodeId = nodeId;
    this.#sessions = sessions;
    this.#channelLogs = channelLogs;
  }

  /**
   * Report this node, then check that no live node on the prefix lays
   * channel logs out otherwise (reporting first: of two nodes starting
   * together, each sees the other). Rejects, its report removed, if one does.
   */
  async check(): Promise<void> {
    await this.#write();
    const other = await otherLayout(this.#runner, this.#keys, this.#channelLogs, this.#nodeId);
    if (!other) return;
    const key = this.#keys.nodes();
    await this.#runner.command(key, ['HDEL', key, this.#nodeId]).catch(() => undefined);
    throw layoutError('RedisEngine', this.#channelLogs, other);
  }

  /** Report now and every NODE_REPORT_MS. */
  start(): void {
    this.#timer = setInterval(() => void this.#report(), NODE_REPORT_MS);
    this.#timer.unref();
    void this.#report();
  }

  /** Stop reporting and remove this node's report. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (!this.#runner.ready) return;
    const key = this.#keys.nodes();
    await this.#runner.command(key, ['HDEL', key, this.#nodeId]).catch(() => undefined);
  }

  /** The nodes that reported in the last NODE_STALE_MS. */
  async list(): Promise<EngineNode[]> {
    const key = this.#keys.nodes();
    const flat = texts(await this.#runner.command(key, ['HGETALL', key], true));
    const now = Date.now();
    const nodes: EngineNode[] = [];
    const stale: string[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const id = flat[i] as string;
      try {
        // The layout is for otherLayout, not the admin page.
        const { channelLogs: _layout, ...node } = JSON.parse(flat[i + 1] as string) as StoredReport;
        if (now - node.seen > NODE_STALE_MS) stale.push(id);
        else nodes.push(node);
      } catch {
        stale.push(id);
      }
    }
    if (stale.length > 0) await this.#runner.command(key, ['HDEL', key, ...stale]).catch(() => undefined);
    return nodes.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Tell the cluster this node is alive, and what it holds. */
  async #report(): Promise<void> {
    if (this.#timer === undefined || !this.#runner.ready) return;
    await this.#write().catch(() => undefined);
  }

  async #write(): Promise<void> {
    const node: StoredReport = {
      id: this.#nodeId,
      hostname: hostname(),
      pid: process.pid,
      uptime: Math.round(process.uptime()),
      rss: process.memoryUsage.rss(),
      sessions: this.#sessions.size,
      seen: Date.now(),
      channelLogs: this.#channelLogs,
    };
    const key = this.#keys.nodes();
    await this.#runner.command(key, ['HSET', key, this.#nodeId, JSON.stringify(node)]);
  }
}
