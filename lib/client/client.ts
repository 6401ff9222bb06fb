/**
 * BayeuxClient: a Bayeux 1.0 client for browsers and Node.
 *
 * One session at a time. The handshake goes over HTTP; `/meta/connect`,
 * publishes and subscriptions then go over the negotiated transport.
 * Everything the caller sends waits in one ordered queue, which flows while
 * the client is connected and is sent again, in order, after a network
 * failure or a new session. The connect loop keeps one `/meta/connect`
 * outstanding and follows the server's advice.
 */

import { AckTracker } from './ack.js';
import { channelMatches, isMeta, isValidChannel, isValidPattern } from '../protocol/channel.js';
import { IDLE_POLLS_ALLOWED, MAX_ADVICE_INTERVAL, MAX_ADVICE_TIMEOUT, MIN_IDLE_POLL_MS, timerDelay } from './constants.js';
import { TypedEmitter } from './emitter.js';
import { BayeuxClientError, BayeuxError, isThenable, toError } from './errors.js';
import { LongPollingTransport, type FetchFunction } from './long-polling.js';
import type { BayeuxExtension, BayeuxMessage, TransportName } from './message.js';
import { ClientLog, shortId } from './logger.js';
import { resolveOptions, type BayeuxClientOptions, type ResolvedOptions } from './options.js';
import { TimeSync } from './timesync.js';
import { WebSocketTransport, webSocketUrl, type WebSocketConstructor, type WebSocketFactory, type WebSocketLike } from './websocket.js';

/**
 * Where the client is:
 * - `disconnected`: no session (before first use, after `disconnect()`, or
 *   after the server said `reconnect: 'none'`);
 * - `handshaking`: asking the server for a session;
 * - `connected`: a session and a working transport; messages flow;
 * - `reconnecting`: the network failed; retrying with backoff, messages wait;
 * - `disconnecting`: `disconnect()` is sending what was queued and `/meta/disconnect`.
 */
export type ClientState = 'disconnected' | 'handshaking' | 'connected' | 'reconnecting' | 'disconnecting';

/**
 * Why the client left the `connected` state: `client` (`disconnect()` or
 * `reconnect()`), `network` (a request or the socket failed), `session`
 * (the server forgot the session; the client handshakes again by itself),
 * `server` (the server said not to reconnect).
 */
export type DisconnectReason = 'client' | 'network' | 'session' | 'server';

/** The client's events and their listeners' arguments. */
export type BayeuxClientEvents = {
  /** The client has a session and a working transport (after each handshake and each recovery). */
  connected: [info: { clientId: string; transport: TransportName }];
  /** The client left the `connected` state. */
  disconnected: [info: { reason: DisconnectReason; error?: Error }];
  /** Something failed: a refused message, a network failure, a subscriber that threw. */
  error: [error: Error];
  /** The transport in use changed: the first one chosen, a fallback to long-polling, a return to WebSocket. */
  transport: [name: TransportName];
};

/**
 * A subscriber or listener: called with each message's `data` and the whole
 * message. An exception it throws, or a rejection of the promise it returns,
 * is emitted as `error`; with no `error` listener it is thrown again on a
 * later tick, as an `EventEmitter` listener's would be.
 */
export type MessageHandler<T = unknown> = (data: T, message: BayeuxMessage) => void;

/** What `addListener()` returns. */
export interface ChannelListener {
  /** The channel or pattern listened to. */
  readonly channel: string;
  /** False once removed. */
  readonly active: boolean;
  /** Stop this listener (the same as `client.removeListener(listener)`). */
  remove(): void;
}

/** What `subscribe()` resolves with. */
export interface Subscription {
  /** The channel or pattern subscribed to. */
  readonly channel: string;
  /** False once unsubscribed, or when the server refused or the client disconnected. */
  readonly active: boolean;
  /** Stop this handler; the last handler of a channel unsubscribes it on the server. */
  unsubscribe(): Promise<void>;
}

type Kind = 'handshake' | 'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'disconnect';
type Lane = 'handshake' | 'connect' | 'queue';

/** A message on its way: in the queue, or sent and waiting for its reply. */
interface Outgoing {
  /** Queue order. */
  seq: number;
  kind: Kind;
  /** The message without `id` and `clientId`, which are added when it is sent. */
  template: BayeuxMessage;
  /** Sent alone, and nothing else is sent until it is answered (re-subscriptions). */
  barrier: boolean;
  id?: string;
  /** The epoch it was last sent in. */
  epoch?: number;
  /** What `ext.ack` the connect carried. */
  sentAck?: number;
  timer?: ReturnType<typeof setTimeout>;
  /** The server answered. */
  reply(message: BayeuxMessage): void;
  /** It could not be answered: `final` means give up, otherwise it may be sent again. */
  fail(error: Error, final: boolean): void;
}

interface ChannelEntry {
  channel: string;
  subscriptions: Set<ClientSubscription>;
  /** The server has accepted it in the current session (so it is re-subscribed after a new handshake). */
  confirmed: boolean;
  /** The subscribe in flight, if any. */
  pending: Promise<void> | undefined;
}

let fallbackWebSocket: WebSocketFactory | undefined;

/** @internal Used by the Node entry to supply `ws` (with `maxPayload`) when there is no global WebSocket. */
export function setFallbackWebSocket(factory: WebSocketFactory): void {
  fallbackWebSocket = factory;
}

const DEFAULT_ADVICE = { interval: 0, timeout: 60_000 };

/** Clamp a number of ms from the server into 0..max; anything not a finite number is ignored. */
function clampAdvice(value: unknown, max: number): number | undefined {
  if (typeof value !== 'number' || Number.isNaN(value)) return undefined;
  return Math.min(Math.max(value, 0), max);
}

export class BayeuxClient extends TypedEmitter<BayeuxClientEvents> {
  /** The server's URL (http: or https:). */
  readonly url: string;
  readonly #url: URL;
  readonly #options: ResolvedOptions;
  readonly #extensions: BayeuxExtension[];
  readonly #createWebSocket: WebSocketFactory | undefined;
  readonly #lp: LongPollingTransport;
  readonly #ack: AckTracker;
  readonly #timesync: TimeSync | undefined;
  readonly #log: ClientLog;

  #state: ClientState = 'disconnected';
  /** Bumped whenever what is in flight becomes stale: new handshake, network failure, stop. */
  #epoch = 0;
  #clientId: string | undefined;
  /** The transport chosen at the handshake, and the one in use now. */
  #sessionTransport: TransportName = 'long-polling';
  #transport: TransportName | undefined;
  /** The transport last reported with the `transport` event. */
  #announced: TransportName | undefined;
  #ws: WebSocketTransport | undefined;
  #webSocketWorked = false;
  #webSocketBroken = false;
  #offered: string[] = [];
  #advice = { ...DEFAULT_ADVICE };

  #nextId = 0;
  #nextSeq = 0;
  #queue: Outgoing[] = [];
  #inflight = new Map<string, Outgoing>();
  /** A queue batch is being prepared or (long-polling) is waiting for its response. */
  #sending = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #connectPending = false;
  #firstConnect = true;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  /** When the last handshake was sent, and how many came too soon after the one before. */
  #lastHandshakeAt: number | undefined;
  #handshakeAttempt = 0;
  /** Messages delivered so far, and the count and time when the outstanding connect was sent. */
  #delivered = 0;
  #connectMark = { delivered: 0, at: 0 };
  /** Connects in a row that came back quickly with nothing. */
  #idlePolls = 0;

  #listeners = new Set<ClientChannelListener>();

  #channels = new Map<string, ChannelEntry>();
  #waiters: Array<{ resolve(): void; reject(error: Error): void }> = [];
  #disconnecting: Promise<void> | undefined;

  /**
   * @param url The server's Bayeux URL, e.g. `http://127.0.0.1:8080/cometd`
   *   (relative URLs are resolved against the page in a browser).
   * @param options See {@link BayeuxClientOptions}.
   */
  constructor(url: string | URL, options?: BayeuxClientOptions) {
    super();
    this.#options = resolveOptions(options);
    const base = typeof location !== 'undefined' && location && typeof location.href === 'string' ? location.href : undefined;
    try {
      this.#url = new URL(String(url), base);
    } catch {
      throw new TypeError(`Invalid URL: ${String(url)}`);
    }
    if (this.#url.protocol !== 'http:' && this.#url.protocol !== 'https:') {
      throw new TypeError(`The URL must be http: or https:, not ${this.#url.protocol}`);
    }
    this.url = this.#url.href;
    this.#extensions = [...this.#options.extensions];
    const Socket = this.#options.WebSocket
      ?? (typeof globalThis.WebSocket === 'function' ? globalThis.WebSocket as unknown as WebSocketConstructor : undefined);
    this.#createWebSocket = Socket ? function createWebSocket(socketUrl: string): WebSocketLike { return new Socket(socketUrl); } : fallbackWebSocket;
    const fetchFunction: FetchFunction | undefined = this.#options.fetch
      ?? (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) as unknown as FetchFunction : undefined);
    this.#lp = new LongPollingTransport({
      url: this.url,
      fetch: fetchFunction ?? function noFetch() {
        return Promise.reject(new TypeError('No fetch: pass the fetch option'));
      },
      headers: this.#options.headers,
      credentials: this.#options.credentials,
      maxResponseBytes: this.#options.maxResponseBytes,
    });
    this.#ack = new AckTracker(this.#options.ack);
    this.#timesync = this.#options.timesync ? new TimeSync() : undefined;
    this.#log = new ClientLog(this.#options.logger);
  }

  /** Where the client is; see {@link ClientState}. */
  get state(): ClientState {
    return this.#state;
  }

  /** The session id the server gave, while the client has one. */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** The transport in use, while the client has a session. */
  get transport(): TransportName | undefined {
    return this.#transport;
  }

  /** Whether the current session uses the ack extension (the server offered it and `ack` is on). */
  get ackEnabled(): boolean {
    return this.#ack.enabled;
  }

  /**
   * Add an extension (see {@link BayeuxExtension}), e.g. to put an auth token
   * in the handshake's `ext`. Returns a function that removes it.
   */
  use(extension: BayeuxExtension): () => void {
    if (typeof extension !== 'object' || extension === null) throw new TypeError('An extension must be an object');
    this.#extensions.push(extension);
    return () => {
      const index = this.#extensions.indexOf(extension);
      if (index >= 0) this.#extensions.splice(index, 1);
    };
  }

  /**
   * The server's clock now, in ms since the epoch, as estimated by the
   * timesync extension: `Date.now()` plus the measured offset. Without the
   * `timesync` option, or before the server has answered it, the offset is
   * 0 and this is `Date.now()`.
   */
  serverTime(): number {
    return this.#timesync ? this.#timesync.serverTime() : Date.now();
  }

  /**
   * Call `handler` for every message delivered on a channel matching
   * `pattern` (`/a/b`, `/a/*` for one more segment, `/a/**` for one or
   * more), whether the client subscribed to it or the server joined the
   * session to it (`cometd.join(clientId, channel)`). Sends nothing to the
   * server. A message that also matches subscriptions reaches each
   * subscriber and each listener once. Returns a handle whose `remove()`
   * stops it. `/meta/` channels are refused: watch the `connected` and
   * `disconnected` events instead.
   */
  addListener<T = unknown>(pattern: string, handler: MessageHandler<T>): ChannelListener {
    if (typeof handler !== 'function') throw new TypeError('addListener() needs a handler function');
    if (!isValidPattern(pattern)) throw new TypeError(`Invalid channel pattern: ${String(pattern)}`);
    if (isMeta(pattern)) throw new TypeError('addListener() hears delivered messages, not /meta/ replies: use the connected and disconnected events');
    const listener = new ClientChannelListener(pattern, handler as MessageHandler, (removed) => void this.removeListener(removed));
    this.#listeners.add(listener);
    return listener;
  }

  /** Stop a listener returned by {@link addListener}; returns whether it was listening. */
  removeListener(listener: ChannelListener): boolean {
    if (!(listener instanceof ClientChannelListener) || !this.#listeners.delete(listener)) return false;
    listener.deactivate();
    return true;
  }

  /**
   * Handshake (if not done yet) and start the connect loop. Resolves once
   * connected; rejects when the client gives up (the server refused with
   * `reconnect: 'none'`, or `disconnect()` was called). `subscribe()` and
   * `publish()` call this by themselves.
   */
  connect(): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state === 'disconnecting') return Promise.reject(new BayeuxClientError('disconnected', 'The client is disconnecting'));
    const ready = this.#whenConnected();
    this.#start();
    return ready;
  }

  /**
   * Drop the current session and handshake again, subscribing every
   * subscription again. Messages waiting to be sent are kept. Resolves
   * once connected. Like every handshake, one within `maxRetryDelay` of
   * the previous one waits first (see the `retryDelay` option).
   */
  reconnect(): Promise<void> {
    if (this.#state === 'disconnecting') return Promise.reject(new BayeuxClientError('disconnected', 'The client is disconnecting'));
    const ready = this.#whenConnected();
    if (this.#state === 'disconnected') {
      this.#start();
      return ready;
    }
    const wasConnected = this.#state === 'connected';
    const oldClientId = this.#clientId;
    this.#attempt = 0;
    this.#startHandshake();
    if (oldClientId) {
      // Best effort: let the server end the old session now rather than at its timeout.
      this.#lp.send([{ channel: '/meta/disconnect', clientId: oldClientId, id: String(++this.#nextId) }], this.#options.maxNetworkDelay);
    }
    if (wasConnected) this.emit('disconnected', { reason: 'client' });
    return ready;
  }

  /**
   * Subscribe `handler` to a channel or a pattern (`/chat/*`, `/chat/**`).
   * Handshakes on first use. Resolves once the server has accepted the
   * subscription; rejects with a `BayeuxError` when it refuses (or when the
   * channel can never be valid, without asking the server).
   */
  async subscribe<T = unknown>(channel: string, handler: MessageHandler<T>): Promise<Subscription> {
    if (typeof handler !== 'function') throw new TypeError('subscribe() needs a handler function');
    const template: BayeuxMessage = { channel: '/meta/subscribe', subscription: channel };
    if (!isValidPattern(channel)) throw this.#refuse(new BayeuxError(405, 'Invalid channel', [String(channel)]), template);
    if (isMeta(channel)) throw this.#refuse(new BayeuxError(403, 'Forbidden channel', [channel]), template);
    if (this.#state === 'disconnecting') throw new BayeuxClientError('disconnected', 'The client is disconnecting');

    const subscription = new ClientSubscription(channel, handler as MessageHandler, (sub) => this.#removeSubscription(sub));
    let entry = this.#channels.get(channel);
    if (!entry) {
      const created: ChannelEntry = { channel, subscriptions: new Set(), confirmed: false, pending: undefined };
      this.#channels.set(channel, created);
      created.pending = this.#enqueue('subscribe', template).then(
        () => {
          created.pending = undefined;
          if (this.#channels.get(channel) === created) created.confirmed = true;
        },
        (error: unknown) => {
          created.pending = undefined;
          if (this.#channels.get(channel) === created) this.#channels.delete(channel);
          for (const sub of created.subscriptions) sub.deactivate();
          throw error;
        },
      );
      entry = created;
      this.#start();
    }
    entry.subscriptions.add(subscription);
    if (entry.pending) await entry.pending;
    return subscription;
  }

  /**
   * Remove every handler of `channel` (exactly as subscribed, pattern
   * included) and unsubscribe on the server. Resolves on the server's ack.
   */
  async unsubscribe(channel: string): Promise<void> {
    const entry = this.#channels.get(channel);
    if (!entry) return;
    for (const sub of entry.subscriptions) sub.deactivate();
    entry.subscriptions.clear();
    await this.#dropChannel(entry);
  }

  /**
   * Publish `data` to `channel`. Handshakes on first use. Resolves with the
   * server's reply once it has accepted the message (for a `/service/`
   * channel whose handler answers, the reply's `data` is the answer);
   * rejects with a `BayeuxError` when it refuses, or when the channel can
   * never be valid (wildcards, `/meta/`), without asking the server. While
   * offline the message waits (up to `maxQueue`) and is sent in order after
   * reconnecting.
   */
  publish(channel: string, data: unknown): Promise<BayeuxMessage> {
    const template: BayeuxMessage = { channel, data };
    if (!isValidChannel(channel)) return Promise.reject(this.#refuse(new BayeuxError(405, 'Invalid channel', [String(channel)]), template));
    if (isMeta(channel)) return Promise.reject(this.#refuse(new BayeuxError(403, 'Forbidden channel', [channel]), template));
    if (data === undefined) return Promise.reject(new TypeError('publish() needs data (null is fine, undefined is not)'));
    if (this.#state === 'disconnecting') return Promise.reject(new BayeuxClientError('disconnected', 'The client is disconnecting'));
    const reply = this.#enqueue('publish', template);
    this.#start();
    return reply;
  }

  /**
   * Send what is queued, then `/meta/disconnect`, and stop. Subscriptions
   * are forgotten; anything still unanswered rejects with a
   * `BayeuxClientError` of type `disconnected`. Resolves when done (after at
   * most `maxNetworkDelay` waiting for the server).
   */
  disconnect(): Promise<void> {
    if (this.#state === 'disconnected') return Promise.resolve();
    if (this.#disconnecting) return this.#disconnecting;
    const stopped = new BayeuxClientError('disconnected', 'The client disconnected');
    if (this.#state !== 'connected') {
      this.#stop(stopped, 'client');
      return Promise.resolve();
    }
    this.#state = 'disconnecting';
    this.#disconnecting = new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#disconnecting = undefined;
        if (this.#state === 'disconnecting') this.#stop(stopped, 'client');
        resolve();
      };
      const timer = setTimeout(finish, this.#options.maxNetworkDelay);
      this.#enqueue('disconnect', { channel: '/meta/disconnect' }, { force: true }).then(finish, finish);
    });
    return this.#disconnecting;
  }

  // ---------------------------------------------------------------- session

  #start(): void {
    if (this.#state === 'disconnected') this.#startHandshake();
  }

  #whenConnected(): Promise<void> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Forget the session (what was sent goes back in the queue) and handshake.
   * Whatever the reason (the server's advice, a refused connect, a caller's
   * `connect()` or `reconnect()`), a handshake less than `maxRetryDelay`
   * after the previous one waits first, `retryDelay` doubling each time up
   * to `maxRetryDelay`, with jitter.
   */
  #startHandshake(): void {
    this.#state = 'handshaking';
    this.#teardown(new BayeuxClientError('cancelled', 'A new session is starting'), false);
    this.#clientId = undefined;
    this.#transport = undefined;
    this.#ack.reset();
    const epoch = this.#epoch;
    const last = this.#lastHandshakeAt;
    const repeated = last !== undefined && Date.now() - last < this.#options.maxRetryDelay;
    this.#handshakeAttempt = repeated ? this.#handshakeAttempt + 1 : 0;
    if (this.#handshakeAttempt === 0) {
      this.#sendHandshake(epoch);
      return;
    }
    const base = Math.min(this.#options.maxRetryDelay, this.#options.retryDelay * 2 ** Math.min(this.#handshakeAttempt - 1, 30));
    const delay = timerDelay(Math.max(this.#advice.interval, base / 2 + Math.random() * (base / 2)));
    this.#log.info(`bayeux backoff: handshake ${this.#handshakeAttempt} in a row, waiting ${Math.round(delay)} ms`);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#sendHandshake(epoch);
    }, delay);
  }

  #sendHandshake(epoch: number): void {
    if (epoch !== this.#epoch || this.#state !== 'handshaking') return;
    this.#lastHandshakeAt = Date.now();
    this.#log.info('bayeux handshake');
    const template: BayeuxMessage = {
      channel: '/meta/handshake',
      version: '1.0',
      minimumVersion: '1.0',
      supportedConnectionTypes: [...this.#options.transports],
    };
    this.#ack.outgoingHandshake(template);
    const item = this.#item('handshake', template, {
      reply: (reply) => this.#guard(this.#handshakeReplied(reply, epoch)),
      fail: (error, final) => {
        if (final || epoch !== this.#epoch || this.#state !== 'handshaking') return;
        this.#emitError(error);
        this.#retryLater(() => this.#sendHandshake(epoch));
      },
    });
    this.#guard(this.#transmit([item], 'long-polling', this.#options.maxNetworkDelay, 'handshake'));
  }

  async #handshakeReplied(reply: BayeuxMessage, epoch: number): Promise<void> {
    if (epoch !== this.#epoch) return;
    this.#applyAdvice(reply);
    if (reply.successful !== true || typeof reply.clientId !== 'string') {
      const error = BayeuxError.parse(reply.error, reply);
      this.#failedMessage(error, reply);
      if (reply.advice?.reconnect === 'none') {
        this.#stop(error, 'server');
        return;
      }
      this.#retryLater(() => this.#sendHandshake(epoch), this.#advice.interval);
      return;
    }
    this.#clientId = reply.clientId;
    this.#ack.incomingHandshake(reply);
    this.#offered = Array.isArray(reply.supportedConnectionTypes)
      ? reply.supportedConnectionTypes.filter((name): name is string => typeof name === 'string')
      : ['long-polling'];

    let chosen: TransportName | undefined;
    for (const name of this.#options.transports) {
      if (!this.#offered.includes(name)) continue;
      if (name === 'long-polling') {
        chosen = name;
        break;
      }
      if (!this.#createWebSocket || this.#webSocketBroken) continue;
      try {
        await this.#openWebSocket(epoch);
        chosen = name;
        break;
      } catch {
        if (epoch !== this.#epoch) return;
        // Never opened in this client: a proxy that drops upgrades, say. Stop trying.
        if (!this.#webSocketWorked) this.#webSocketBroken = true;
      }
    }
    if (epoch !== this.#epoch) return;
    if (!chosen) {
      this.#webSocketBroken = false;
      this.#clientId = undefined;
      this.#emitError(new BayeuxClientError('no-transport',
        `No usable transport: the client allows ${this.#options.transports.join(', ')}, the server offers ${this.#offered.join(', ')}`));
      this.#retryLater(() => this.#sendHandshake(epoch));
      return;
    }
    this.#sessionTransport = chosen;
    this.#setTransport(chosen);
    this.#firstConnect = true;
    this.#resubscribe();
    this.#becomeConnected();
    this.#scheduleConnect(0);
  }

  async #openWebSocket(epoch: number): Promise<void> {
    const create = this.#createWebSocket;
    if (!create) throw new BayeuxClientError('no-transport', 'No WebSocket constructor');
    const transport: WebSocketTransport = await WebSocketTransport.open(webSocketUrl(this.#url), create, this.#options.maxNetworkDelay, this.#options.maxResponseBytes, {
      messages: (messages) => {
        if (this.#ws === transport) this.#receive(messages);
      },
      failed: (error) => {
        if (this.#ws !== transport) return;
        this.#ws = undefined;
        this.#transportFailed(error, this.#epoch);
      },
    });
    if (epoch !== this.#epoch) {
      transport.close();
      throw new BayeuxClientError('cancelled', 'The session changed while the WebSocket opened');
    }
    this.#ws?.close();
    this.#ws = transport;
    this.#webSocketWorked = true;
  }

  #setTransport(name: TransportName): void {
    this.#transport = name;
    if (name !== 'websocket') {
      this.#ws?.close();
      this.#ws = undefined;
    }
    if (this.#announced === name) return;
    this.#announced = name;
    this.emit('transport', name);
  }

  /** Put a subscribe for every accepted subscription at the head of the queue. */
  #resubscribe(): void {
    const entries = [...this.#channels.values()].filter((entry) => entry.confirmed);
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i] as ChannelEntry;
      entry.confirmed = false;
      entry.pending = this.#enqueue('subscribe', { channel: '/meta/subscribe', subscription: entry.channel }, { barrier: true, front: true })
        .then(
          () => {
            entry.pending = undefined;
            if (this.#channels.get(entry.channel) === entry) entry.confirmed = true;
          },
          () => {
            entry.pending = undefined;
            if (this.#channels.get(entry.channel) !== entry) return;
            this.#channels.delete(entry.channel);
            for (const sub of entry.subscriptions) sub.deactivate();
          },
        );
    }
  }

  #becomeConnected(): void {
    this.#state = 'connected';
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.#log.info(`bayeux connected: client ${shortId(this.#clientId ?? '')} over ${this.#transport ?? 'no transport'}`);
    this.emit('connected', { clientId: this.#clientId as string, transport: this.#transport as TransportName });
    this.#scheduleFlush();
  }

  /** The network failed: keep the session, put unanswered messages back, retry with backoff. */
  #transportFailed(error: Error, epoch: number): void {
    if (epoch !== this.#epoch) return;
    switch (this.#state) {
      case 'disconnected':
      case 'handshaking':
        return;
      case 'disconnecting':
        this.#stop(new BayeuxClientError('disconnected', 'The client disconnected'), 'client');
        return;
      default:
    }
    const wasConnected = this.#state === 'connected';
    this.#state = 'reconnecting';
    this.#log.info(`bayeux reconnecting: ${error.message}`);
    this.#teardown(error, false);
    this.#firstConnect = true;
    this.#emitError(error);
    if (wasConnected) this.emit('disconnected', { reason: 'network', error });
    const next = this.#epoch;
    this.#retryLater(() => this.#guard(this.#reconnectAttempt(next)));
  }

  async #reconnectAttempt(epoch: number): Promise<void> {
    if (epoch !== this.#epoch || this.#state !== 'reconnecting') return;
    if (this.#sessionTransport === 'websocket') {
      try {
        await this.#openWebSocket(epoch);
        this.#setTransport('websocket');
      } catch (error) {
        if (epoch !== this.#epoch) return;
        // Try long-polling when allowed: it tells a dropped upgrade from a server that is down.
        if (!this.#options.transports.includes('long-polling') || !this.#offered.includes('long-polling')) {
          this.#emitError(error as Error);
          this.#retryLater(() => this.#guard(this.#reconnectAttempt(epoch)));
          return;
        }
        this.#setTransport('long-polling');
      }
    }
    this.#sendConnect(epoch);
  }

  /** The server forgot the session: handshake again, transparently to the caller. */
  #rehandshake(error: Error | undefined): void {
    const wasConnected = this.#state === 'connected';
    this.#log.info(`bayeux re-handshake: ${error ? error.message : 'the server asked for one'}`);
    this.#startHandshake();
    if (wasConnected) this.emit('disconnected', error ? { reason: 'session', error } : { reason: 'session' });
  }

  /** Stop for good: reject everything, forget subscriptions. */
  #stop(error: Error, reason: DisconnectReason): void {
    const was = this.#state;
    this.#log.info(`bayeux disconnected (${reason}): ${error.message}`);
    this.#state = 'disconnected';
    this.#teardown(error, true);
    this.#attempt = 0;
    this.#clientId = undefined;
    this.#transport = undefined;
    this.#ack.reset();
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) item.fail(error, true);
    for (const entry of this.#channels.values()) for (const sub of entry.subscriptions) sub.deactivate();
    this.#channels.clear();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    if (was === 'connected' || was === 'disconnecting' || was === 'reconnecting') {
      this.emit('disconnected', reason === 'client' ? { reason } : { reason, error });
    }
  }

  /** Make everything in flight stale: close the socket, cancel requests, fail what was sent. */
  #teardown(error: Error, final: boolean): void {
    this.#epoch++;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#retryTimer);
    this.#connectTimer = undefined;
    this.#retryTimer = undefined;
    this.#ws?.close();
    this.#ws = undefined;
    this.#lp.cancelAll();
    this.#sending = false;
    this.#connectPending = false;
    const items = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const item of items) {
      clearTimeout(item.timer);
      item.fail(error, final);
    }
  }

  #retryLater(fn: () => void, minimum = 0): void {
    const base = Math.min(this.#options.maxRetryDelay, this.#options.retryDelay * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    const delay = timerDelay(Math.max(minimum, base / 2 + Math.random() * (base / 2)));
    this.#log.info(`bayeux backoff: retrying in ${Math.round(delay)} ms (attempt ${this.#attempt})`);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      fn();
    }, delay);
  }

  #applyAdvice(reply: BayeuxMessage): void {
    const advice = reply.advice;
    if (typeof advice !== 'object' || advice === null) return;
    // A server's advice is clamped: beyond a timer's range Node fires after 1 ms.
    const interval = clampAdvice(advice.interval, MAX_ADVICE_INTERVAL);
    const timeout = clampAdvice(advice.timeout, MAX_ADVICE_TIMEOUT);
    if (interval !== undefined) this.#advice.interval = interval;
    if (timeout !== undefined) this.#advice.timeout = timeout;
  }

  // ---------------------------------------------------------------- connect loop

  #scheduleConnect(delay: number): void {
    clearTimeout(this.#connectTimer);
    const epoch = this.#epoch;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      this.#sendConnect(epoch);
    }, timerDelay(delay));
  }

  #sendConnect(epoch: number): void {
    if (epoch !== this.#epoch || this.#connectPending || !this.#clientId || !this.#transport) return;
    if (this.#state !== 'connected' && this.#state !== 'reconnecting') return;
    this.#connectPending = true;
    const template: BayeuxMessage = { channel: '/meta/connect', connectionType: this.#transport };
    // The first connect of a session (or after a failure) asks for an immediate answer.
    if (this.#firstConnect) template.advice = { timeout: 0 };
    const timeout = (this.#firstConnect ? 0 : this.#advice.timeout) + this.#options.maxNetworkDelay;
    const first = this.#firstConnect;
    this.#connectMark = { delivered: this.#delivered, at: Date.now() };
    const item: Outgoing = this.#item('connect', template, {
      reply: (reply) => this.#connectReplied(reply, epoch, first),
      fail: (_error, final) => {
        if (epoch !== this.#epoch) return;
        this.#connectPending = false;
        // An extension threw or dropped it: try again later rather than stop the loop.
        if (final) this.#retryLater(() => this.#sendConnect(epoch));
      },
    });
    this.#guard(this.#transmit([item], this.#transport, timeout, 'connect'));
  }

  #connectReplied(reply: BayeuxMessage, epoch: number, first: boolean): void {
    if (epoch !== this.#epoch) return;
    this.#connectPending = false;
    // Disconnecting: the server answers the held connect, often with 402; nothing more to do.
    if (this.#state === 'disconnecting') return;
    this.#applyAdvice(reply);
    const reconnect = reply.advice?.reconnect;
    if (reply.successful === true) {
      this.#firstConnect = false;
      this.#attempt = 0;
      if (this.#state === 'reconnecting') this.#becomeConnected();
      if (reconnect === 'none') {
        this.#stop(new BayeuxError(0, 'The server asked the client not to reconnect', [], reply), 'server');
      } else if (reconnect === 'handshake') {
        this.#rehandshake(undefined);
      } else if (this.#state === 'connected') {
        this.#scheduleConnect(this.#nextConnectDelay(first));
      }
      return;
    }
    const error = BayeuxError.parse(reply.error, reply);
    this.#failedMessage(error, reply);
    if (reconnect === 'handshake') {
      this.#rehandshake(error);
    } else if (reconnect === 'none') {
      this.#stop(error, 'server');
    } else if (this.#state === 'reconnecting') {
      this.#retryLater(() => this.#guard(this.#reconnectAttempt(epoch)), this.#advice.interval);
    } else {
      this.#retryLater(() => this.#sendConnect(epoch), this.#advice.interval);
    }
  }

  /**
   * The server's interval, unless connects keep coming back at once with
   * nothing (a server that does not hold them, or asks for polling with no
   * interval): after a few such idle polls in a row, the retry schedule.
   */
  #nextConnectDelay(first: boolean): number {
    const interval = this.#advice.interval;
    const idle = !first && this.#delivered === this.#connectMark.delivered
      && Date.now() - this.#connectMark.at + interval < MIN_IDLE_POLL_MS;
    this.#idlePolls = idle ? this.#idlePolls + 1 : 0;
    if (this.#idlePolls <= IDLE_POLLS_ALLOWED) return interval;
    const n = this.#idlePolls - IDLE_POLLS_ALLOWED - 1;
    const base = Math.min(this.#options.maxRetryDelay, this.#options.retryDelay * 2 ** Math.min(n, 30));
    const delay = Math.max(interval, base / 2 + Math.random() * (base / 2));
    this.#log.info(`bayeux backoff: ${this.#idlePolls} connects in a row answered at once with nothing, waiting ${Math.round(delay)} ms`);
    return delay;
  }

  // ---------------------------------------------------------------- queue

  #item(kind: Kind, template: BayeuxMessage, handlers: Pick<Outgoing, 'reply' | 'fail'>, barrier = false): Outgoing {
    return { seq: -1, kind, template, barrier, ...handlers };
  }

  /** Queue a message; resolves with its successful reply. */
  #enqueue(kind: Kind, template: BayeuxMessage, options: { barrier?: boolean; front?: boolean; force?: boolean } = {}): Promise<BayeuxMessage> {
    if (!options.force && !options.front && this.#queue.length >= this.#options.maxQueue) {
      return Promise.reject(this.#refuse(
        new BayeuxClientError('queue-full', `${this.#queue.length} messages are already waiting to be sent (maxQueue)`), template));
    }
    return new Promise<BayeuxMessage>((resolve, reject) => {
      const item: Outgoing = this.#item(kind, template, {
        reply: (reply) => this.#itemReplied(item, reply, resolve, reject),
        fail: (error, final) => {
          if (final || kind === 'disconnect') reject(error);
          else this.#requeue(item);
        },
      }, options.barrier ?? false);
      if (options.front) {
        item.seq = (this.#queue[0]?.seq ?? this.#nextSeq) - 1;
        this.#queue.unshift(item);
      } else {
        item.seq = this.#nextSeq++;
        this.#queue.push(item);
      }
      this.#scheduleFlush();
    });
  }

  #itemReplied(item: Outgoing, reply: BayeuxMessage, resolve: (reply: BayeuxMessage) => void, reject: (error: Error) => void): void {
    if (reply.successful === true) {
      resolve(reply);
      return;
    }
    const error = BayeuxError.parse(reply.error, reply);
    if (reply.advice?.reconnect === 'handshake' && item.kind !== 'disconnect' && this.#state !== 'disconnecting') {
      // The session is gone: send it again in the next one.
      this.#requeue(item);
      if (item.epoch === this.#epoch && this.#state !== 'handshaking') this.#rehandshake(error);
      return;
    }
    this.#failedMessage(error, reply);
    reject(error);
  }

  /** Put a message that was sent but not answered back in the queue, in its place. */
  #requeue(item: Outgoing): void {
    clearTimeout(item.timer);
    let index = this.#queue.length;
    while (index > 0 && (this.#queue[index - 1] as Outgoing).seq > item.seq) index--;
    this.#queue.splice(index, 0, item);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#queue.length === 0) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, 0);
  }

  /** Send the head of the queue, if the transport is free. */
  #flush(): void {
    if (this.#state !== 'connected' && this.#state !== 'disconnecting') return;
    if (this.#sending || !this.#clientId || !this.#transport || this.#queue.length === 0) return;
    for (const item of this.#inflight.values()) if (item.barrier) return;
    const barrier = (this.#queue[0] as Outgoing).barrier;
    const batch: Outgoing[] = [];
    while (batch.length < this.#options.maxBatch && this.#queue.length > 0 && (this.#queue[0] as Outgoing).barrier === barrier) {
      batch.push(this.#queue.shift() as Outgoing);
    }
    this.#sending = true;
    this.#guard(this.#transmit(batch, this.#transport, this.#options.maxNetworkDelay, 'queue'));
  }

  /** Run extensions, send, and handle the outcome. */
  async #transmit(items: Outgoing[], via: TransportName, timeout: number, lane: Lane): Promise<void> {
    const epoch = this.#epoch;
    const messages: BayeuxMessage[] = [];
    const sent: Outgoing[] = [];
    for (const item of items) {
      item.id ??= String(++this.#nextId);
      const message: BayeuxMessage = { ...item.template, id: item.id };
      if (item.template.ext) message.ext = { ...item.template.ext };
      if (item.kind !== 'handshake' && this.#clientId) message.clientId = this.#clientId;
      if (item.kind === 'connect') item.sentAck = this.#ack.outgoingConnect(message);
      let out: BayeuxMessage | null;
      try {
        out = this.#extensions.length === 0 ? message : await this.#runOutgoing(message);
      } catch (error) {
        item.fail(toError(error), true);
        continue;
      }
      if (out === null) {
        item.fail(new BayeuxClientError('cancelled', 'An extension dropped the message'), true);
        continue;
      }
      // Last, so `tc` is as close to the send as it can be.
      this.#timesync?.outgoing(out);
      messages.push(out);
      sent.push(item);
    }
    if (epoch !== this.#epoch) {
      for (const item of sent) item.fail(new BayeuxClientError('cancelled', 'The session changed'), false);
      return;
    }
    for (const item of sent) {
      item.epoch = epoch;
      this.#inflight.set(item.id as string, item);
    }
    if (messages.length === 0) {
      this.#sent(lane);
      return;
    }
    this.#log.messages('out', via, messages);

    if (via === 'websocket') {
      try {
        if (!this.#ws) throw new BayeuxClientError('network', 'The WebSocket is not open');
        this.#ws.send(messages);
      } catch (error) {
        this.#transportFailed(error as Error, epoch);
        return;
      }
      for (const item of sent) {
        item.timer = setTimeout(() => {
          this.#transportFailed(new BayeuxClientError('timeout', `No reply to ${item.template.channel} within ${timeout} ms`), epoch);
        }, timerDelay(timeout));
      }
      this.#sent(lane);
      return;
    }

    let replies: BayeuxMessage[];
    try {
      replies = await this.#lp.send(messages, timeout).promise;
    } catch (error) {
      if (epoch !== this.#epoch || (error as BayeuxClientError).type === 'cancelled') return;
      if (lane === 'handshake') {
        for (const item of sent) {
          if (this.#inflight.get(item.id as string) !== item) continue;
          this.#inflight.delete(item.id as string);
          item.fail(error as Error, false);
        }
        return;
      }
      this.#transportFailed(error as Error, epoch);
      return;
    }
    if (epoch !== this.#epoch) return;
    this.#receive(replies);
    if (epoch !== this.#epoch) return;
    for (const item of sent) {
      if (this.#inflight.get(item.id as string) !== item) continue;
      const error = new BayeuxClientError('no-reply', `The server sent no reply to ${item.template.channel}`);
      if (lane === 'connect') {
        this.#transportFailed(error, epoch);
        return;
      }
      this.#inflight.delete(item.id as string);
      item.fail(error, lane === 'queue');
    }
    this.#sent(lane);
  }

  #sent(lane: Lane): void {
    if (lane !== 'queue') return;
    this.#sending = false;
    this.#scheduleFlush();
  }

  async #runOutgoing(message: BayeuxMessage): Promise<BayeuxMessage | null> {
    let current = message;
    for (const extension of [...this.#extensions]) {
      if (!extension.outgoing) continue;
      const result = await extension.outgoing(current);
      if (result === null) return null;
      if (result !== undefined) current = result;
    }
    return current;
  }

  #runIncoming(message: BayeuxMessage): BayeuxMessage | null {
    let current = message;
    const extensions = [...this.#extensions].reverse();
    for (const extension of extensions) {
      if (!extension.incoming) continue;
      try {
        const result: unknown = extension.incoming(current);
        if (result === null) return null;
        if (isThenable(result)) {
          // Incoming hooks are synchronous; a promise is not a message. Its rejection is reported.
          result.then(undefined, (error: unknown) => this.#emitError(toError(error)));
          continue;
        }
        if (result !== undefined) current = result as BayeuxMessage;
      } catch (error) {
        this.#emitError(toError(error));
        return null;
      }
    }
    return current;
  }

  // ---------------------------------------------------------------- incoming

  /** Handle what the server sent: deliveries first, then replies. */
  #receive(raw: BayeuxMessage[]): void {
    const replies: BayeuxMessage[] = [];
    let deliveries: BayeuxMessage[] = [];
    this.#log.messages('in', this.#transport ?? 'long-polling', raw);
    for (const original of raw) {
      this.#timesync?.incoming(original);
      const message = this.#extensions.length === 0 ? original : this.#runIncoming(original);
      if (!message) continue;
      if (isMeta(message.channel) || typeof message.successful === 'boolean') replies.push(message);
      else if (message.data !== undefined) deliveries.push(message);
    }
    for (const reply of replies) {
      if (reply.channel !== '/meta/connect') continue;
      const item = reply.id === undefined ? undefined : this.#inflight.get(String(reply.id));
      deliveries = this.#ack.incomingConnect(reply, item?.kind === 'connect' ? item.sentAck : undefined, deliveries);
    }
    this.#delivered += deliveries.length;
    for (const message of deliveries) this.#dispatch(message);
    for (const reply of replies) {
      const id = reply.id === undefined ? undefined : String(reply.id);
      const item = id === undefined ? undefined : this.#inflight.get(id);
      if (!item) {
        // A reply to something no longer waiting (a session that just ended, say).
        if (reply.successful === false && reply.advice?.reconnect !== 'handshake') this.#failedMessage(BayeuxError.parse(reply.error, reply), reply);
        continue;
      }
      this.#inflight.delete(id as string);
      clearTimeout(item.timer);
      item.reply(reply);
      // A re-subscription holds the queue back until it is answered.
      if (item.barrier) this.#scheduleFlush();
    }
  }

  /** Call each subscriber and each listener whose pattern matches, once each. */
  #dispatch(message: BayeuxMessage): void {
    for (const entry of [...this.#channels.values()]) {
      if (!channelMatches(entry.channel, message.channel)) continue;
      for (const sub of [...entry.subscriptions]) {
        if (sub.active) this.#callHandler(sub.handler, message);
      }
    }
    for (const listener of [...this.#listeners]) {
      if (listener.active && channelMatches(listener.channel, message.channel)) this.#callHandler(listener.handler, message);
    }
  }

  /** Call a user's handler; what it throws or rejects with is emitted as `error`. */
  #callHandler(handler: MessageHandler, message: BayeuxMessage): void {
    const report = (error: unknown): void => {
      const failure = toError(error);
      if (!this.emit('error', failure)) setTimeout(function rethrowHandlerError() { throw failure; }, 0);
    };
    try {
      const result: unknown = handler(message.data, message);
      if (isThenable(result)) result.then(undefined, report);
    } catch (error) {
      report(error);
    }
  }

  // ---------------------------------------------------------------- subscriptions

  async #removeSubscription(sub: ClientSubscription): Promise<void> {
    const entry = this.#channels.get(sub.channel);
    if (!entry || !entry.subscriptions.delete(sub)) return;
    if (entry.subscriptions.size === 0) await this.#dropChannel(entry);
  }

  async #dropChannel(entry: ChannelEntry): Promise<void> {
    if (this.#channels.get(entry.channel) === entry) this.#channels.delete(entry.channel);
    if (this.#state === 'disconnected' || this.#state === 'disconnecting') return;
    await this.#enqueue('unsubscribe', { channel: '/meta/unsubscribe', subscription: entry.channel });
  }

  // ---------------------------------------------------------------- errors

  /** A message the client will not send: report it, and return the error to reject with. */
  #refuse<E extends BayeuxError | BayeuxClientError>(error: E, message: BayeuxMessage): E {
    const text = error instanceof BayeuxError ? error.toString() : error.message;
    this.#failedMessage(error, { ...message, successful: false, error: text });
    return error;
  }

  #failedMessage(error: BayeuxError | BayeuxClientError, message: BayeuxMessage): void {
    this.#log.warn(`bayeux refused ${String(message.channel)}: ${error instanceof BayeuxError ? error.toString() : error.message}`);
    const onError = this.#options.onError;
    if (onError) {
      const rethrow = (thrown: unknown): void => {
        setTimeout(function rethrowOnErrorError() { throw thrown; }, 0);
      };
      try {
        const result: unknown = onError(message, error);
        if (isThenable(result)) result.then(undefined, rethrow);
      } catch (thrown) {
        rethrow(thrown);
      }
    }
    this.emit('error', error);
  }

  #emitError(error: Error): void {
    this.#log.warn(`bayeux error: ${error.message}`);
    this.emit('error', error);
  }

  /** Every promise the client starts ends here or is awaited: a failure is emitted, never left unhandled. */
  #guard(promise: Promise<void>): void {
    promise.catch((error: unknown) => this.#emitError(toError(error)));
  }
}

/** A handler registered for a channel pattern, until it is removed. */
abstract class Registration<R> {
  readonly channel: string;
  readonly handler: MessageHandler;
  #active = true;
  protected readonly removeFrom: (registration: R) => Promise<void> | void;

  constructor(channel: string, handler: MessageHandler, remove: (registration: R) => Promise<void> | void) {
    this.channel = channel;
    this.handler = handler;
    this.removeFrom = remove;
  }

  get active(): boolean {
    return this.#active;
  }

  deactivate(): void {
    this.#active = false;
  }
}

class ClientChannelListener extends Registration<ClientChannelListener> implements ChannelListener {
  remove(): void {
    if (this.active) void this.removeFrom(this);
  }
}

class ClientSubscription extends Registration<ClientSubscription> implements Subscription {
  unsubscribe(): Promise<void> {
    if (!this.active) return Promise.resolve();
    this.deactivate();
    return Promise.resolve(this.removeFrom(this));
  }
}
