/**
 * The in-process engine: sessions, subscriptions and queues in `Map`s.
 * The default engine; one process only.
 */
import { isClientId, newClientId } from './client-id.js';
import {
  type Engine, type EngineConfig, type EngineHost, EngineLimitError, type EngineStats, type HistoryQuery, type HistoryRead, type HistorySettings,
  type PresenceChange, type PresenceEntry, type PresenceState, type PublishOptions, type RecoverFrom, type RecoverResult, type SessionOptions,
  type SubscribeOptions, type TakeResult, UnknownPublisherError,
} from './engine.js';
import { MemoryHistory, type MemoryHistoryStats } from './memory-history.js';
import { MemoryPresence } from './memory-presence.js';

interface MemorySession {
  readonly id: string;
  readonly ack: boolean;
  /** When the session expires, in ms since the epoch. */
  deadline: number;
  /** Messages not yet taken. */
  queue: string[];
  /** Acked sessions: messages taken in batch `batch` and not yet acknowledged. */
  unacked: string[];
  /** Characters waiting in `queue` and `unacked` together. */
  bytes: number;
  /** Per-session data: key → JSON text. */
  data: Map<string, string> | undefined;
  /** Characters in `data` (keys plus values). */
  dataBytes: number;
  batch: number;
  dropped: number;
  subscriptions: Patterns;
  /** Its user (`SessionOptions.user`), for `userSessions`. */
  readonly user: string | undefined;
  /** The channels it is present on (subscribed with `presence`). */
  present: Set<string> | undefined;
  /** The last publish that queued for this session (one copy per publish, however many patterns match). */
  lastPublish: number;
}

/**
 * A session's patterns: a small array while it has few (most sessions
 * follow one to a handful of channels, and a Set's hash table would cost
 * each of them about 100 bytes more), a Set beyond {@link SMALL_PATTERNS}.
 * Replaced, never changed in place while an array, so an array can be shared.
 */
type Patterns = readonly string[] | Set<string>;
const NO_PATTERNS: readonly string[] = [];
const SMALL_PATTERNS = 8;

function hasPattern(patterns: Patterns, pattern: string): boolean {
  return patterns instanceof Set ? patterns.has(pattern) : patterns.includes(pattern);
}

function patternCount(patterns: Patterns): number {
  return patterns instanceof Set ? patterns.size : patterns.length;
}

/** `patterns` with `pattern`, which it lacks. */
function withPattern(patterns: Patterns, pattern: string): Patterns {
  if (patterns instanceof Set) return patterns.add(pattern);
  // concat, not a spread: a spread's array keeps room for 16 more (136 bytes each).
  return patterns.length < SMALL_PATTERNS ? patterns.concat(pattern) : new Set([...patterns, pattern]);
}

/** `patterns` without `pattern`, which it has. */
function withoutPattern(patterns: Patterns, pattern: string): Patterns {
  if (!(patterns instanceof Set)) {
    if (patterns.length === 1) return NO_PATTERNS;
    // slice and concat, not filter: their arrays have no spare room.
    const i = patterns.indexOf(pattern);
    return i < 0 ? patterns : patterns.slice(0, i).concat(patterns.slice(i + 1));
  }
  patterns.delete(pattern);
  return patterns;
}

/** The sessions of a `#subscribers` entry. */
function sessionsOf(subscribers: MemorySession | Map<string, MemorySession> | undefined): Iterable<MemorySession> {
  if (subscribers === undefined) return [];
  return subscribers instanceof Map ? subscribers.values() : [subscribers];
}

export class MemoryEngine implements Engine {
  #host: EngineHost | undefined;
  #maxQueue = Infinity;
  #maxQueueBytes = Infinity;
  #maxSubscriptions = Infinity;
  #maxSessionDataBytes = Infinity;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #sessions = new Map<string, MemorySession>();
  /** pattern → the session subscribed to it, or, when several are, a Map of them by id (most channels have one subscriber: a Map each would cost it about 150 bytes) */
  readonly #subscribers = new Map<string, MemorySession | Map<string, MemorySession>>();
  #publishes = 0;
  /** Subscriptions of every session (the sum of their patterns), kept as they change so `stats()` is O(1). */
  #subscriptionCount = 0;
  /** Channel history (`history` option): bounded rings, dropped with the engine, so a new engine is a new epoch. */
  readonly #history = new MemoryHistory();
  /** Presence (`presence` option) and each user's sessions. */
  readonly #presence = new MemoryPresence();

  async open(host: EngineHost, config: EngineConfig): Promise<void> {
    this.#host = host;
    this.#maxQueue = config.maxQueue;
    this.#maxQueueBytes = config.maxQueueBytes;
    this.#maxSubscriptions = config.maxSubscriptions;
    this.#maxSessionDataBytes = config.maxSessionDataBytes;
    this.#history.configure(config.maxHistoryBytes);
    this.#sweeper = setInterval(() => this.#sweep(), config.sweepInterval);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#sessions.clear();
    this.#subscribers.clear();
    this.#subscriptionCount = 0;
    this.#history.clear();
    this.#presence.clear();
  }

  /** The form of the ids this engine issues ({@link newClientId}): checked by the Server before any call. */
  isClientId(clientId: string): boolean {
    return isClientId(clientId);
  }

  async createSession(options: SessionOptions): Promise<string> {
    const id = newClientId();
    let data: Map<string, string> | undefined;
    let dataBytes = 0;
    if (options.data && options.data.size > 0) {
      data = new Map(options.data);
      for (const [key, value] of data) dataBytes += key.length + value.length;
    }
    this.#sessions.set(id, {
      bytes: 0,
      data,
      dataBytes,
      id,
      lastPublish: 0,
      ack: options.ack,
      deadline: Date.now() + options.ttl,
      queue: [],
      unacked: [],
      batch: 0,
      dropped: 0,
      subscriptions: NO_PATTERNS,
      user: options.user,
      present: undefined,
    });
    if (options.user !== undefined) this.#presence.addSession(options.user, id);
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

  async subscribe(clientId: string, pattern: string, options?: SubscribeOptions): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    this.#subscribe(session, pattern, options);
    return true;
  }

  /** Subscribe and queue what the session missed, in one synchronous step: no publish comes between. */
  async recover(clientId: string, channel: string, from: RecoverFrom, history: HistorySettings, options?: SubscribeOptions): Promise<RecoverResult | null> {
    const session = this.#live(clientId);
    if (!session) return null;
    this.#subscribe(session, channel, options);
    const { recovered, position, texts } = this.#history.recover(channel, from, history, Date.now());
    for (const text of texts) this.#enqueue(session, text);
    if (texts.length > 0) this.#host?.wake([clientId]);
    return { recovered, epoch: position.epoch, offset: position.offset, missed: texts.length };
  }

  async history(channel: string, history: HistorySettings, query: HistoryQuery): Promise<HistoryRead> {
    const { position, texts } = this.#history.read(channel, history, query, Date.now());
    return { epoch: position.epoch, offset: position.offset, messages: texts };
  }

  /** What the channel history holds now (channels, messages, characters): bounded by `maxHistoryBytes`. */
  historyStats(): MemoryHistoryStats {
    return this.#history.stats();
  }

  async presence(channel: string, limit: number): Promise<PresenceEntry[]> {
    return this.#presence.list(channel, limit);
  }

  async presenceCount(channel: string): Promise<PresenceState> {
    return this.#presence.count(channel);
  }

  async userSessions(user: string): Promise<string[]> {
    return this.#presence.sessions(user).filter((id) => this.#live(id) !== undefined);
  }

  #subscribe(session: MemorySession, pattern: string, options: SubscribeOptions | undefined): void {
    const clientId = session.id;
    if (!hasPattern(session.subscriptions, pattern)) {
      if (patternCount(session.subscriptions) >= this.#maxSubscriptions) {
        throw new EngineLimitError('maxSubscriptions', `a session may hold at most ${this.#maxSubscriptions} subscriptions`);
      }
      session.subscriptions = withPattern(session.subscriptions, pattern);
      this.#subscriptionCount++;
    }
    const subscribers = this.#subscribers.get(pattern);
    if (subscribers === undefined) this.#subscribers.set(pattern, session);
    else if (subscribers instanceof Map) subscribers.set(clientId, session);
    else if (subscribers !== session) this.#subscribers.set(pattern, new Map([[subscribers.id, subscribers], [clientId, session]]));
    if (options?.presence) {
      (session.present ??= new Set()).add(pattern);
      this.#report(this.#presence.add(pattern, clientId, options.presence));
    }
  }

  /** Leave every channel the session is present on (`pattern`: only that one). */
  #absent(session: MemorySession, pattern?: string): void {
    const present = session.present;
    if (!present) return;
    for (const channel of pattern === undefined ? [...present] : [pattern]) {
      if (!present.delete(channel)) continue;
      this.#report(this.#presence.remove(channel, session.id));
    }
  }

  #report(change: PresenceChange | undefined): void {
    if (change) this.#host?.presence?.(change);
  }

  async unsubscribe(clientId: string, pattern: string): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    if (hasPattern(session.subscriptions, pattern)) {
      session.subscriptions = withoutPattern(session.subscriptions, pattern);
      this.#subscriptionCount--;
    }
    this.#unindex(clientId, pattern);
    this.#absent(session, pattern);
    return true;
  }

  async subscriptions(clientId: string): Promise<string[]> {
    return [...(this.#live(clientId)?.subscriptions ?? [])];
  }

  async subscribers(pattern: string): Promise<string[]> {
    const now = Date.now();
    const ids: string[] = [];
    for (const session of sessionsOf(this.#subscribers.get(pattern))) if (session.deadline > now) ids.push(session.id);
    return ids;
  }

  async getSessionData(clientId: string, key: string): Promise<string | undefined | null> {
    const session = this.#live(clientId);
    if (!session) return null;
    return session.data?.get(key);
  }

  async setSessionData(clientId: string, key: string, value: string | undefined): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    const old = session.data?.get(key);
    const before = old === undefined ? 0 : key.length + old.length;
    if (value === undefined) {
      if (old !== undefined) session.data?.delete(key);
      session.dataBytes -= before;
      return true;
    }
    const after = session.dataBytes - before + key.length + value.length;
    if (after > this.#maxSessionDataBytes) {
      throw new EngineLimitError('maxSessionDataBytes', `a session may hold at most ${this.#maxSessionDataBytes} characters of data`);
    }
    (session.data ??= new Map()).set(key, value);
    session.dataBytes = after;
    return true;
  }

  async allSessionData(clientId: string): Promise<Map<string, string> | null> {
    const session = this.#live(clientId);
    if (!session) return null;
    return new Map(session.data ?? []);
  }

  /** {@link publish} refuses a publisher that is not a live session (`PublishOptions.publisher`). */
  readonly checksPublisher = true;

  async publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number> {
    if (options?.publisher !== undefined && this.#live(options.publisher) === undefined) throw new UnknownPublisherError(options.publisher);
    const now = Date.now();
    // Kept, and delivered, with the channel's next position spliced in.
    if (options?.history) message = this.#history.append(options.history, message, now);
    const publish = ++this.#publishes;
    const except = options?.except;
    if (except) {
      // Marked as already reached by this publish, so no pattern queues for them.
      for (const id of except) {
        const session = this.#sessions.get(id);
        if (session) session.lastPublish = publish;
      }
    }
    const woken: string[] = [];
    for (const pattern of patterns) {
      const subscribers = this.#subscribers.get(pattern);
      if (subscribers === undefined) continue;
      // A lone subscriber (most small channels) without an iterator or an array per publish.
      if (!(subscribers instanceof Map)) this.#reach(subscribers, publish, now, message, woken);
      else for (const session of subscribers.values()) this.#reach(session, publish, now, message, woken);
    }
    if (woken.length === 0) return 0;
    // The host gathers the wakes of a tick: one call per publish is enough.
    this.#host?.wake(woken);
    return woken.length;
  }

  /** Queue one publish for `session`, once, if it is live; its id goes to `woken`. */
  #reach(session: MemorySession, publish: number, now: number, message: string, woken: string[]): void {
    if (session.lastPublish === publish || session.deadline <= now) return;
    session.lastPublish = publish;
    this.#enqueue(session, message);
    woken.push(session.id);
  }

  async deliver(clientId: string, message: string): Promise<boolean> {
    const session = this.#live(clientId);
    if (!session) return false;
    this.#enqueue(session, message);
    this.#host?.wake([clientId]);
    return true;
  }

  async take(clientId: string, ack?: number): Promise<TakeResult | null> {
    return this.#take(clientId, ack);
  }

  async takeMany(clientIds: readonly string[]): Promise<Array<TakeResult | null>> {
    return clientIds.map((id) => this.#take(id, undefined));
  }

  /**
   * O(1): counts kept as sessions and subscriptions come and go, never a
   * walk over the sessions (health checks and scrapes call it). Sessions
   * past their deadline that the sweeper has not reached yet are counted.
   */
  async stats(): Promise<EngineStats> {
    return { sessions: this.#sessions.size, subscriptions: this.#subscriptionCount };
  }

  #take(clientId: string, ack: number | undefined): TakeResult | null {
    const session = this.#live(clientId);
    if (!session) return null;
    // Trim before applying the ack: overflow is counted as of when the messages arrived.
    this.#trim(session);
    if (session.ack && ack !== undefined && ack >= session.batch && session.unacked.length > 0) {
      for (const m of session.unacked) session.bytes -= m.length;
      session.unacked = [];
    }
    const dropped = session.dropped;
    session.dropped = 0;
    if (!session.ack) {
      const messages = session.queue;
      session.queue = [];
      session.bytes = 0;
      return { messages, dropped };
    }
    if (session.queue.length > 0) {
      session.unacked = session.unacked.length ? session.unacked.concat(session.queue) : session.queue;
      session.queue = [];
    }
    session.batch += 1;
    return { messages: session.unacked.slice(), batch: session.batch, dropped };
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
    session.bytes += message.length;
    // A full queue is trimmed in bulk once it overshoots by a slack, and
    // exactly on take, so a slow consumer costs O(1) per message, not a
    // copy of its whole queue; what take returns never exceeds maxQueue.
    // Bytes are trimmed at once: one large message must not be kept past the bound.
    const slack = Math.max(16, this.#maxQueue >> 3);
    if (session.queue.length + session.unacked.length > this.#maxQueue + slack || session.bytes > this.#maxQueueBytes) {
      this.#trim(session);
    }
  }

  /**
   * Drop the oldest waiting messages (unacknowledged first) down to
   * maxQueue and maxQueueBytes; the newest message always stays.
   */
  #trim(session: MemorySession): void {
    const count = session.queue.length + session.unacked.length;
    if (count <= this.#maxQueue && session.bytes <= this.#maxQueueBytes) return;
    let excess = Math.max(0, count - this.#maxQueue);
    // Then as many more of the oldest as the byte bound needs.
    let bytes = session.bytes;
    let i = 0;
    const at = (n: number): string => (n < session.unacked.length ? session.unacked[n] : session.queue[n - session.unacked.length]) as string;
    for (; i < excess; i++) bytes -= at(i).length;
    while (bytes > this.#maxQueueBytes && excess < count - 1) {
      bytes -= at(excess).length;
      excess++;
    }
    if (excess <= 0) return;
    session.dropped += excess;
    session.bytes = bytes;
    const fromUnacked = Math.min(excess, session.unacked.length);
    if (fromUnacked > 0) session.unacked = session.unacked.slice(fromUnacked);
    excess -= fromUnacked;
    if (excess > 0) session.queue.splice(0, excess);
  }


  #unindex(clientId: string, pattern: string): void {
    const subscribers = this.#subscribers.get(pattern);
    if (subscribers === undefined) return;
    if (!(subscribers instanceof Map)) {
      if (subscribers.id === clientId) this.#subscribers.delete(pattern);
      return;
    }
    subscribers.delete(clientId);
    if (subscribers.size === 1) this.#subscribers.set(pattern, subscribers.values().next().value as MemorySession);
  }

  #remove(clientId: string): boolean {
    const session = this.#sessions.get(clientId);
    if (!session) return false;
    this.#sessions.delete(clientId);
    this.#subscriptionCount -= patternCount(session.subscriptions);
    for (const pattern of session.subscriptions) this.#unindex(clientId, pattern);
    this.#absent(session);
    if (session.user !== undefined) this.#presence.removeSession(session.user, clientId);
    // Whoever holds its connection learns it is gone (its take is null).
    this.#host?.wake([clientId]);
    return true;
  }

  #expire(clientId: string): void {
    if (this.#remove(clientId)) this.#host?.expired(clientId);
  }

  #sweep(): void {
    const now = Date.now();
    this.#history.sweep(now);
    for (const [id, session] of this.#sessions) {
      if (session.deadline <= now) this.#expire(id);
    }
  }
}
