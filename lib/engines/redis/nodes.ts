/**
 * The nodes of a cluster, for the admin page: each node reports itself
 * (host, pid, uptime, memory, sessions held) every few seconds in one
 * hash; `list()` gives those that reported lately and removes the others.
 */
import { hostname } from 'node:os';
import type { EngineNode } from '../engine.js';
import { texts } from './replies.js';
import type { Keys } from './keys.js';
import type { Runner } from './runner.js';

/** How often a node reports itself, and how old a report may be. */
const NODE_REPORT_MS = 2000;
const NODE_STALE_MS = 3 * NODE_REPORT_MS;

export class NodeReports {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #nodeId: string;
  readonly #sessions: { readonly size: number };
  #timer: NodeJS.Timeout | undefined;

  /** `sessions`: how many sessions this node holds. */
  constructor(runner: Runner, keys: Keys, nodeId: string, sessions: { readonly size: number }) {
    this.#runner = runner;
    this.#keys = keys;
    this.#nodeId = nodeId;
    this.#sessions = sessions;
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
        const node = JSON.parse(flat[i + 1] as string) as EngineNode;
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
    const node: EngineNode = {
      id: this.#nodeId,
      hostname: hostname(),
      pid: process.pid,
      uptime: Math.round(process.uptime()),
      rss: process.memoryUsage.rss(),
      sessions: this.#sessions.size,
      seen: Date.now(),
    };
    const key = this.#keys.nodes();
    await this.#runner.command(key, ['HSET', key, this.#nodeId, JSON.stringify(node)]).catch(() => undefined);
  }
}
