/**
 * The in-process engine: sessions, subscriptions and queues in `Map`s.
 * The default engine; one process only.
 */
import { randomBytes } from 'node:crypto';
import type { Engine, EngineConfig, EngineHost, EngineStats, SessionOptions, TakeResult } from './engine.js';

interface MemorySession {
  readonly ack: boolean;
  /** When the session expires, in ms since the epoch. */
  deadline: number;
  /** Messages not yet taken. */
  queue: string[];
  /** Acked sessions: messages taken in batch `batch` and not yet acknowledged. */
  unacked: string[];
  batch: number;
  dropped: number;
  readonly subscriptions: Set<string>;
}

/** Generate a session id: 160 random bits, URL-safe. */
export function newClientId(): string {
  return randomBytes(20).toString('base64url');
}

export class MemoryEngine implements Engine {
  #host: EngineHost | undefined;
  #maxQueue = Infinity;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #sessions = new Map<string, MemorySession>();
  /** pattern → ids of the sessions subscribed to it */
  readonly #subscribers = new Map<string, Set<string>>();

  async open(host: EngineHost, config: EngineConfig): Promise<void> {
    this.#host = host;
    this.#maxQueue = config.maxQueue;
    this.#sweeper = setInterval(() => this.#sweep(), config.sweepInterval);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#sessions.clear();
    this.#subscribers.clear();
  }

  async createSession(options: SessionOptions): Promise<string> {
    const id = newClientId();
    this.#sessions.set(id, {
      ack: options.ack,
      deadline: Date.now() + options.ttl,
      queue: [],
      unacked: [],
      batch: 0,
      dropped: 0,
      subscriptions: new Set(),
    });
    return id;
  }

  async exists(clientId: string): Promise<boolean> {
    return this.#live(clientId) !== undefined;
  }

  async touch(clientId: string, ttl: number): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    session.deadline = Date.now() + ttl;
    return true;
  }

  async destroy(clientId: string): Promise<boolean> {
    // A session past its deadline that the sweeper has not reached yet is
    // expired (and reported as such), not destroyed.
    if (!this.#live(clientId)) return false;
    return this.#remove(clientId);
  }

  async subscribe(clientId: string, pattern: string): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    session.subscriptions.add(pattern);
    let ids = this.#subscribers.get(pattern);
    if (!ids) this.#subscribers.set(pattern, (ids = new Set()));
    ids.add(clientId);
    return true;
  }

  async unsubscribe(clientId: string, pattern: string): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    session.subscriptions.delete(pattern);
    this.#unindex(clientId, pattern);
    return true;
  }

  async subscriptions(clientId: string): Promise<string[]> {
    return [...(this.#live(clientId)?.subscriptions ?? [])];
  }

  async publish(patterns: readonly string[], message: string): Promise<number> {
    const now = Date.now();
    let recipients: string[] | undefined;
    let seen: Set<string> | undefined;
    for (const pattern of patterns) {
      const ids = this.#subscribers.get(pattern);
      if (!ids) continue;
      for (const id of ids) {
        if (seen?.has(id)) continue;
        const session = this.#sessions.get(id);
        if (!session || session.deadline <= now) continue;
        this.#enqueue(session, message);
        (recipients ??= []).push(id);
        // Most channels have one matching pattern; only build the
        // de-duplication set when a second one turns up.
        if (seen) seen.add(id);
      }
      if (recipients && !seen) seen = new Set(recipients);
    }
    if (!recipients) return 0;
    this.#host?.wake(recipients);
    return recipients.length;
  }

  async deliver(clientId: string, message: string): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    this.#enqueue(session, message);
    this.#host?.wake([clientId]);
    return true;
  }

  async take(clientId: string, ack?: number): Promise<TakeResult | null> {
    const session = this.#live(clientId);
    if (!session) return null;
    const dropped = session.dropped;
    session.dropped = 0;
    if (!session.ack) {
      const messages = session.queue;
      session.queue = [];
      return { messages, dropped };
    }
    if (ack !== undefined && ack >= session.batch) session.unacked = [];
    if (session.queue.length > 0) {
      session.unacked = session.unacked.length ? session.unacked.concat(session.queue) : session.queue;
      session.queue = [];
    }
    session.batch += 1;
    return { messages: session.unacked.slice(), batch: session.batch, dropped };
  }

  async stats(): Promise<EngineStats> {
    let subscriptions = 0;
    for (const session of this.#sessions.values()) subscriptions += session.subscriptions.size;
    return { sessions: this.#sessions.size, subscriptions };
  }

  #live(clientId: string): MemorySession | undefined {
    const session = this.#sessions.get(clientId);
    if (session && session.deadline <= Date.now()) {
      this.#expire(clientId);
      return undefined;
    }
    return session;
  }

  #enqueue(session: MemorySession, message: string): void {
    session.queue.push(message);
    // Unacknowledged messages count against the limit too; drop the oldest.
    let excess = session.queue.length + session.unacked.length - this.#maxQueue;
    if (excess <= 0) return;
    session.dropped += excess;
    const fromUnacked = Math.min(excess, session.unacked.length);
    if (fromUnacked > 0) session.unacked = session.unacked.slice(fromUnacked);
    excess -= fromUnacked;
    if (excess > 0) session.queue.splice(0, excess);
  }

  #unindex(clientId: string, pattern: string): void {
    const ids = this.#subscribers.get(pattern);
    if (!ids) return;
    ids.delete(clientId);
    if (ids.size === 0) this.#subscribers.delete(pattern);
  }

  #remove(clientId: string): boolean {
    const session = this.#sessions.get(clientId);
    if (!session) return false;
    this.#sessions.delete(clientId);
    for (const pattern of session.subscriptions) this.#unindex(clientId, pattern);
    return true;
  }

  #expire(clientId: string): void {
    if (this.#remove(clientId)) this.#host?.expired(clientId);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, session] of this.#sessions) {
      if (session.deadline <= now) this.#expire(id);
    }
  }
}
