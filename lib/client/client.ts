/**
 * BayeuxClient: a Bayeux 1.0 client for browsers and Node. This file holds
 * the public API and the session's state machine (handshake, connected,
 * reconnecting, disconnecting); the parts it drives each have their own:
 *
 * - `dispatcher.ts`: the outgoing queue, what is in flight, batching, and
 *   matching replies (everything sent goes through it);
 * - `transports.ts`: long-polling and WebSocket, which one is in use, fallback;
 * - `connect-loop.ts`: the one outstanding `/meta/connect` and its pacing;
 * - `subscriptions.ts`: subscriptions, listeners, and calling their handlers;
 * - `extensions.ts`: the user's extension chain;
 * - `backoff.ts`: when to try again;
 * - `report.ts`: where failures go (`error`, `onError`, the log).
 *
 * They talk through small host interfaces the client implements, so none
 * of them imports the client.
 */

import { AckTracker } from './ack.js';
import { Backoff } from './backoff.js';
import { ConnectLoop, type ConnectLoopHost } from './connect-loop.js';
import { isMeta, isValidChannel, isValidPattern, isWildcard } from '../protocol/channel.js';
import { MAX_ADVICE_INTERVAL, MAX_ADVICE_TIMEOUT, MAX_NOT_BAYEUX_HANDSHAKES } from './constants.js';
import { Dispatcher, type DispatcherHost } from './dispatcher.js';
import { TypedEmitter } from './emitter.js';
import { BayeuxClientError, BayeuxError } from './errors.js';
import { Extensions } from './extensions.js';
import { ClientLog, shortId } from './logger.js';
import type { BayeuxExtension, BayeuxMessage, TransportName } from './message.js';
import { resolveOptions, type BayeuxClientOptions, type ResolvedOptions } from './options.js';
import { Reporter } from './report.js';
import type { BayeuxClientEvents, ClientState, DisconnectReason } from './state.js';
import {
  checkRecoverOption, Subscriptions, type ChannelListener, type MessageHandler, type SubscribeOptions, type Subscription, type SubscriptionsHost,
} from './subscriptions.js';
import type { PresentUser } from './presence.js';
import { TimeSync } from './timesync.js';
import { Transports, type TransportsHost } from './transports.js';

const DEFAULT_ADVICE = { interval: 0, timeout: 60_000 };

/** Clamp a number of ms from the server into 0..max; anything not a finite number is ignored. */
function clampAdvice(value: unknown, max: number): number | undefined {
  if (typeof value !== 'number' || Number.isNaN(value)) return undefined;
  return Math.min(Math.max(value, 0), max);
}

/**
 * One session at a time. The handshake goes over HTTP; `/meta/connect`,
 * publishes and subscriptions then go over the negotiated transport.
 * Everything the caller sends waits in one ordered queue, which flows while
 * the client is connected and is sent again, in order, after a network
 * failure or a new session. The connect loop keeps one `/meta/connect`
 * outstanding and follows the server's advice.
 */
export class BayeuxClient extends TypedEmitter<BayeuxClientEvents> {
  /** The server's URL (http: or https:). */
  readonly url: string;
  readonly #options: ResolvedOptions;
  readonly #log: ClientLog;
  readonly #report: Reporter;
  readonly #extensions: Extensions;
  readonly #ack: AckTracker;
  readonly #timesync: TimeSync | undefined;
  readonly #backoff: Backoff;
  readonly #transports: Transports;
  readonly #dispatcher: Dispatcher;
  readonly #subscriptions: Subscriptions;
  readonly #connectLoop: ConnectLoop;

  #state: ClientState = 'disconnected';
  /** Bumped whenever what is in flight becomes stale: new handshake, network failure, stop. */
  #epoch = 0;
  #clientId: string | undefined;
  #advice = { ...DEFAULT_ADVICE };
  #waiters: Array<{ resolve(): void; reject(error: Error): void }> = [];
  #disconnecting: Promise<void> | undefined;
  /** Handshakes in a row answered by something that is not a Bayeux server (see {@link MAX_NOT_BAYEUX_HANDSHAKES}). */
  #notBayeux = 0;
  /** The client has been connected at least once: the URL is right, so what fails later is retried. */
  #connectedOnce = false;

  /**
   * @param url The server's Bayeux URL, e.g. `http://127.0.0.1:8080/cometd`
   *   (relative URLs are resolved against the page in a browser).
   * @param options See {@link BayeuxClientOptions}.
   */
  constructor(url: string | URL, options?: BayeuxClientOptions) {
    super();
    this.#options = resolveOptions(options);
    const base = typeof location !== 'undefined' && location && typeof location.href === 'string' ? location.href : undefined;
    let parsed: URL;
    try {
      parsed = new URL(String(url), base);
    } catch {
      throw new TypeError(`Invalid URL: ${String(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`The URL must be http: or https:, not ${parsed.protocol}`);
    }
    this.url = parsed.href;

    this.#log = new ClientLog(this.#options.logger);
    this.#report = new Reporter((error) => this.emit('error', error), this.#options.onError, this.#log);
    this.#extensions = new Extensions(this.#options.extensions, (error) => this.#report.error(error));
    this.#ack = new AckTracker(this.#options.ack);
    this.#timesync = this.#options.timesync ? new TimeSync() : undefined;
    this.#backoff = new Backoff(this.#options, this.#log);
    const host = this.#host();
    this.#transports = new Transports(parsed, this.#options, host);
    this.#dispatcher = new Dispatcher(host, {
      options: this.#options,
      transports: this.#transports,
      extensions: this.#extensions,
      ack: this.#ack,
      timesync: this.#timesync,
      log: this.#log,
      report: this.#report,
    });
    this.#subscriptions = new Subscriptions(host);
    this.#connectLoop = new ConnectLoop(host, this.#dispatcher, this.#backoff, this.#options.maxNetworkDelay, this.#log);
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
    return this.#transports.current;
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
    return this.#extensions.add(extension);
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
    return this.#subscriptions.listen(pattern, handler as MessageHandler);
  }

  /** Stop a listener returned by {@link addListener}; returns whether it was listening. */
  removeListener(listener: ChannelListener): boolean {
    return this.#subscriptions.unlisten(listener);
  }

  /**
   * Handshake (if not done yet) and start the connect loop. Resolves once
   * connected; rejects when the client gives up: the server refused with
   * `reconnect: 'none'`, `disconnect()` was called, or, before the client
   * has ever connected, the URL is not a Bayeux server's (three handshakes
   * in a row answered with a 4xx status other than 408 and 429, a body that
   * is not Bayeux JSON, or no usable transport: a `BayeuxClientError`
   * naming the URL and the status, also logged at `error` and emitted as
   * `error`). A network failure is not giving up: the client retries until
   * `disconnect()`, and so does a client that has been connected once
   * (the URL was right; the server may be restarting). `subscribe()` and
   * `publish()` call this by themselves, and reject with the same errors.
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
    this.#backoff.reset();
    this.#startHandshake();
    if (oldClientId) this.#dispatcher.abandon(oldClientId);
    if (wasConnected) this.emit('disconnected', { reason: 'client' });
    return ready;
  }

  /**
   * Subscribe `handler` to a channel or a pattern (`/chat/*`, `/chat/**`).
   * Handshakes on first use. Resolves once the server has accepted the
   * subscription; rejects with a `BayeuxError` when it refuses (or when the
   * channel can never be valid, without asking the server), and with a
   * `BayeuxClientError` when the client gives up (see {@link connect}: a
   * URL that is not a Bayeux server's, `disconnect()`).
   *
   * `options.recover` (a channel with history on the server): remember
   * the position of the last message handed to `handler` and, after any
   * gap (a new session, a server restart), subscribe again from there;
   * `true` starts now, a position `{ epoch, offset }` or `{ last: N }`
   * start earlier. Each recovery is reported by the `recover` event.
   *
   * `options.presence: true` (a channel with presence on the server):
   * follow who is on the channel: {@link presence} lists them, and the
   * `join` and `leave` events report each change.
   */
  async subscribe<T = unknown>(channel: string, handler: MessageHandler<T>, options?: SubscribeOptions): Promise<Subscription> {
    if (typeof handler !== 'function') throw new TypeError('subscribe() needs a handler function');
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw new TypeError('subscribe() options must be an object');
    const recover = checkRecoverOption(options?.recover);
    if (recover !== undefined && isValidPattern(channel) && isWildcard(channel)) {
      throw new TypeError(`subscribe() option recover needs a channel, not a pattern: positions are per channel (${channel})`);
    }
    const presence = options?.presence;
    if (presence !== undefined && typeof presence !== 'boolean') throw new TypeError('subscribe() option presence must be a boolean');
    if (presence && isValidPattern(channel) && isWildcard(channel)) {
      throw new TypeError(`subscribe() option presence needs a channel, not a pattern: presence is per channel (${channel})`);
    }
    const template: BayeuxMessage = { channel: '/meta/subscribe', subscription: channel };
    if (!isValidPattern(channel)) throw this.#report.refuse(new BayeuxError(405, 'Invalid channel', [String(channel)]), template);
    if (isMeta(channel)) throw this.#report.refuse(new BayeuxError(403, 'Forbidden channel', [channel]), template);
    if (this.#state === 'disconnecting') throw new BayeuxClientError('disconnected', 'The client is disconnecting');
    const { subscription, ready } = this.#subscriptions.subscribe(channel, handler as MessageHandler, recover, presence === true);
    if (ready) await ready;
    return subscription;
  }

  /**
   * Who is on `channel`, which this client follows with
   * `subscribe(channel, fn, { presence: true })`: the subscribe reply's
   * snapshot kept up to date by the server's notices (at most the
   * server's `presenceLimit` users from the snapshot). Resolves once the
   * subscribe is answered; rejects with a `TypeError` for a channel not
   * followed with presence.
   */
  async presence(channel: string): Promise<PresentUser[]> {
    const users = await this.#subscriptions.presence(channel);
    if (!users) throw new TypeError(`presence(${String(channel)}): subscribe to it with { presence: true } first`);
    return users;
  }

  /**
   * Remove every handler of `channel` (exactly as subscribed, pattern
   * included) and unsubscribe on the server. Resolves on the server's ack.
   */
  unsubscribe(channel: string): Promise<void> {
    return this.#subscriptions.unsubscribe(channel);
  }

  /**
   * Publish `data` to `channel`. Handshakes on first use. Resolves with the
   * server's reply once it has accepted the message (for a `/service/`
   * channel whose handler answers, the reply's `data` is the answer);
   * rejects with a `BayeuxError` when it refuses, or when the channel can
   * never be valid (wildcards, `/meta/`), without asking the server. Rejects
   * with a `BayeuxClientError` of type `too-large` when the server refuses
   * the message as larger than it accepts (HTTP 413, WebSocket close 1009;
   * messages sent with it in one request are sent again one by one, and the
   * session goes on), and like {@link subscribe} when the client gives up.
   * While offline the message waits (up to `maxQueue`) and is sent in order
   * after reconnecting.
   */
  publish(channel: string, data: unknown): Promise<BayeuxMessage> {
    const template: BayeuxMessage = { channel, data };
    if (!isValidChannel(channel)) return Promise.reject(this.#report.refuse(new BayeuxError(405, 'Invalid channel', [String(channel)]), template));
    if (isMeta(channel)) return Promise.reject(this.#report.refuse(new BayeuxError(403, 'Forbidden channel', [channel]), template));
    if (data === undefined) return Promise.reject(new TypeError('publish() needs data (null is fine, undefined is not)'));
    if (this.#state === 'disconnecting') return Promise.reject(new BayeuxClientError('disconnected', 'The client is disconnecting'));
    const reply = this.#dispatcher.enqueue('publish', template);
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
      this.#dispatcher.enqueue('disconnect', { channel: '/meta/disconnect' }, { force: true }).then(finish, finish);
    });
    return this.#disconnecting;
  }

  // ---------------------------------------------------------------- the parts' view of the client

  /** What the parts may read and ask of the client; each sees only its own interface. */
  #host(): DispatcherHost & TransportsHost & SubscriptionsHost & ConnectLoopHost {
    // The getters below run with the returned object as `this`; they read the client's private state.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this;
    return {
      get state() { return client.#state; },
      get epoch() { return client.#epoch; },
      get clientId() { return client.#clientId; },
      get transport() { return client.#transports.current; },
      get advice() { return client.#advice; },
      transportFailed: (error, epoch) => this.#transportFailed(error, epoch),
      responseTooLarge: (error, epoch) => this.#responseTooLarge(error, epoch),
      rehandshake: (error) => this.#rehandshake(error),
      deliver: (message) => this.#subscriptions.dispatch(message),
      received: (messages) => this.#dispatcher.receive(messages),
      socketFailed: (error, refusedFrame) => this.#socketFailed(error, refusedFrame),
      changed: (name) => void this.emit('transport', name),
      send: (kind, template, options) => this.#dispatcher.enqueue(kind, template, options),
      start: () => this.#start(),
      handlerFailed: (error) => this.#report.handlerFailed(error),
      recovered: (channel, outcome) => void this.emit('recover', channel, outcome),
      presenceChanged: (channel, event, user) => {
        if (event === 'join') this.emit('join', channel, user);
        else this.emit('leave', channel, { user: user.user, ...(user.session === undefined ? {} : { session: user.session }) });
      },
      connectAnswered: (reply, epoch) => this.#connectAnswered(reply, epoch),
    };
  }

  // ---------------------------------------------------------------- session

  #start(): void {
    if (this.#state === 'disconnected') this.#startHandshake();
  }

  #whenConnected(): Promise<void> {
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Forget the session (what was sent goes back in the queue) and handshake,
   * at once or, when the previous handshake was recent, after a wait (see
   * {@link Backoff.handshake}).
   */
  #startHandshake(): void {
    this.#state = 'handshaking';
    this.#teardown(new BayeuxClientError('cancelled', 'A new session is starting'), false);
    this.#clientId = undefined;
    this.#transports.forget();
    this.#ack.reset();
    const epoch = this.#epoch;
    this.#backoff.handshake(() => this.#sendHandshake(epoch), this.#advice.interval);
  }

  #sendHandshake(epoch: number): void {
    if (epoch !== this.#epoch || this.#state !== 'handshaking') return;
    this.#backoff.handshakeSent();
    this.#log.info('bayeux handshake');
    const template: BayeuxMessage = {
      channel: '/meta/handshake',
      version: '1.0',
      minimumVersion: '1.0',
      supportedConnectionTypes: [...this.#options.transports],
    };
    this.#ack.outgoingHandshake(template);
    this.#dispatcher.send('handshake', template, {
      reply: (reply) => this.#report.guard(this.#handshakeReplied(reply, epoch)),
      fail: (error, final) => {
        if (final || epoch !== this.#epoch || this.#state !== 'handshaking') return;
        if (this.#notBayeuxAnswer(error)) return;
        this.#report.error(error);
        this.#backoff.retry(() => this.#sendHandshake(epoch));
      },
    }, 'long-polling', this.#options.maxNetworkDelay);
  }

  async #handshakeReplied(reply: BayeuxMessage, epoch: number): Promise<void> {
    if (epoch !== this.#epoch) return;
    this.#applyAdvice(reply);
    if (reply.successful !== true || typeof reply.clientId !== 'string') {
      const error = BayeuxError.parse(reply.error, reply);
      this.#report.failed(error, reply);
      if (reply.advice?.reconnect === 'none') {
        this.#stop(error, 'server');
        return;
      }
      this.#backoff.retry(() => this.#sendHandshake(epoch), this.#advice.interval);
      return;
    }
    this.#clientId = reply.clientId;
    this.#ack.incomingHandshake(reply);
    const chosen = await this.#transports.choose(reply.supportedConnectionTypes, epoch);
    if (epoch !== this.#epoch) return;
    if (!chosen) {
      const clientId = this.#clientId;
      this.#clientId = undefined;
      const failure = this.#transports.webSocketFailure;
      const error = new BayeuxClientError('no-transport',
        `No usable transport: the client allows ${this.#options.transports.join(', ')}, the server offers ${this.#transports.offered.join(', ')}`
        + (failure ? `; ${failure.message}` : ''), failure ? { cause: failure } : {});
      const stopped = this.#notBayeuxAnswer(error);
      // Best effort, after stopping (which cancels every request): the session just made is of no use.
      this.#dispatcher.abandon(clientId);
      if (stopped) return;
      this.#report.error(error);
      this.#backoff.retry(() => this.#sendHandshake(epoch));
      return;
    }
    this.#notBayeux = 0;
    this.#subscriptions.resubscribe();
    this.#becomeConnected();
    this.#connectLoop.start();
  }

  #becomeConnected(): void {
    this.#state = 'connected';
    this.#connectedOnce = true;
    this.#backoff.cancel();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve();
    const transport = this.#transports.current;
    this.#log.info(`bayeux connected: client ${shortId(this.#clientId ?? '')} over ${transport ?? 'no transport'}`);
    this.emit('connected', { clientId: this.#clientId as string, transport: transport as TransportName });
    this.#dispatcher.scheduleFlush();
  }

  /**
   * A handshake failed with `error`. When the answer shows the URL is not a
   * Bayeux server's (see {@link connect}), count it; at
   * {@link MAX_NOT_BAYEUX_HANDSHAKES} in a row, stop and reject what
   * waits. Returns whether the client stopped (nothing more to do).
   */
  #notBayeuxAnswer(error: Error): boolean {
    if (!isNotBayeux(error) || this.#connectedOnce) {
      this.#notBayeux = 0;
      return false;
    }
    this.#notBayeux++;
    if (this.#notBayeux < MAX_NOT_BAYEUX_HANDSHAKES) return false;
    const count = this.#notBayeux;
    this.#notBayeux = 0;
    const what = error.type === 'no-transport' ? 'cannot be used' : 'does not answer as a Bayeux server';
    const final = new BayeuxClientError(error.type, `${this.url} ${what} (${count} handshakes in a row): ${error.message}`,
      { ...(error.status === undefined ? {} : { status: error.status }), ...(error.httpType === undefined ? {} : { httpType: error.httpType }), cause: error });
    this.#report.gaveUp(final);
    this.#stop(final, 'server');
    return true;
  }

  /** The current WebSocket failed; when the server closed it over a frame too large, that frame's message is refused. */
  #socketFailed(error: BayeuxClientError, refusedFrame: boolean): void {
    if (refusedFrame && this.#dispatcher.frameRefused(error)) {
      // The refused publish reports itself; the socket is opened again for the rest.
      this.#transportFailed(error, this.#epoch, false);
      return;
    }
    // A frame longer than maxResponseBytes: with acks, a connect's answer (deliveries come only in those); skip it.
    this.#transportFailed(error.type === 'too-large' && !refusedFrame ? this.#skipped(error) : error, this.#epoch);
  }

  /**
   * The answer to a connect was longer than `maxResponseBytes`: its
   * messages are lost, and reported. With acks, the next connect
   * acknowledges the batch unread, so the server does not send it again.
   */
  #responseTooLarge(error: BayeuxClientError, epoch: number): void {
    if (epoch !== this.#epoch) return;
    this.#report.error(this.#skipped(error));
    this.#backoff.retry(() => this.#connectLoop.send(epoch));
  }

  /** Skip the batch a too-large answer carried; the error to report, saying so. */
  #skipped(error: BayeuxClientError): BayeuxClientError {
    const batch = this.#ack.skip();
    const what = batch === undefined ? 'the messages in it are lost' : `the messages in it are skipped (acknowledging batch ${batch} unread)`;
    return new BayeuxClientError('too-large', `${error.message}: ${what}`, { cause: error });
  }

  /** The network failed: keep the session, put unanswered messages back, retry with backoff. */
  #transportFailed(error: Error, epoch: number, report = true): void {
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
    this.#connectLoop.restart();
    if (report) this.#report.error(error);
    if (wasConnected) this.emit('disconnected', { reason: 'network', error });
    const next = this.#epoch;
    // A draining server advised an interval before it closed the socket: wait at least that long.
    this.#backoff.retry(() => this.#report.guard(this.#reconnectAttempt(next)), this.#advice.interval);
  }

  /** After a network failure: a new socket (or long-polling) if the session used one, then a connect. */
  async #reconnectAttempt(epoch: number): Promise<void> {
    if (epoch !== this.#epoch || this.#state !== 'reconnecting') return;
    if (this.#transports.session === 'websocket') {
      try {
        await this.#transports.reopen(epoch);
      } catch (error) {
        this.#report.error(error as Error);
        this.#backoff.retry(() => this.#report.guard(this.#reconnectAttempt(epoch)));
        return;
      }
    }
    this.#connectLoop.send(epoch);
  }

  /**
   * The server answered a connect: follow its advice. Returns whether the
   * connect loop goes on at the advised interval.
   */
  #connectAnswered(reply: BayeuxMessage, epoch: number): boolean {
    this.#applyAdvice(reply);
    const reconnect = reply.advice?.reconnect;
    if (reply.successful === true) {
      this.#backoff.reset();
      if (this.#state === 'reconnecting') this.#becomeConnected();
      if (reconnect === 'none') {
        this.#stop(new BayeuxError(0, 'The server asked the client not to reconnect', [], reply), 'server');
        return false;
      }
      if (reconnect === 'handshake') {
        this.#rehandshake(undefined);
        return false;
      }
      return this.#state === 'connected';
    }
    const error = BayeuxError.parse(reply.error, reply);
    this.#report.failed(error, reply);
    if (reconnect === 'handshake') {
      this.#rehandshake(error);
    } else if (reconnect === 'none') {
      this.#stop(error, 'server');
    } else if (this.#state === 'reconnecting') {
      this.#backoff.retry(() => this.#report.guard(this.#reconnectAttempt(epoch)), this.#advice.interval);
    } else {
      this.#backoff.retry(() => this.#connectLoop.send(epoch), this.#advice.interval);
    }
    return false;
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
    this.#notBayeux = 0;
    this.#teardown(error, true);
    this.#backoff.reset();
    this.#clientId = undefined;
    this.#transports.forget();
    this.#ack.reset();
    this.#dispatcher.failQueued(error);
    this.#subscriptions.clear();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    if (was === 'connected' || was === 'disconnecting' || was === 'reconnecting') {
      this.emit('disconnected', reason === 'client' ? { reason } : { reason, error });
    }
  }

  /** Make everything in flight stale: stop the timers, close the socket, cancel requests, fail what was sent. */
  #teardown(error: Error, final: boolean): void {
    this.#epoch++;
    this.#connectLoop.stop();
    this.#backoff.cancel();
    this.#transports.closeAll();
    this.#dispatcher.reset(error, final);
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
}

/**
 * Whether a failed handshake's answer shows the URL is not a Bayeux
 * server's: a 4xx status other than 408 (timeout) and 429 (too many
 * requests), a body that is not Bayeux JSON, no handshake reply in it, or
 * no transport to use. A network failure, a timeout or a 5xx (a proxy
 * while the server restarts) may pass, and is retried.
 */
function isNotBayeux(error: Error): error is BayeuxClientError {
  if (!(error instanceof BayeuxClientError)) return false;
  switch (error.type) {
    case 'protocol':
    case 'no-reply':
    case 'no-transport':
      return true;
    case 'http':
    case 'too-large': {
      const status = error.status;
      return status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
    }
    default:
      return false;
  }
}
