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
 * | `{s<k>}:<id>:bi`              | list   | the box's entries, oldest first: `<stream id> <bytes>`    |
 * | `{s<k>}:<id>:data`, `:dl`     | hash   | session data (key → JSON text), and sizes                 |
 * | `{s<k>}:deadlines`            | zset   | the bucket's sessions → deadline (ms, Redis clock)        |
 * | `{s<k>}:stats`                | hash   | the bucket's subscription count                           |
 * | `{s<k>}:dead:<id>`            | hash   | subscriptions of a session just removed, being cleaned up |
 * | `{p:<pattern>}:subs`          | set    | ids of the pattern's subscribers                          |
 * | `{p:<pattern>}:log`           | stream | what was published to the pattern: message, publish id, excluded subscribers |
 * | `{p:<pattern>}:index`         | list   | the log's entries, oldest first: `<stream id> <bytes>` (trimming) |
 * | `{p:<pattern>}:bytes`         | string | the sum of those bytes                                    |
 * | `{p:<pattern>}:last`          | string | the log's newest entry id                                 |
 * | `{p:<channel>}:h`, `:hm`      | string, list | channel history: `<epoch> <offset> <bytes>`; kept texts `<ms> <text>` (DESIGN.md) |
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
 * announcement per session at once (local-sessions.ts, local-session.ts, log.ts).
 * A take writes the session's new positions (one script; a WebSocket push's
 * are written lazily, positions.ts); a node that takes a session over
 * (touch, or take) reads its queue back from the logs. Expiry: expiry.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  EngineLimitError,
  type Engine,
  type EngineConfig,
  type EngineHost,
  type EngineNode,
  type EngineStats,
  type HistoryQuery,
  type HistoryRead,
  type HistorySettings,
  type PublishOptions,
  type RecoverFrom,
  type RecoverResult,
  type PresenceEntry,
  type PresenceState,
  type SessionOptions,
  type SubscribeOptions,
  type TakeResult,
} from '../engine.js';
import { parseMember, parsePresenceCount, parseUserSessions } from './lua/presence.js';
import { list, text, texts } from './replies.js';
import { isClientId, newClientId } from '../client-id.js';
import { ExpiryReports, Sweeper } from './expiry.js';
import { MAX_PAGES, PAGE, scanSet } from './scan.js';
import { makeEntry } from './local-session.js';
import { LocalSessions, SessionFanOut } from './local-sessions.js';
import { Keys, shardEnd } from './keys.js';
import { PatternLogs } from './log.js';
import { PatternKey } from './lua/contract.js';
import { Scripts } from './lua/index.js';
import { addSubscriberArgs, historyArgs, parseAddSubscriber, parseHistory } from './lua/pattern.js';
import {
  createArgs, CreateStatus, dataGetArgs, dataSetArgs, DataSetStatus, deliverArgs, DestroyStatus, parseCreate, parseDataAll,
  parseDataGet, parseDataSet, parseDeliver, parseDestroy, parseStats, parseStatus, parseSubscribeCheck, parseSubscribeCommit,
  parseSubscriptions, parseTouchOrAdopt, parseUnsubscribe, subscribeCheckArgs, SubscribeCheckStatus, subscribeCommitArgs,
  SubscribeCommitStatus, subscriptionsArgs, touchOrAdoptArgs, unsubscribeArgs, type SubscribeCommitReply,
} from './lua/session.js';
import { DataLossWatch, type DataLoss } from './markers.js';
import { NodeReports } from './nodes.js';
import { checkChannelLogs, resolveOptions, type RedisEngineOptions, type RedisEngineSource, type ResolvedOptions } from './options.js';
import { CallOrder } from './order.js';
import { LazyPositions } from './positions.js';
import { Publisher } from './publish.js';
import { Runner } from './runner.js';
import { SessionScripts } from './session-scripts.js';
import { EngineSettings, HostLink } from './settings.js';
import { Wakes } from './wakes.js';

export class RedisEngine implements Engine {
  readonly #options: ResolvedOptions;
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #nodeId = newClientId();
  readonly #settings: EngineSettings;
  readonly #host: HostLink;
  readonly #scripts: SessionScripts;
  #opened = false;
  #opening: Promise<void> | undefined;
  #closed = false;
  /** Publishes, delivers and loads, applied here in the order they were called. */
  readonly #order = new CallOrder();
  readonly #logs: PatternLogs;
  readonly #publisher: Publisher;
  readonly #positions: LazyPositions;
  readonly #sessions: LocalSessions;
  readonly #expiry: ExpiryReports;
  readonly #sweeper: Sweeper;
  readonly #reports: NodeReports;
  readonly #dataLoss: DataLossWatch;
  readonly #onNodeMessage = (message: string) => {
    if (!this.#closed) this.#sessions.nodeMessage(message);
  };

  /**
   * @param source `{ url }`, `{ client }` or `{ cluster: { rootNodes } }` (see {@link RedisEngineSource}).
   * @param options see {@link RedisEngineOptions}; unknown options throw a `TypeError`.
   */
  constructor(source: RedisEngineSource, options: RedisEngineOptions = {}) {
    if (source === null || typeof source !== 'object') {
      throw new TypeError('RedisEngine needs { url }, { client } or { cluster: { rootNodes } }');
    }
    // Every part gets the parts it uses in its constructor, in this order:
    // nothing is wired through a closure or set after construction (DESIGN.md, "Wiring").
    const options_ = resolveOptions(options);
    checkChannelLogs(source, options_, 'RedisEngine');
    this.#options = options_;
    const runner = new Runner(source, options_);
    const keys = new Keys(options_.prefix);
    const settings = new EngineSettings(options_);
    const host = new HostLink((message) => runner.log('warn', message));
    this.#runner = runner;
    this.#keys = keys;
    this.#settings = settings;
    this.#host = host;
    this.#scripts = new SessionScripts(runner, keys);
    const wakes = new Wakes(host, this.#order);
    // Publish ids start with this node's prefix: its own announcements are told apart.
    const ownPrefix = `${randomBytes(6).toString('base64url')}.`;
    const shard = options_.channelLogs === 'shard';
    this.#logs = new PatternLogs(runner, keys, new SessionFanOut(settings, wakes), ownPrefix, shard);
    this.#publisher = new Publisher(runner, keys, this.#logs, this.#order, settings, ownPrefix, shard);
    const logs = this.#logs;
    const seen = { node: this.#nodeId, last: () => logs.shardLast?.id, retention: () => settings.retention };
    this.#positions = new LazyPositions(runner, keys, shard ? seen : undefined);
    this.#expiry = new ExpiryReports(runner, keys, host);
    this.#sessions = new LocalSessions({
      runner,
      keys,
      scripts: this.#scripts,
      logs: this.#logs,
      order: this.#order,
      wakes,
      positions: this.#positions,
      settings,
      expiry: this.#expiry,
      nodeId: this.#nodeId,
    });
    this.#sweeper = new Sweeper(runner, keys, options_, settings, this.#sessions, this.#expiry);
    this.#reports = new NodeReports(runner, keys, this.#nodeId, this.#sessions, options_.channelLogs);
    this.#dataLoss = new DataLossWatch(runner, keys);
  }

  /** This node's id: the suffix of its notification channel. */
  get nodeId(): string {
    return this.#nodeId;
  }

  /**
   * The times this node found Redis, or a Cluster primary, without its
   * data (restarted empty), checked every 2 s (markers.ts): `count`, and
   * the `last` one (`at` ms since the epoch, `where` the primary's
   * `host:port` or '' for one Redis, `restored` subscriptions this node
   * put back). For health checks and alerts.
   */
  get dataLoss(): DataLoss {
    return this.#dataLoss.report;
  }

  /** A subscribe script's KEYS: the pattern's base, then, for a channel logged in the shard, the shard's (whose newest entry starts it). */
  #logKeys(pattern: string): string | string[] {
    const base = this.#keys.patternBase(pattern);
    return this.#logs.inShard(pattern) ? [base, this.#keys.shardBase()] : base;
  }

  /** Where a subscription starts, from the newest entry of its log as a script read it (the shard's: its last publish). */
  #startOf(pattern: string, last: string): string {
    return this.#logs.inShard(pattern) ? shardEnd(last) : last;
  }

  async open(host: EngineHost, config: EngineConfig): Promise<void> {
    if (this.#opened) throw new Error('RedisEngine: open() called twice');
    if (this.#opening) throw new Error('RedisEngine: open() called while opening');
    if (this.#closed) throw new Error('RedisEngine: open() called after close()');
    this.#host.host = host;
    this.#settings.configure(config);
    const opening = (async () => {
      await this.#runner.open(this.#options.logger ?? config.logger, {
        resubscribed: () => {
          this.#sessions.resubscribed();
          void this.#dataLoss.check();
        },
      });
      try {
        // Every node of a prefix lays channel logs out alike (`channelLogs`), or publishes would not reach across.
        await this.#reports.check();
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
    this.#scripts.opened();
    this.#sweeper.start(config.sweepInterval);
    this.#reports.start();
    this.#dataLoss.start();
    this.#positions.start(this.#options.positionFlush);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sweeper.stop();
    this.#dataLoss.stop();
    await this.#reports.stop();
    this.#positions.stop();
    // What WebSocket pushes took is written before the connections go, after a flush under way.
    await this.#positions.flushAll().catch(() => undefined);
    this.#sessions.clear();
    this.#logs.clear();
    await this.#runner.close();
  }

  /** The form of the ids this engine issues ({@link newClientId}): checked by the Server before any call. */
  isClientId(clientId: string): boolean {
    return isClientId(clientId);
  }

  async createSession(options: SessionOptions): Promise<string> {
    this.#settings.retain(options.ttl);
    const data: string[] = [];
    let size = 0;
    for (const [key, value] of options.data ?? []) {
      data.push(key, value, String(key.length + value.length));
      size += key.length + value.length;
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const id = newClientId();
      const ttl = Math.max(0, options.ttl);
      const created = parseCreate(await this.#runner.run(Scripts.create, this.#keys.bucket(id), createArgs(
        this.#keys.nodeChannelPrefix, id, options.ack, ttl, this.#nodeId, size, options.user, data,
      )));
      if (created === CreateStatus.Created) {
        this.#sessions.created(id, options.ack, Date.now() + ttl);
        return id;
      }
    }
    throw new Error('RedisEngine: could not create a unique session id');
  }

  /**
   * Always asks Redis, even for a session this node holds: a session
   * ended on another node must be refused at once (`cometd.disconnect`
   * resolves before the holder hears of it on its node channel).
   */
  async exists(clientId: string): Promise<boolean> {
    return this.#checkLive(clientId, parseStatus(await this.#scripts.run(Scripts.exists, clientId, [])));
  }

  async touch(clientId: string, ttl: number): Promise<boolean> {
    this.#settings.retain(ttl);
    const ms = String(Math.max(0, ttl));
    const local = this.#sessions.get(clientId);
    const reply = parseTouchOrAdopt(await this.#scripts.run(Scripts.touchOrAdopt, clientId, touchOrAdoptArgs(ms, this.#nodeId, !local, PAGE, this.#positions.seenPrefix)));
    if (!this.#checkLive(clientId, reply.status)) return false;
    await this.#sessions.touched(clientId, reply, local, Date.now() + Math.max(0, ttl));
    return true;
  }

  async destroy(clientId: string): Promise<boolean> {
    const status = parseDestroy(await this.#scripts.run(Scripts.destroy, clientId, []));
    if (status !== DestroyStatus.Destroyed && status !== DestroyStatus.DestroyedWithGrave) {
      this.#checkLive(clientId, status);
      return false;
    }
    this.#sessions.forget(clientId);
    if (status === DestroyStatus.DestroyedWithGrave) await this.#expiry.bury(clientId);
    return true;
  }

  async subscribe(clientId: string, pattern: string, options?: SubscribeOptions): Promise<boolean> {
    const check = parseSubscribeCheck(await this.#scripts.run(Scripts.subscribeCheck, clientId, subscribeCheckArgs(pattern, this.#settings.maxSubscriptions)));
    if (check === SubscribeCheckStatus.AlreadySubscribed) return true;
    if (check === SubscribeCheckStatus.Limit) throw this.#subscriptionLimit();
    if (check !== SubscribeCheckStatus.May) {
      this.#checkLive(clientId, check);
      return false;
    }
    const presence = options?.presence;
    const added = parseAddSubscriber(await this.#runner.run(Scripts.addSubscriber, this.#logKeys(pattern), addSubscriberArgs(clientId, presence)));
    const position = this.#startOf(pattern, added.position);
    const joined = added.joined;
    let reply: SubscribeCommitReply;
    try {
      reply = parseSubscribeCommit(await this.#scripts.run(Scripts.subscribeCommit, clientId, subscribeCommitArgs(pattern, position, this.#settings.maxSubscriptions, this.#nodeId, this.#positions.seenPrefix)));
    } catch (err) {
      await this.#expiry.removeSubscriber(pattern, clientId, false).catch(() => undefined);
      throw err;
    }
    const status = reply.status;
    if (status !== SubscribeCommitStatus.Done) {
      await this.#expiry.removeSubscriber(pattern, clientId, false);
      if (status === SubscribeCommitStatus.Limit) throw this.#subscriptionLimit();
      this.#checkLive(clientId, status);
      return false;
    }
    if (reply.added) this.#sessions.subscribed(clientId, reply.gen, pattern, position);
    if (joined > 0 && presence) this.#host.presence({ type: 'join', channel: pattern, clientId, ...presence, version: joined });
    return true;
  }

  /**
   * See `Engine.recover`. One script on the channel's slot (HISTORY) adds
   * the session to the channel's subscribers, reads the log's newest id and
   * the kept messages in one step; it is sent at once, after this tick's
   * publishes so far, so publishes called before come in the recovery and
   * publishes called after through the subscription. The messages are then
   * delivered to the session (DELIVER: its box, and a `b` message to its
   * holder, on any node), then the subscription is committed from the log
   * position read (SUBSCRIBE_COMMIT: an `s` message to the holder, which
   * catches up from there): the holder queues the recovered messages before
   * anything newer on the channel.
   */
  async recover(clientId: string, channel: string, from: RecoverFrom, history: HistorySettings, options?: SubscribeOptions): Promise<RecoverResult | null> {
    this.#publisher.flush();
    const start = 'last' in from ? { newest: Math.max(0, Math.floor(from.last)) } : { after: from };
    const presence = options?.presence;
    const reading = this.#runner.run(Scripts.history, this.#logKeys(channel), historyArgs(history.size, history.ttl, this.#settings.historyBytes, clientId, start, presence));
    const checking = this.#scripts.run(Scripts.subscribeCheck, clientId, subscribeCheckArgs(channel, this.#settings.maxSubscriptions));
    const [read, check] = await Promise.allSettled([reading, checking]);
    if (read.status === 'rejected' || check.status === 'rejected') {
      // The session may have been added: it is removed, as a failed subscribe does.
      if (check.status !== 'fulfilled' || parseSubscribeCheck(check.value) !== SubscribeCheckStatus.AlreadySubscribed) {
        await this.#expiry.removeSubscriber(channel, clientId, false).catch(() => undefined);
      }
      throw read.status === 'rejected' ? read.reason : (check as PromiseRejectedResult).reason;
    }
    const kept = parseHistory(read.value);
    const reply = kept.last === '' ? kept : { ...kept, last: this.#startOf(channel, kept.last) };
    const status = parseSubscribeCheck(check.value);
    if (status !== SubscribeCheckStatus.May && status !== SubscribeCheckStatus.AlreadySubscribed) {
      await this.#expiry.removeSubscriber(channel, clientId, false);
      if (status === SubscribeCheckStatus.Limit) throw this.#subscriptionLimit();
      this.#checkLive(clientId, status);
      return null;
    }
    const recovered = 'last' in from || reply.recovered;
    const texts = recovered ? reply.texts : [];
    const delivered = await Promise.all(texts.map((text) => this.deliver(clientId, text)));
    if (delivered.includes(false)) {
      await this.#expiry.removeSubscriber(channel, clientId, false);
      return null;
    }
    if (status === SubscribeCheckStatus.May) {
      let commit: SubscribeCommitReply;
      try {
        commit = parseSubscribeCommit(await this.#scripts.run(Scripts.subscribeCommit, clientId, subscribeCommitArgs(channel, reply.last, this.#settings.maxSubscriptions, this.#nodeId, this.#positions.seenPrefix)));
      } catch (err) {
        await this.#expiry.removeSubscriber(channel, clientId, false).catch(() => undefined);
        throw err;
      }
      if (commit.status !== SubscribeCommitStatus.Done) {
        await this.#expiry.removeSubscriber(channel, clientId, false);
        if (commit.status === SubscribeCommitStatus.Limit) throw this.#subscriptionLimit();
        this.#checkLive(clientId, commit.status);
        return null;
      }
      if (commit.added) this.#sessions.subscribed(clientId, commit.gen, channel, reply.last);
    }
    if (reply.joined > 0 && presence) this.#host.presence({ type: 'join', channel, clientId, ...presence, version: reply.joined });
    return { recovered, epoch: reply.epoch, offset: reply.offset, missed: texts.length };
  }

  /** See `Engine.history`: one HISTORY script on the channel's slot. */
  async history(channel: string, history: HistorySettings, query: HistoryQuery): Promise<HistoryRead> {
    const start = query.since === undefined ? { newest: query.limit } : { since: query.since, limit: query.limit };
    const reply = parseHistory(await this.#runner.run(Scripts.history, this.#keys.patternBase(channel), historyArgs(history.size, history.ttl, this.#settings.historyBytes, '', start)));
    return { epoch: reply.epoch, offset: reply.offset, messages: reply.texts };
  }

  async unsubscribe(clientId: string, pattern: string): Promise<boolean> {
    const reply = parseUnsubscribe(await this.#scripts.run(Scripts.unsubscribe, clientId, unsubscribeArgs(pattern, this.#nodeId)));
    if (!this.#checkLive(clientId, reply.status)) return false;
    if (reply.removed) {
      await this.#expiry.removeSubscriber(pattern, clientId);
      this.#sessions.unsubscribed(clientId, pattern);
    }
    return true;
  }

  async subscriptions(clientId: string): Promise<string[]> {
    const patterns: string[] = [];
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = parseSubscriptions(await this.#scripts.run(Scripts.subscriptions, clientId, subscriptionsArgs(cursor, PAGE)));
      if (!this.#checkLive(clientId, reply.status)) return [];
      cursor = reply.cursor;
      patterns.push(...reply.patterns);
      if (cursor === '0') break;
    }
    return [...new Set(patterns)];
  }

  /** See `Engine.presence`: HSCAN of the channel's `:pc`, up to `limit`. */
  async presence(channel: string, limit: number): Promise<PresenceEntry[]> {
    const key = this.#keys.patternBase(channel) + PatternKey.PresenceClients;
    const out: PresenceEntry[] = [];
    // HSCAN may return a field twice across pages.
    const seen = new Set<string>();
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES && out.length < limit; page++) {
      // Asks for no more than is still wanted: the limit bounds Redis's work too (COUNT is a hint).
      const count = Math.max(1, Math.min(PAGE, limit - out.length));
      const reply = list(await this.#runner.command(key, ['HSCAN', key, cursor, 'COUNT', String(count)]));
      cursor = text(reply[0]);
      const flat = texts(reply[1]);
      for (let i = 0; i + 1 < flat.length && out.length < limit; i += 2) {
        const clientId = flat[i] as string;
        if (seen.has(clientId)) continue;
        seen.add(clientId);
        out.push({ clientId, ...parseMember(flat[i + 1] as string) });
      }
      if (cursor === '0') break;
    }
    return out;
  }

  /** See `Engine.presenceCount`: one PRESENCE_COUNT script on the channel's slot. */
  async presenceCount(channel: string): Promise<PresenceState> {
    return parsePresenceCount(await this.#runner.run(Scripts.presenceCount, this.#keys.patternBase(channel), []));
  }

  /** See `Engine.userSessions`: USER_SESSIONS on every bucket (a user's sessions are spread over them). */
  async userSessions(user: string): Promise<string[]> {
    const replies = await Promise.all(this.#keys.buckets().map((bucket) =>
      this.#runner.run(Scripts.userSessions, bucket, [this.#keys.nodeChannelPrefix, user])));
    return replies.flatMap(parseUserSessions);
  }

  subscribers(pattern: string): Promise<string[]> {
    return scanSet(this.#runner, this.#keys.patternBase(pattern) + PatternKey.Subs);
  }

  async getSessionData(clientId: string, key: string): Promise<string | undefined | null> {
    const reply = parseDataGet(await this.#scripts.run(Scripts.dataGet, clientId, dataGetArgs(key)));
    if (!this.#checkLive(clientId, reply.status)) return null;
    return reply.value;
  }

  async setSessionData(clientId: string, key: string, value: string | undefined): Promise<boolean> {
    const size = key.length + (value?.length ?? 0);
    const status = parseDataSet(await this.#scripts.run(Scripts.dataSet, clientId, dataSetArgs(key, value, this.#settings.maxSessionDataBytes, size)));
    if (status === DataSetStatus.OverMax) {
      throw new EngineLimitError('maxSessionDataBytes', `a session may hold at most ${this.#settings.maxSessionDataBytes} characters of data`);
    }
    if (status === DataSetStatus.Set) return true;
    this.#checkLive(clientId, status);
    return false;
  }

  async allSessionData(clientId: string): Promise<Map<string, string> | null> {
    const reply = parseDataAll(await this.#scripts.run(Scripts.dataAll, clientId, []));
    if (!this.#checkLive(clientId, reply.status)) return null;
    return reply.data;
  }

  /**
   * On one Redis, {@link publish} refuses a publisher that is not a live
   * session (`PublishOptions.publisher`) in its script. Not on a Cluster:
   * the session's keys are in another slot than the script's, and a check
   * before the publish would let a later call overtake it.
   */
  get checksPublisher(): boolean {
    return !this.#runner.isCluster;
  }

  publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number> {
    return this.#publisher.publish(patterns, message, options);
  }

  async deliver(clientId: string, message: string): Promise<boolean> {
    // Publishes called before it reach Redis before it.
    this.#publisher.flush();
    const reply = parseDeliver(await this.#order.ordered(this.#scripts.run(Scripts.deliver, clientId, deliverArgs(message, this.#settings.logLength, this.#nodeId, this.#settings.logBytes))));
    if (!this.#checkLive(clientId, reply.status)) return false;
    if (reply.held) await this.#sessions.delivered(clientId, reply.prev, makeEntry('', reply.id, message, '', undefined));
    return true;
  }

  async take(clientId: string, ack?: number): Promise<TakeResult | null> {
    return this.#sessions.take(clientId, typeof ack === 'number' && Number.isFinite(ack) ? Math.floor(ack) : undefined);
  }

  /**
   * {@link take} for the WebSocket pushes of a tick. A session held here
   * without acks is taken from memory: its new positions are written to
   * Redis by the next flush (every `positionFlush` ms, all sessions at
   * once), not one script per session and push.
   */
  takeMany(clientIds: readonly string[]): Promise<Array<TakeResult | null>> {
    return this.#sessions.takeMany(clientIds);
  }

  /**
   * A session's WebSocket on this node closed: the positions its pushes
   * reached are written now, not at the next flush, so a node that takes
   * it over does not send them again.
   */
  detached(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session) this.#positions.soon(session);
  }

  /** The nodes that reported in the last few seconds (each reports every 2 s). */
  nodes(): Promise<EngineNode[]> {
    return this.#reports.list();
  }

  async stats(): Promise<EngineStats> {
    const replies = await Promise.all(this.#keys.buckets().map((bucket) => this.#runner.run(Scripts.stats, bucket, [this.#keys.nodeChannelPrefix])));
    let sessions = 0;
    let subscriptions = 0;
    for (const reply of replies) {
      const bucket = parseStats(reply);
      sessions += bucket.sessions;
      subscriptions += bucket.subscriptions;
    }
    return { sessions, subscriptions: Math.max(0, subscriptions) };
  }

  // ------------------------------------------------------------------------- helpers

  #checkLive(clientId: string, status: number): boolean {
    return this.#sessions.checkLive(clientId, status);
  }

  #subscriptionLimit(): EngineLimitError {
    return new EngineLimitError('maxSubscriptions', `a session may hold at most ${this.#settings.maxSubscriptions} subscriptions`);
  }
}
