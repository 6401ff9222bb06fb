/**
 * The connection to Redis and the command runner: one client (or a
 * cluster client) for commands, one for Pub/Sub; scripts run with EVALSHA;
 * a single watchdog timer fails the commands that waited longer than
 * `commandTimeout`; outages are logged once each way; credentials are
 * scrubbed from every message.
 */
import { EngineUnavailableError, type EngineLogger } from '../engine.js';
import { describeError, isErrorReply, text, TRANSIENT_REPLIES } from './replies.js';
import { passwordOf, redactUrl } from './redact.js';
import type { Script } from './lua/index.js';
import type { RedisClientLike, RedisClusterLike, RedisEngineSource, ResolvedOptions } from './options.js';
import { nodeRedis } from './node-redis.js';
import { withDeadline } from '../../util/deadline.js';

/** A command in flight, for the commandTimeout watchdog. */
interface Pending {
  /** The watchdog's tick count when it was sent. */
  readonly tick: number;
  readonly reject: (err: unknown) => void;
}

type Listener = (message: string, channel: string) => void;

export interface RunnerEvents {
  /** The Pub/Sub connection is back after a loss: notifications may have been missed. */
  resubscribed(): void;
}

export class Runner {
  readonly #options: ResolvedOptions;
  readonly #source: RedisEngineSource;
  /** Where, for messages: the redacted URL, or 'Redis'. */
  readonly where: string;
  readonly #secrets: string[];
  readonly #ownsClient: boolean;
  #client: RedisClientLike | undefined;
  #cluster: RedisClusterLike | undefined;
  #subscriber: RedisClientLike | undefined;
  #logger: EngineLogger | undefined;
  #events: RunnerEvents | undefined;
  readonly #pending = new Set<Pending>();
  #watchdog: NodeJS.Timeout | undefined;
  #ticks = 0;
  #watchTicks = 0;
  #stalled = false;
  /** Scripts sent with EVAL on the current connection (one client only). */
  readonly #loaded = new Set<string>();
  #closed = false;
  /** open() succeeded (and close() was not called since). */
  #opened = false;
  #up = false;
  #lastError: string | undefined;
  #subscriberWasReady = false;
  /** Counts open() calls. */
  #openToken = 0;
  /** Whether Redis has sharded Pub/Sub (7.0 or later). */
  sharded = false;

  readonly #onClientError = (err: unknown) => this.#down(err);
  readonly #onClientReady = () => {
    this.#stalled = false;
    this.#loaded.clear();
    this.#back();
  };
  readonly #onWatchdog = () => this.#watch();
  readonly #checkPending = () => this.#timeOutPending();
  readonly #onSubscriberReady = () => this.#subscriberReady();

  constructor(source: RedisEngineSource, options: ResolvedOptions) {
    this.#options = options;
    this.#source = source;
    if ('client' in source && source.client) {
      this.#ownsClient = false;
      this.where = 'Redis';
      this.#secrets = [];
    } else if ('url' in source && typeof source.url === 'string' && source.url) {
      this.#ownsClient = true;
      this.where = redactUrl(source.url);
      this.#secrets = passwordOf(source.url);
    } else if ('cluster' in source && source.cluster && Array.isArray(source.cluster.rootNodes) && source.cluster.rootNodes.length > 0) {
      this.#ownsClient = true;
      const urls = (source.cluster.rootNodes as ReadonlyArray<{ url: unknown }>).map((n) => String(n.url));
      this.where = `Redis Cluster ${urls.map(redactUrl).join(',')}`;
      this.#secrets = urls.flatMap(passwordOf);
    } else {
      throw new TypeError('RedisEngine needs { url } (a non-empty string), { client } or { cluster: { rootNodes: [{ url }] } }');
    }
  }

  get isCluster(): boolean {
    return 'cluster' in this.#source;
  }

  /** A cluster's primaries (`host:port`), as the client knows them now; `['']` for one Redis. */
  primaries(): string[] {
    if (!this.#cluster) return [''];
    try {
      return this.#cluster.masters.map((m) => m.address);
    } catch {
      return [];
    }
  }

  /** The primary (`host:port`) serving a slot; '' for one Redis; undefined when not known now. */
  primaryOf(slot: number): string | undefined {
    if (!this.#cluster) return '';
    try {
      return this.#cluster.getSlotMaster(slot)?.address;
    } catch {
      return undefined;
    }
  }

  /** Connect; rejects with EngineUnavailableError. After a rejection, open() may be called again. */
  async open(logger: EngineLogger | undefined, events: RunnerEvents): Promise<void> {
    this.#logger = logger;
    this.#events = events;
    this.#closed = false;
    // An attempt abandoned by a failed open() may resume later: it must not touch a newer one.
    const token = ++this.#openToken;
    const abandoned = () => this.#closed || token !== this.#openToken;
    const maxDelay = this.#options.reconnectMaxDelay;
    const socket = {
      connectTimeout: Math.min(this.#options.openTimeout, 5000),
      reconnectStrategy: (retries: number) => {
        const delay = Math.min(50 * 2 ** Math.min(retries, 16), maxDelay);
        return Math.round(delay * (1 + Math.random() * 0.1));
      },
    };
    // Not an outage: a missing package is said as it is, not retried as Redis being down.
    const redis = 'client' in this.#source ? undefined : await nodeRedis();
    let connectClient = false;
    try {
      await this.#withOpenTimeout(async () => {
        if ('cluster' in this.#source) {
          const { rootNodes, ...rest } = this.#source.cluster;
          // `redis` is loaded above for every source but { client }.
          const cluster = redis!.createCluster({
            ...rest,
            rootNodes: rootNodes.map((n) => ({ url: n.url })),
            defaults: { socket, disableOfflineQueue: true },
          }) as unknown as RedisClusterLike;
          this.#cluster = cluster;
          cluster.on('error', this.#onClientError);
          await cluster.connect();
          if (abandoned()) {
            cluster.destroy();
            return;
          }
          this.sharded = true;
          this.#up = true;
          return;
        }
        let client: RedisClientLike;
        if ('client' in this.#source) {
          client = this.#source.client;
        } else {
          // `redis` is loaded above for every source but { client }.
          client = redis!.createClient({ url: this.#source.url, disableOfflineQueue: true, socket });
        }
        this.#client = client;
        client.on('error', this.#onClientError);
        client.on('ready', this.#onClientReady);
        const subscriber = client.duplicate();
        this.#subscriber = subscriber;
        subscriber.on('error', this.#onClientError);
        subscriber.on('ready', this.#onSubscriberReady);
        connectClient = !client.isOpen;
        if (connectClient) await client.connect();
        if (abandoned()) return;
        await subscriber.connect();
        if (abandoned()) {
          if (subscriber.isOpen) destroyForGood(subscriber);
          return;
        }
        const info = text(await client.sendCommand(['INFO', 'server']));
        const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? '0');
        this.sharded = major >= 7;
        this.#up = true;
      });
    } catch (err) {
      if (connectClient && !this.#ownsClient && this.#client?.isOpen) this.#client.destroy();
      await this.close();
      throw this.unavailable(err, 'could not connect');
    }
    if (this.#closed) throw new EngineUnavailableError(`Redis engine is closed (${this.where})`);
    this.#opened = true;
    if (this.#options.commandTimeout > 0) {
      const every = Math.min(250, Math.max(5, Math.floor(this.#options.commandTimeout / 4)));
      this.#watchTicks = Math.ceil(this.#options.commandTimeout / every);
      this.#watchdog = setInterval(this.#onWatchdog, every);
      this.#watchdog.unref();
    }
  }

  /** Drop the connections (the ones the engine made; a client you passed stays open). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#opened = false;
    this.#up = false;
    this.#subscriberWasReady = false;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) {
      subscriber.off('ready', this.#onSubscriberReady);
      if (subscriber.isOpen) destroyForGood(subscriber);
    }
    const cluster = this.#cluster;
    this.#cluster = undefined;
    if (cluster) {
      try {
        await withTimeout(cluster.close(), 1000);
      } catch {
        try {
          cluster.destroy();
        } catch {
          // already closed
        }
      }
    }
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.off('ready', this.#onClientReady);
      if (this.#ownsClient) {
        if (client.isOpen) {
          if (client.isReady) {
            const closed = await withTimeout(client.close(), 1000).then(() => true, () => false);
            if (!closed && client.isOpen) client.destroy();
          } else {
            destroyForGood(client);
          }
        }
      } else {
        client.off('error', this.#onClientError);
      }
    }
    for (const pending of this.#pending) pending.reject(new EngineUnavailableError(`Redis engine is closed (${this.where})`));
    this.#pending.clear();
  }

  /**
   * Run a script on the slot of `key` (KEYS[1]). Several keys only on a
   * single Redis, or when they share a slot: the first one routes it.
   */
  async run(script: Script, key: string | readonly string[], args: readonly string[]): Promise<unknown> {
    const keys = typeof key === 'string' ? [key] : key;
    const first = keys[0] as string;
    const tail = [String(keys.length), ...keys, ...args];
    if (this.#cluster) {
      const cluster = this.#cluster;
      this.#ready();
      return this.#guard(async () => {
        try {
          return await this.#send((a) => cluster.sendCommand(first, false, a), ['EVALSHA', script.sha, ...tail]);
        } catch (err) {
          if (!isErrorReply(err) || !err.message.startsWith('NOSCRIPT')) throw err;
          return await this.#send((a) => cluster.sendCommand(first, false, a), ['EVAL', script.source, ...tail]);
        }
      });
    }
    const client = this.#ready();
    const loaded = this.#loaded.has(script.sha);
    if (!loaded) this.#loaded.add(script.sha);
    return this.#guard(async () => {
      const send = (a: readonly string[]) => client.sendCommand(a);
      try {
        return await this.#send(send, loaded ? ['EVALSHA', script.sha, ...tail] : ['EVAL', script.source, ...tail]);
      } catch (err) {
        // Redis lost its script cache under this connection (SCRIPT FLUSH): load the script again.
        if (!loaded || !isErrorReply(err) || !err.message.startsWith('NOSCRIPT')) throw err;
        return await this.#send(send, ['EVAL', script.source, ...tail]);
      }
    });
  }

  /** One plain command on the slot of `key`. */
  async command(key: string, args: readonly string[], readonly = false): Promise<unknown> {
    if (this.#cluster) {
      const cluster = this.#cluster;
      this.#ready();
      return this.#guard(() => this.#send((a) => cluster.sendCommand(key, readonly, a), args));
    }
    const client = this.#ready();
    return this.#guard(() => this.#send((a) => client.sendCommand(a), args));
  }

  /** Listen on a plain channel (this node's own). */
  async subscribe(channel: string, listener: Listener): Promise<void> {
    const target = this.#cluster ?? this.#subscriber;
    if (!target) throw new EngineUnavailableError(`Redis engine is closed (${this.where})`);
    try {
      await this.#bounded(target.subscribe(channel, listener));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** Listen on a pattern's channel: sharded Pub/Sub where Redis has it. */
  async subscribePattern(channel: string, listener: Listener): Promise<void> {
    const target = this.#cluster ?? this.#subscriber;
    if (!target) throw new EngineUnavailableError(`Redis engine is closed (${this.where})`);
    try {
      if (this.sharded) await this.#bounded(target.sSubscribe(channel, listener));
      else await this.#bounded(target.subscribe(channel, listener));
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  async unsubscribePattern(channel: string): Promise<void> {
    const target = this.#cluster ?? this.#subscriber;
    if (!target) return;
    try {
      if (this.sharded) await target.sUnsubscribe(channel);
      else await (target as RedisClientLike & { unsubscribe(channel: string): Promise<void> }).unsubscribe(channel);
    } catch {
      // Gone with the connection; notifications for it are ignored anyway.
    }
  }

  /** Connected, and Redis has not stopped answering. */
  get healthy(): boolean {
    return this.ready && !this.#stalled;
  }

  /** Whether commands can be sent now. */
  get ready(): boolean {
    if (this.#closed) return false;
    if (this.#cluster) return this.#cluster.isOpen;
    return this.#client?.isReady === true;
  }

  unavailable(err: unknown, what = 'unavailable'): EngineUnavailableError {
    if (err instanceof EngineUnavailableError) return err;
    return new EngineUnavailableError(`Redis ${what} (${this.where}): ${this.scrub(describeError(err))}`);
  }

  /** Remove anything that looks like a password from a message. */
  scrub(message: string): string {
    let result = message;
    for (const secret of this.#secrets) result = result.split(secret).join('***');
    return result;
  }

  /**
   * A background operation failed (a log read, a position write, a box
   * read): logged with passwords scrubbed. An outage is not: it is logged
   * once when the connection goes and once when it returns.
   */
  failed(what: string, err: unknown): void {
    if (err instanceof EngineUnavailableError) return;
    this.log('warn', `express-bayeux: Redis engine failed ${what}: ${this.scrub(describeError(err))}`);
  }

  log(level: 'warn' | 'info', message: string): void {
    const logger = this.#logger;
    try {
      if (!logger) console.warn(message);
      else if (level === 'info' && logger.info) logger.info(message);
      else logger.warn(message);
    } catch {
      // a broken logger must not break the engine
    }
  }

  // -------------------------------------------------------------------------

  /** A Pub/Sub command waits at most commandTimeout, like any other. */
  #bounded<T>(promise: Promise<T>): Promise<T> {
    const ms = this.#options.commandTimeout;
    if (ms <= 0) return promise;
    return withTimeout(promise, ms).catch((err: unknown) => {
      throw err instanceof Error && err.message === 'timeout' ? new Error(`no answer within ${ms} ms`) : err;
    });
  }

  #ready(): RedisClientLike {
    if (this.#closed) throw new EngineUnavailableError(`Redis engine is closed (${this.where})`);
    if (this.#cluster) {
      if (this.#stalled) throw this.unavailable(new Error(`no answer within ${this.#options.commandTimeout} ms; waiting for Redis to answer again`));
      return undefined as unknown as RedisClientLike;
    }
    const client = this.#client;
    if (!client) throw new EngineUnavailableError(`Redis engine is not open (${this.where})`);
    if (!client.isReady) throw this.unavailable(new Error(this.#lastError ? `not connected (${this.#lastError})` : 'not connected'));
    if (this.#stalled) throw this.unavailable(new Error(`no answer within ${this.#options.commandTimeout} ms; waiting for Redis to answer again`));
    return client;
  }

  async #guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      if (isErrorReply(err)) {
        const code = /^[A-Z]+/.exec(err.message)?.[0] ?? '';
        // No `cause`: the reply may name the password this message is scrubbed of.
        // eslint-disable-next-line preserve-caught-error
        if (!TRANSIENT_REPLIES.has(code)) throw new Error(`Redis engine: ${this.scrub(err.message)}`);
      }
      throw this.unavailable(err);
    }
  }

  /** One command, with the commandTimeout watched by the shared watchdog. */
  #send(sender: (args: readonly string[]) => Promise<unknown>, args: readonly string[]): Promise<unknown> {
    const sent = sender(args);
    if (this.#watchdog === undefined) return sent;
    return new Promise((resolve, reject) => {
      const pending: Pending = { tick: this.#ticks, reject };
      this.#pending.add(pending);
      sent.then(
        (value) => {
          this.#pending.delete(pending);
          if (this.#stalled) this.#answered();
          resolve(value);
        },
        (err: unknown) => {
          this.#pending.delete(pending);
          if (this.#stalled && isErrorReply(err)) this.#answered();
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the command's own failure, passed on as it came
          reject(err);
        },
      );
    });
  }

  #watch(): void {
    this.#ticks++;
    if (this.#pending.size > 0) setImmediate(this.#checkPending);
  }

  #timeOutPending(): void {
    const limit = this.#ticks - this.#watchTicks;
    for (const pending of this.#pending) {
      if (pending.tick >= limit) break;
      this.#pending.delete(pending);
      if (!this.#stalled) this.#stall();
      pending.reject(this.unavailable(new Error(`no answer within ${this.#options.commandTimeout} ms`)));
    }
  }

  #stall(): void {
    this.#stalled = true;
    this.#lastError = `no answer within ${this.#options.commandTimeout} ms`;
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.log('warn', `express-bayeux: ${this.where} stopped answering (nothing within ${this.#options.commandTimeout} ms); engine operations fail with EngineUnavailableError until it answers again`);
  }

  #answered(): void {
    this.#stalled = false;
    this.#back();
  }

  async #withOpenTimeout(connect: () => Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const attempt = connect();
    attempt.catch(() => {});
    try {
      await Promise.race([
        attempt,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no connection within ${this.#options.openTimeout} ms (${this.#lastError ?? 'no answer'})`)),
            this.#options.openTimeout,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  #down(err: unknown): void {
    this.#lastError = this.scrub(describeError(err));
    if (!this.#up || this.#closed) return;
    this.#up = false;
    this.log('warn', `express-bayeux: lost the connection to ${this.where} (${this.#lastError}); engine operations fail with EngineUnavailableError until it is back`);
  }

  #back(): void {
    if (this.#up || this.#closed || !this.#opened) return;
    if (!this.ready) return;
    this.#up = true;
    this.log('info', `express-bayeux: connection to ${this.where} restored`);
  }

  #subscriberReady(): void {
    this.#back();
    if (!this.#subscriberWasReady) {
      this.#subscriberWasReady = true;
      return;
    }
    try {
      this.#events?.resubscribed();
    } catch (err) {
      this.log('warn', `express-bayeux: resynchronizing after a Pub/Sub reconnection failed: ${describeError(err)}`);
    }
  }
}

/**
 * Destroy a client that is not ready. A connection attempt already under
 * way when it is destroyed may still complete afterwards (and then
 * reconnect for ever): destroy it again if it does.
 */
function destroyForGood(client: RedisClientLike): void {
  const again = () => {
    try {
      client.destroy();
    } catch {
      // closed meanwhile
    }
  };
  client.on('error', ignore);
  client.on('ready', again);
  again();
}

function ignore(): void {
  // errors of a client being thrown away
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return withDeadline(promise, ms, () => new Error('timeout'));
}
