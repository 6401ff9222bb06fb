/**
 * RedisEngine v2: publish once, fan out on the nodes.
 *
 * Redis keys, under the prefix (default `bayeux:`); `{…}` is the hash tag,
 * so each script touches one slot and the engine runs on Redis Cluster:
 *
 * | key                           | type   | holds                                                    |
 * | ----------------------------- | ------ | -------------------------------------------------------- |
 * | `{s<k>}:<id>`                 | hash   | ack, deadline, holder node, generation, batch, box positions, data size, subscription count |
 * | `{s<k>}:<id>:subs`            | hash   | pattern → log position acknowledged (taken, without acks) |
 * | `{s<k>}:<id>:sent`            | hash   | acked sessions: pattern → log position sent              |
 * | `{s<k>}:<id>:box`             | stream | messages delivered to this session alone                  |
 * | `{s<k>}:<id>:data`, `:dl`     | hash   | session data (key → JSON text), and sizes                 |
 * | `{s<k>}:deadlines`            | zset   | the bucket's sessions → deadline (ms, Redis clock)        |
 * | `{s<k>}:stats`                | hash   | the bucket's subscription count                           |
 * | `{s<k>}:dead:<id>`            | hash   | subscriptions of a session just removed, being cleaned up |
 * | `{p:<pattern>}:subs`          | set    | ids of the pattern's subscribers                          |
 * | `{p:<pattern>}:log`           | stream | what was published to the pattern: message, publish id, excluded ids |
 * | `{p:<pattern>}:last`          | string | the log's newest entry id                                 |
 *
 * `k` is a hash of the session id modulo 16. Channels: `{p:<pattern>}`
 * (sharded Pub/Sub on Redis 7, else plain), on which a publish announces
 * its log entries; `node:<nodeId>`, on which a node hears about the
 * sessions it holds (a deliver, a subscription made elsewhere, a session
 * destroyed, expired, or taken over by another node).
 *
 * A publish costs Redis a constant amount of work per pattern of the
 * expansion that has subscribers, whatever their number; the publishes a
 * node makes to one channel in one tick share one script (one per pattern
 * on a cluster) and one announcement per pattern (publish.ts). Each node
 * fans the entries out to the sessions it holds, in memory, a whole
 * announcement per session at once (held-session.ts, log.ts). A take writes
 * the session's new positions (one script); a node that takes a session
 * over (touch, or take) reads its queue back from the logs.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  EngineLimitError,
  EngineUnavailableError,
  type Engine,
  type EngineConfig,
  type EngineHost,
  type EngineNode,
  type EngineStats,
  type PublishOptions,
  type SessionOptions,
  type TakeResult,
} from '../engine.js';
import { newClientId } from '../memory.js';

/** How often a node reports itself for `nodes()`, and how old a report may be. */
const NODE_REPORT_MS = 2000;
const NODE_STALE_MS = 3 * NODE_REPORT_MS;
import { describeError, int, list, text, texts } from './errors.js';
import { HeldSession, makeEntry, type Entry, type QueueLimits } from './held-session.js';
import { compareIds, Keys } from './keys.js';
import { entryOf, PatternLogs } from './log.js';
import { Publisher } from './publish.js';
import { Scripts } from './lua/index.js';
import { resolveOptions, type RedisEngineOptions, type RedisEngineSource, type ResolvedOptions } from './options.js';
import { Runner } from './runner.js';

/** How long wakes are gathered before the Server is told, in ms. */
const WAKE_DELAY_MS = 1;
/** Longest wait for publishes in flight before the Server is told, in ms. */
const WAKE_MAX_DELAY_MS = 4;
/** HSCAN/SSCAN page size: no command holds Redis for long. */
const PAGE = 500;
/** Bound on pages read by one operation (PAGE × this entries). */
const MAX_PAGES = 100_000;

export class RedisEngine implements Engine {
  readonly #options: ResolvedOptions;
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #nodeId = newClientId();
  #host: EngineHost | undefined;
  #limits: QueueLimits = { maxQueue: Infinity, maxQueueBytes: Infinity };
  #maxSubscriptions = '';
  #maxSessionDataBytes = '';
  #retention: number;
  #sweeper: NodeJS.Timeout | undefined;
  #reporter: NodeJS.Timeout | undefined;
  #sweeping = false;
  #opened = false;
  #opening: Promise<void> | undefined;
  #closed = false;
  readonly #held = new Map<string, HeldSession>();
  readonly #logs: PatternLogs;
  readonly #publisher: Publisher;
  /** Sessions held here woken in this tick (each once: `waking`), and other ids. */
  #toWake: HeldSession[] = [];
  #toWakeIds: string[] = [];
  /** Sessions whose positions a lazy take left unwritten. */
  readonly #unflushed = new Set<HeldSession>();
  #flushing = false;
  #flusher: NodeJS.Timeout | undefined;
  /** Publishes and delivers in the order they were called, applied here in that order. */
  #inFlight: Array<{ ready: boolean; settle: () => void }> = [];
  readonly #onNodeMessage = (message: string) => this.#nodeMessage(message);
  readonly #onWakeTimer = () => {
    // While this node's publishes are on their way, more messages for the same sessions are coming: wait for them, a little.
    if (this.#inFlight.length > 0 && performance.now() - this.#wakeSince < WAKE_MAX_DELAY_MS) setTimeout(this.#onWakeTimer, WAKE_DELAY_MS);
    else this.#wakeAll();
  };
  #wakeSince = 0;

  /**
   * @param source `{ url }`, `{ client }` or `{ cluster: { rootNodes } }` (see {@link RedisEngineSource}).
   * @param options see {@link RedisEngineOptions}; unknown options throw a `TypeError`.
   */
  constructor(source: RedisEngineSource, options: RedisEngineOptions = {}) {
    if (source === null || typeof source !== 'object') {
      throw new TypeError('RedisEngine needs { url }, { client } or { cluster: { rootNodes } }');
    }
    this.#options = resolveOptions(options);
    this.#runner = new Runner(source, this.#options);
    this.#keys = new Keys(this.#options.prefix);
    this.#retention = this.#options.logRetention;
    // Publish ids start with this node's prefix: its own announcements are told apart.
    const ownPrefix = `${randomBytes(6).toString('base64url')}.`;
    this.#logs = new PatternLogs(this.#runner, this.#keys, {
      fanOut: (sessions, pattern, entries) => {
        const limits = this.#limits;
        for (const session of sessions) if (session.applyLog(pattern, entries, limits)) this.#wakeHeld(session);
      },
      failed: (err) => this.#failed('reading a log', err),
    }, ownPrefix);
    this.#publisher = new Publisher(this.#runner, this.#keys, this.#logs, ownPrefix, {
      ordered: (sent) => this.#ordered(sent),
      logLength: () => this.#logLength(),
      retention: () => this.#retention,
      subscribers: (pattern) => this.subscribers(pattern),
    });
  }

  /** This node's id: the suffix of its notification channel. */
  get nodeId(): string {
    return this.#nodeId;
  }

  async open(host: EngineHost, config: EngineConfig): Promise<void> {
    if (this.#opened) throw new Error('RedisEngine: open() called twice');
    if (this.#opening) throw new Error('RedisEngine: open() called while opening');
    if (this.#closed) throw new Error('RedisEngine: open() called after close()');
    this.#host = host;
    this.#limits = { maxQueue: config.maxQueue, maxQueueBytes: config.maxQueueBytes };
    this.#maxSubscriptions = Number.isFinite(config.maxSubscriptions) ? String(Math.max(0, Math.floor(config.maxSubscriptions))) : '';
    this.#maxSessionDataBytes = Number.isFinite(config.maxSessionDataBytes) ? String(Math.max(0, Math.floor(config.maxSessionDataBytes))) : '';
    const opening = (async () => {
      await this.#runner.open(this.#options.logger ?? config.logger, { resubscribed: () => this.#resubscribed() });
      try {
        await this.#runner.subscribe(this.#keys.nodeChannel(this.#nodeId), this.#onNodeMessage);
      } catch (err) {
        await this.#runner.close();
        throw err;
      }
    })();
    this.#opening = opening;
    try {
      await opening;
    } finally {
      this.#opening = undefined;
    }
    // A failed open leaves the engine re-openable: only now is it open.
    this.#opened = true;
    const interval = Math.max(1, config.sweepInterval);
    this.#sweeper = setInterval(() => void this.#sweep(), interval);
    this.#sweeper.unref();
    this.#reporter = setInterval(() => void this.#report(), NODE_REPORT_MS);
    this.#reporter.unref();
    void this.#report();
    this.#flusher = setInterval(() => void this.#flush(), this.#options.positionFlush);
    this.#flusher.unref();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    clearInterval(this.#reporter);
    this.#reporter = undefined;
    if (this.#runner.ready) {
      const key = this.#keys.nodes();
      await this.#runner.command(key, ['HDEL', key, this.#nodeId]).catch(() => undefined);
    }
    clearInterval(this.#flusher);
    this.#flusher = undefined;
    // What WebSocket pushes took is written before the connections go.
    await this.#flush().catch(() => undefined);
    for (const session of this.#held.values()) session.gone = true;
    this.#held.clear();
    this.#logs.clear();
    await this.#runner.close();
  }

  async createSession(options: SessionOptions): Promise<string> {
    this.#retain(options.ttl);
    const data: string[] = [];
    let size = 0;
    for (const [key, value] of options.data ?? []) {
      data.push(key, value, String(key.length + value.length));
      size += key.length + value.length;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = newClientId();
      const ttl = Math.max(0, options.ttl);
      const created = await this.#runner.run(Scripts.create, this.#keys.session(id), [
        this.#keys.nodeChannelPrefix, id, options.ack ? '1' : '0', String(ttl), this.#nodeId, String(size), ...data,
      ]);
      if (int(created) === 1) {
        this.#held.set(id, new HeldSession(id, options.ack, 1, 0, '0-0', Date.now() + ttl));
        return id;
      }
    }
    throw new Error('RedisEngine: could not create a unique session id');
  }

  async exists(clientId: string): Promise<boolean> {
    return this.#status(clientId, await this.#session(Scripts.exists, clientId, []));
  }

  async touch(clientId: string, ttl: number): Promise<boolean> {
    this.#retain(ttl);
    const ms = String(Math.max(0, ttl));
    const local = this.#held.get(clientId);
    const reply = list(await this.#session(Scripts.touch, clientId, [ms, this.#nodeId, local ? '0' : '1', String(PAGE)]));
    if (!this.#status(clientId, reply[0])) return false;
    const gen = int(reply[1]);
    const deadline = Date.now() + Math.max(0, ttl);
    if (reply.length > 2) {
      await this.#load(clientId, reply, deadline);
    } else if (local && local.gen === gen && !local.gone) {
      local.deadline = deadline;
    } else {
      await this.#adopt(clientId, deadline);
    }
    return true;
  }

  async destroy(clientId: string): Promise<boolean> {
    const status = int(await this.#session(Scripts.destroy, clientId, []));
    if (status <= 0) {
      this.#status(clientId, status);
      return false;
    }
    this.#forget(clientId);
    if (status === 2) await this.#bury(clientId);
    return true;
  }

  async subscribe(clientId: string, pattern: string): Promise<boolean> {
    const check = int(await this.#session(Scripts.subscribeCheck, clientId, [pattern, this.#maxSubscriptions]));
    if (check === 3) return true;
    if (check === 4) throw this.#subscriptionLimit();
    if (!this.#status(clientId, check)) return false;
    const base = this.#keys.pattern(pattern);
    const position = text(await this.#runner.run(Scripts.addSubscriber, base, [clientId]));
    let reply: unknown[];
    try {
      reply = list(await this.#session(Scripts.subscribeCommit, clientId, [pattern, position, this.#maxSubscriptions, this.#nodeId]));
    } catch (err) {
      await this.#removeSubscriber(pattern, clientId).catch(() => undefined);
      throw err;
    }
    const status = int(reply[0]);
    if (status !== 1) {
      await this.#removeSubscriber(pattern, clientId);
      if (status === 4) throw this.#subscriptionLimit();
      this.#status(clientId, status);
      return false;
    }
    const held = this.#held.get(clientId);
    if (int(reply[1]) === 1 && held && held.gen === int(reply[2])) this.#catchUp(held, pattern, position);
    return true;
  }

  async unsubscribe(clientId: string, pattern: string): Promise<boolean> {
    const reply = list(await this.#session(Scripts.unsubscribe, clientId, [pattern, this.#nodeId]));
    if (!this.#status(clientId, reply[0])) return false;
    if (int(reply[1]) === 1) {
      await this.#removeSubscriber(pattern, clientId);
      const held = this.#held.get(clientId);
      if (held) this.#unfollow(held, pattern);
    }
    return true;
  }

  async subscriptions(clientId: string): Promise<string[]> {
    const patterns: string[] = [];
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = list(await this.#session(Scripts.subscriptions, clientId, [cursor, String(PAGE)]));
      if (!this.#status(clientId, reply[0])) return [];
      cursor = text(reply[1]);
      patterns.push(...texts(reply[2]));
      if (cursor === '0') break;
    }
    return [...new Set(patterns)];
  }

  async subscribers(pattern: string): Promise<string[]> {
    const key = `${this.#keys.pattern(pattern)}:subs`;
    const ids = new Set<string>();
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = list(await this.#runner.command(key, ['SSCAN', key, cursor, 'COUNT', String(PAGE)], true));
      cursor = text(reply[0]);
      for (const id of texts(reply[1])) ids.add(id);
      if (cursor === '0') break;
    }
    return [...ids];
  }

  async getSessionData(clientId: string, key: string): Promise<string | undefined | null> {
    const reply = list(await this.#session(Scripts.dataGet, clientId, [key]));
    if (!this.#status(clientId, reply[0])) return null;
    const value = reply[1];
    return value === null || value === undefined || value === false ? undefined : text(value);
  }

  async setSessionData(clientId: string, key: string, value: string | undefined): Promise<boolean> {
    const size = key.length + (value?.length ?? 0);
    const status = int(await this.#session(Scripts.dataSet, clientId, [key, value ?? '', value === undefined ? '1' : '0', this.#maxSessionDataBytes, String(size)]));
    if (status === 4) {
      throw new EngineLimitError('maxSessionDataBytes', `a session may hold at most ${this.#maxSessionDataBytes} characters of data`);
    }
    return this.#status(clientId, status);
  }

  async allSessionData(clientId: string): Promise<Map<string, string> | null> {
    const reply = list(await this.#session(Scripts.dataAll, clientId, []));
    if (!this.#status(clientId, reply[0])) return null;
    const flat = texts(reply[1]);
    const data = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) data.set(flat[i] as string, flat[i + 1] as string);
    return data;
  }

  publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number> {
    return this.#publisher.publish(patterns, message, options);
  }

  async deliver(clientId: string, message: string): Promise<boolean> {
    // Publishes called before it reach Redis before it.
    this.#publisher.flush();
    const reply = list(await this.#ordered(this.#session(Scripts.deliver, clientId, [message, this.#logLength(), this.#nodeId])));
    if (!this.#status(clientId, reply[0])) return false;
    if (int(reply[3]) === 1) {
      const held = this.#held.get(clientId);
      if (held) await this.#boxEntry(held, text(reply[2]), makeEntry('', text(reply[1]), message, '', undefined));
    }
    return true;
  }

  async take(clientId: string, ack?: number): Promise<TakeResult | null> {
    const acked = typeof ack === 'number' && Number.isFinite(ack) ? Math.floor(ack) : undefined;
    return this.#take(clientId, acked, 0);
  }

  /**
   * {@link take} for the WebSocket pushes of a tick. A session held here
   * without acks is taken from memory: its new positions are written to
   * Redis by the next flush (every `positionFlush` ms, one script per
   * bucket), not one script per session and push.
   */
  async takeMany(clientIds: readonly string[]): Promise<Array<TakeResult | null>> {
    const results = new Array<TakeResult | null>(clientIds.length);
    const lazyUntil = Date.now() + 1000;
    let waiting: Promise<unknown>[] | undefined;
    for (let i = 0; i < clientIds.length; i++) {
      const id = clientIds[i] as string;
      const held = this.#held.get(id);
      // The common case, from memory, without a promise per session.
      const taken = held && held.takes === 0 ? this.#takeLazily(held, lazyUntil) : undefined;
      if (taken) results[i] = taken;
      else (waiting ??= []).push(this.#take(id, undefined, 0, true).then((result) => (results[i] = result)));
    }
    if (waiting) await Promise.all(waiting);
    return results;
  }

  /** The nodes that reported in the last NODE_STALE_MS (each reports every NODE_REPORT_MS). */
  async nodes(): Promise<EngineNode[]> {
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
    if (this.#closed || !this.#runner.ready) return;
    const node: EngineNode = {
      id: this.#nodeId,
      hostname: hostname(),
      pid: process.pid,
      uptime: Math.round(process.uptime()),
      rss: process.memoryUsage.rss(),
      sessions: this.#held.size,
      seen: Date.now(),
    };
    const key = this.#keys.nodes();
    await this.#runner.command(key, ['HSET', key, this.#nodeId, JSON.stringify(node)]).catch(() => undefined);
  }

  async stats(): Promise<EngineStats> {
    const replies = await Promise.all(this.#keys.buckets().map((bucket) => this.#runner.run(Scripts.stats, bucket, [this.#keys.nodeChannelPrefix])));
    let sessions = 0;
    let subscriptions = 0;
    for (const reply of replies) {
      const [count, subs] = list(reply);
      sessions += int(count);
      subscriptions += int(subs ?? 0);
    }
    return { sessions, subscriptions: Math.max(0, subscriptions) };
  }

  /**
   * Resolve in call order: Redis answers in order, but a publish waits for
   * several answers; what it queues here must not overtake a deliver
   * called after it.
   */
  #ordered<T>(sent: Promise<T>): Promise<T> {
    const slot = { ready: false, settle: () => {} };
    this.#inFlight.push(slot);
    return new Promise<T>((resolve, reject) => {
      sent.then(
        (value) => {
          slot.settle = () => resolve(value);
        },
        (err: unknown) => {
          slot.settle = () => reject(err);
        },
      ).finally(() => {
        slot.ready = true;
        let n = 0;
        while (n < this.#inFlight.length && (this.#inFlight[n] as { ready: boolean }).ready) (this.#inFlight[n++] as { settle: () => void }).settle();
        if (n > 0) this.#inFlight.splice(0, n);
      });
    });
  }

  // ------------------------------------------------------------------------- sessions held here

  #session(script: (typeof Scripts)[keyof typeof Scripts], clientId: string, args: readonly string[]): Promise<unknown> {
    if (!this.#opened) return Promise.reject(new EngineUnavailableError(`Redis engine is not open (${this.#runner.where})`));
    return this.#runner.run(script, this.#keys.session(clientId), [this.#keys.nodeChannelPrefix, clientId, ...args]);
  }

  /** Take the session over: this node becomes its holder and rebuilds its queue. */
  async #adopt(clientId: string, deadline?: number): Promise<HeldSession | null> {
    const reply = list(await this.#session(Scripts.touch, clientId, ['-', this.#nodeId, '1', String(PAGE)]));
    if (!this.#status(clientId, reply[0])) return null;
    return this.#load(clientId, reply, deadline ?? this.#held.get(clientId)?.deadline ?? Date.now() + this.#retention);
  }

  /** Rebuild a session's queue from a touch reply: its positions, then the logs after them. */
  async #load(clientId: string, reply: unknown[], deadline: number): Promise<HeldSession> {
    const [, gen, ack, batch, boxAcked, boxSent, subsFlat, sentFlat] = reply;
    this.#forget(clientId);
    const held = new HeldSession(clientId, text(ack) === '1', int(gen), int(batch), text(boxAcked), deadline);
    this.#held.set(clientId, held);
    held.loads++;
    held.pending = [];
    const loading = (async () => {
      try {
        const base = `${this.#keys.session(clientId)}:${clientId}`;
        const subs = Array.isArray(subsFlat) ? pairs(subsFlat) : await this.#scan(`${base}:subs`);
        const sent = !held.ack ? [] : Array.isArray(sentFlat) ? pairs(sentFlat) : await this.#scan(`${base}:sent`);
        for (const [pattern, position] of subs) held.follow(pattern, position);
        if (held.ack) {
          held.sentAt.set('', text(boxSent));
          for (const [pattern, position] of sent) if (held.cursors.has(pattern)) held.sentAt.set(pattern, position);
        }
        await Promise.all(subs.map(([pattern]) => this.#logs.follow(held, pattern)));
        const box = `${this.#keys.session(clientId)}:${clientId}:box`;
        // In call order with publishes and delivers: those answered before these reads are in held.pending first.
        const [boxEntries, ...logs] = await this.#ordered(Promise.all([
          this.#runner.command(box, ['XRANGE', box, `(${held.box.id}`, '+'], true).then((r) => list(r).map((item) => entryOf('', item))),
          ...subs.map(([pattern, position]) => this.#logs.read(pattern, position)),
        ]));
        this.#applyRead(held, [...(boxEntries ?? []), ...logs.flat()].sort(byId));
        if (held.ack && held.batch > 0) {
          // What was sent in the last batch goes first, as it was sent.
          const sentFirst = held.queue.filter((e) => compareIds(e.id, held.sentAt.get(e.src) ?? '0-0') <= 0);
          const rest = held.queue.filter((e) => compareIds(e.id, held.sentAt.get(e.src) ?? '0-0') > 0);
          held.queue = sentFirst.concat(rest);
          held.sent = sentFirst.length;
        }
      } finally {
        this.#loaded(held);
      }
    })();
    held.ready = loading.catch(() => undefined);
    try {
      await loading;
    } catch (err) {
      this.#forget(clientId);
      throw this.#runner.unavailable(err);
    }
    return held;
  }

  /**
   * Apply what a catch-up read from the logs, before what was announced
   * meanwhile (held.pending): a source's read entries are applied up to
   * the first one that was also announced, which then comes in the order
   * it was announced, after the operations that came before it.
   */
  #applyRead(held: HeldSession, entries: readonly Entry[]): void {
    const announced = new Set<string>();
    for (const entry of held.pending ?? []) announced.add(`${entry.src} ${entry.id}`);
    const stopped = new Set<string>();
    const last = new Map<string, Entry>();
    for (const entry of entries) {
      if (stopped.has(entry.src)) continue;
      if (announced.has(`${entry.src} ${entry.id}`)) {
        stopped.add(entry.src);
        continue;
      }
      held.apply(entry, this.#limits, true);
      last.set(entry.src, entry);
    }
    for (const [src, entry] of last) if (src !== '') this.#logs.caughtUp(src, entry);
  }

  /** A hash's fields and values, a page at a time. */
  async #scan(key: string): Promise<Array<[string, string]>> {
    const result: Array<[string, string]> = [];
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = list(await this.#runner.command(key, ['HSCAN', key, cursor, 'COUNT', String(PAGE)], true));
      cursor = text(reply[0]);
      result.push(...pairs(reply[1]));
      if (cursor === '0') break;
    }
    return result;
  }

  /** A load or catch-up ended: apply what arrived meanwhile. */
  #loaded(held: HeldSession): void {
    held.loads--;
    if (held.loads > 0) return;
    const pending = held.pending ?? [];
    held.pending = undefined;
    let reached = false;
    for (const entry of pending) if (held.apply(entry, this.#limits)) reached = true;
    if (reached || held.queue.length > 0) this.#wakeHeld(held);
  }

  /** A held session follows a new pattern from `position`: listen, then read what the log got since. */
  #catchUp(held: HeldSession, pattern: string, position: string): void {
    held.follow(pattern, position);
    held.loads++;
    held.pending ??= [];
    const previous = held.ready;
    held.ready = (async () => {
      try {
        await this.#logs.follow(held, pattern);
        const entries = await this.#ordered(this.#logs.read(pattern, position));
        await previous;
        this.#applyRead(held, entries);
      } catch (err) {
        // Start over from Redis on the next take: the session's copy here may miss messages.
        this.#failed('following a pattern', err);
        this.#forget(held.id);
      } finally {
        this.#loaded(held);
      }
    })();
  }

  #unfollow(held: HeldSession, pattern: string): void {
    held.unfollow(pattern);
    this.#logs.unfollow(held, pattern);
  }

  /** Stop holding a session here. */
  #forget(clientId: string): void {
    const held = this.#held.get(clientId);
    if (!held) return;
    held.gone = true;
    this.#held.delete(clientId);
    for (const pattern of held.cursors.keys()) this.#logs.unfollow(held, pattern);
  }

  async #boxEntry(held: HeldSession, prev: string, entry: Entry): Promise<void> {
    if (prev !== held.box.id && compareIds(prev, held.box.id) > 0 && !held.pending) {
      // Something was delivered before this that has not reached us yet: read it from the box.
      const box = `${this.#keys.session(held.id)}:${held.id}:box`;
      const items = list(await this.#runner.command(box, ['XRANGE', box, `(${held.box.id}`, entry.id], true));
      for (const item of items) if (held.apply(entryOf('', item), this.#limits)) this.#wakeHeld(held);
      return;
    }
    if (held.apply(entry, this.#limits)) this.#wakeHeld(held);
  }

  async #take(clientId: string, ack: number | undefined, attempt: number, push = false): Promise<TakeResult | null> {
    let held = this.#held.get(clientId);
    if (push && held && held.takes === 0) {
      // The common case, a WebSocket push: from memory, without waiting for anything.
      const result = this.#takeLazily(held, Date.now() + 1000);
      if (result) return result;
    }
    if (!held || held.gone) {
      held = (await this.#adopt(clientId)) ?? undefined;
      if (!held) return null;
    }
    const session = held;
    session.takes++;
    const run = session.lock.then(async (): Promise<TakeResult | null | 'stale'> => {
      await session.ready;
      await this.#logs.settled(session.cursors.keys());
      if (session.gone) return 'stale';
      const lazy = push && !session.ack && session.deadline > Date.now() + 1000 && this.#runner.healthy;
      const prepared = session.prepare(ack, this.#limits, lazy);
      if (lazy) {
        session.commit(prepared);
        if (session.lazy) this.#unflushed.add(session);
        return { messages: prepared.messages, dropped: prepared.dropped };
      }
      const status = int(await this.#session(Scripts.take, clientId, [String(session.gen), prepared.batch === undefined ? '-' : String(prepared.batch), ...prepared.writes]));
      if (status === 3) return 'stale';
      if (status !== 1) {
        this.#forget(clientId);
        this.#status(clientId, status);
        return null;
      }
      if (session.gone) return 'stale';
      session.commit(prepared);
      const result: TakeResult = { messages: prepared.messages, dropped: prepared.dropped };
      if (prepared.batch !== undefined) result.batch = prepared.batch;
      return result;
    });
    session.lock = run.catch(() => undefined).finally(() => {
      session.takes--;
    });
    const result = await run;
    if (result !== 'stale') return result;
    if (this.#held.get(clientId) === session) this.#forget(clientId);
    if (attempt >= 2) throw new EngineUnavailableError(`Redis engine: session ${clientId.slice(0, 4)}… keeps moving between nodes`);
    return this.#take(clientId, ack, attempt + 1, push);
  }

  /**
   * A push's take of a session held here, ready and without acks, that
   * lives past `until` (ms); undefined when it must go the long way.
   */
  #takeLazily(session: HeldSession, until: number): TakeResult | undefined {
    if (session.gone || session.ack || session.loads > 0 || session.deadline <= until || !this.#runner.healthy) return undefined;
    if (this.#logs.busy(session.cursors.keys())) return undefined;
    const result = session.takeLazily(this.#limits);
    if (session.lazy) this.#unflushed.add(session);
    return result;
  }

  /** Write the positions lazy takes left: one script on a single Redis, one per bucket (slot) on a cluster. */
  async #flush(): Promise<void> {
    if (this.#unflushed.size === 0 || this.#flushing || !this.#runner.ready) return;
    this.#flushing = true;
    const sessions = [...this.#unflushed];
    this.#unflushed.clear();
    const cluster = this.#runner.isCluster;
    const calls = new Map<string, { keys: string[]; args: string[]; sessions: number }>();
    const full: Array<{ keys: string[]; args: string[] }> = [];
    const written: Array<[HeldSession, Map<string, string>]> = [];
    for (const session of sessions) {
      const lazy = session.lazy;
      if (!lazy || session.gone) continue;
      session.lazy = undefined;
      written.push([session, lazy]);
      const bucket = this.#keys.session(session.id);
      const group = cluster ? bucket : '';
      let call = calls.get(group);
      if (!call) calls.set(group, (call = { keys: [], args: [this.#keys.nodeChannelPrefix], sessions: 0 }));
      let index = call.keys.indexOf(bucket);
      if (index < 0) index = call.keys.push(bucket) - 1;
      call.args.push(String(index + 1), session.id, String(session.gen), String(lazy.size));
      for (const [src, position] of lazy) call.args.push(src, position);
      // No script holds Redis for long.
      if (++call.sessions >= PAGE) {
        full.push(call);
        calls.delete(group);
      }
    }
    full.push(...calls.values());
    try {
      await Promise.all(full.map(({ keys, args }) => this.#runner.run(Scripts.positions, keys, args)));
    } catch (err) {
      // Not written: try again with the next flush, unless a newer take wrote them.
      for (const [session, lazy] of written) {
        if (session.gone) continue;
        if (!session.lazy) session.lazy = lazy;
        else for (const [src, position] of lazy) if (!session.lazy.has(src)) session.lazy.set(src, position);
        this.#unflushed.add(session);
      }
      this.#failed('writing positions', err);
    } finally {
      this.#flushing = false;
    }
  }

  // ------------------------------------------------------------------------- notifications

  /** `x <id>` gone; `d <id> <gen>` taken over; `b <id> <prev> <sid> <message>` delivered; `s <id> <gen> <pos> <pattern>`; `u <id> <gen> <pattern>` */
  #nodeMessage(message: string): void {
    if (this.#closed) return;
    const kind = message.slice(0, 1);
    const idEnd = message.indexOf(' ', 2);
    const id = idEnd < 0 ? message.slice(2) : message.slice(2, idEnd);
    const rest = idEnd < 0 ? '' : message.slice(idEnd + 1);
    const held = this.#held.get(id);
    switch (kind) {
      case 'x':
        this.#forget(id);
        this.#wake(id);
        return;
      case 'd':
        if (held && held.gen < Number(rest)) this.#forget(id);
        return;
      case 'b': {
        if (!held) return;
        const a = rest.indexOf(' ');
        const b = rest.indexOf(' ', a + 1);
        if (a < 0 || b < 0) return;
        const entry = makeEntry('', rest.slice(a + 1, b), rest.slice(b + 1), '', undefined);
        this.#boxEntry(held, rest.slice(0, a), entry).catch((err: unknown) => this.#failed('reading a box', err));
        return;
      }
      case 's': {
        const [gen, position, pattern] = rest.split(' ');
        if (held && pattern && position && held.gen === Number(gen) && !held.cursors.has(pattern)) this.#catchUp(held, pattern, position);
        return;
      }
      case 'u': {
        const [gen, pattern] = rest.split(' ');
        if (held && pattern && held.gen === Number(gen)) this.#unfollow(held, pattern);
        return;
      }
    }
  }

  /** The Pub/Sub connection came back: read what the logs got meanwhile and wake every held session. */
  #resubscribed(): void {
    this.#logs.resync();
    const now = Date.now();
    const ids: string[] = [];
    for (const [id, held] of this.#held) if (held.deadline > now) ids.push(id);
    for (const id of ids) this.#wake(id);
  }

  /** Wake a session held here: once per tick, however many entries reach it. */
  #wakeHeld(held: HeldSession): void {
    if (held.waking) return;
    held.waking = true;
    this.#toWake.push(held);
    this.#wakeSoon();
  }

  #wake(clientId: string): void {
    const held = this.#held.get(clientId);
    if (held) this.#wakeHeld(held);
    else {
      this.#toWakeIds.push(clientId);
      this.#wakeSoon();
    }
  }

  #wakeSoon(): void {
    // A moment later: publishes answered one after another (the Server handles a
    // request's messages in turn) reach a session together, in one frame.
    if (this.#toWake.length + this.#toWakeIds.length === 1) {
      this.#wakeSince = performance.now();
      setTimeout(this.#onWakeTimer, WAKE_DELAY_MS);
    }
  }

  #wakeAll(): void {
    const sessions = this.#toWake;
    const ids = this.#toWakeIds;
    this.#toWake = [];
    this.#toWakeIds = [];
    for (const session of sessions) {
      session.waking = false;
      ids.push(session.id);
    }
    try {
      this.#host?.wake(ids);
    } catch (err) {
      this.#runner.log('warn', `express-bayeux: EngineHost.wake threw: ${describeError(err)}`);
    }
  }

  // ------------------------------------------------------------------------- expiry

  /** A session script's status: true for live; reports a session the script just expired. */
  #status(clientId: string, status: unknown): boolean {
    const n = int(status);
    if (n === 1) return true;
    this.#forget(clientId);
    if (n < 0) void this.#expire(clientId, n === -2);
    return false;
  }

  async #expire(clientId: string, bury: boolean): Promise<void> {
    if (bury) await this.#bury(clientId).catch((err: unknown) => this.#failed('removing subscriptions', err));
    try {
      this.#host?.expired(clientId);
    } catch (err) {
      this.#runner.log('warn', `express-bayeux: EngineHost.expired threw: ${describeError(err)}`);
    }
  }

  /** Remove a gone session from its patterns' subscriber sets, a page at a time. */
  async #bury(clientId: string): Promise<void> {
    const grave = this.#keys.grave(clientId);
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = list(await this.#runner.command(grave, ['HSCAN', grave, cursor, 'COUNT', String(PAGE)]));
      cursor = text(reply[0]);
      const flat = texts(reply[1]);
      const removals: Promise<void>[] = [];
      for (let i = 0; i < flat.length; i += 2) removals.push(this.#removeSubscriber(flat[i] as string, clientId));
      await Promise.all(removals);
      if (cursor === '0') break;
    }
    await this.#runner.command(grave, ['UNLINK', grave]);
  }

  async #removeSubscriber(pattern: string, clientId: string): Promise<void> {
    const key = `${this.#keys.pattern(pattern)}:subs`;
    await this.#runner.command(key, ['SREM', key, clientId]);
  }

  async #sweep(): Promise<void> {
    if (this.#sweeping || this.#closed || !this.#runner.ready) return;
    this.#sweeping = true;
    try {
      const batch = String(this.#options.sweepBatch);
      await Promise.all(this.#keys.buckets().map(async (bucket) => {
        for (let round = 0; round < 100 && !this.#closed; round++) {
          const flat = texts(await this.#runner.run(Scripts.sweep, bucket, [this.#keys.nodeChannelPrefix, batch]));
          const expiring: Promise<void>[] = [];
          for (let i = 0; i + 1 < flat.length; i += 2) {
            const id = flat[i] as string;
            this.#forget(id);
            expiring.push(this.#expire(id, flat[i + 1] === '-2'));
          }
          await Promise.all(expiring);
          if (flat.length / 2 < this.#options.sweepBatch) break;
        }
      }));
      // Sessions held here that nobody touched for long: another node would have said so; forget them anyway.
      const stale = Date.now() - this.#retention;
      for (const [id, held] of this.#held) if (held.deadline < stale) this.#forget(id);
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) this.#runner.log('warn', `express-bayeux: Redis sweep failed: ${describeError(err)}`);
    } finally {
      this.#sweeping = false;
    }
  }

  // ------------------------------------------------------------------------- helpers

  #retain(ttl: number): void {
    if (Number.isFinite(ttl) && ttl > this.#retention) this.#retention = Math.ceil(ttl);
  }

  /** MAXLEN of a log or box: what a session may have waiting, at most `logLength`. */
  #logLength(): string {
    const max = this.#limits.maxQueue;
    return String(Number.isFinite(max) ? Math.max(1, Math.min(this.#options.logLength, Math.floor(max))) : this.#options.logLength);
  }

  #subscriptionLimit(): EngineLimitError {
    return new EngineLimitError('maxSubscriptions', `a session may hold at most ${this.#maxSubscriptions} subscriptions`);
  }

  #failed(what: string, err: unknown): void {
    if (err instanceof EngineUnavailableError) return;
    this.#runner.log('warn', `express-bayeux: Redis engine failed ${what}: ${this.#runner.scrub(describeError(err))}`);
  }
}

function pairs(value: unknown): Array<[string, string]> {
  const flat = value === undefined ? [] : texts(value);
  const result: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) result.push([flat[i] as string, flat[i + 1] as string]);
  return result;
}

function byId(a: Entry, b: Entry): number {
  return a.ms - b.ms || a.seq - b.seq;
}
