/**
 * The Bayeux protocol: meta handlers, validation, advice, error strings,
 * the middleware chain, services and publish. Transport- and
 * engine-agnostic: hand it arrays of messages and a `Connection`, get back
 * the JSON texts of the replies (and deliveries) to send.
 */
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import { expand } from '../channel.js';
import { isMeta, isPublishable, isService, isValidChannel, isValidPattern, isWildcard } from '../protocol/channel.js';
import { EngineLimitError, EngineUnavailableError, type TakeResult } from '../engines/engine.js';
import { ProtocolErrors } from '../errors.js';
import { BayeuxError } from '../protocol/error.js';
import type { ResolvedOptions } from '../options.js';
import { MessageContext } from './context.js';
import { type HeldConnect, Holds } from './hold.js';
import { LocalClient, type LocalListener, type LocalSubscription } from './local-client.js';
import { Observers, type ServerObserver } from './observer.js';
import { Pipeline } from './pipeline.js';
import { EngineSessionData, NO_SESSION, PendingSessionData } from './session-data.js';
import { type Presence, Presences } from './presence.js';
import type {
  Advice, Connection, Context, Message, Middleware, OutgoingHook, PublishOptions, ServerEvents, ServiceHandler, SessionData, Stats,
} from './types.js';

export const BAYEUX_VERSION = '1.0';

export type { LocalListener, LocalMessageInfo, LocalSubscription } from './local-client.js';

/** How long close() waits for requests under way to be answered. */
const CLOSE_GRACE_MS = 2000;

/**
 * What one message's handling produced: replies for the sender and
 * deliveries to put before them; or, for a held connect, a function that
 * registers the callback its outcome will be given to (no async chain
 * stays suspended while it waits).
 */
interface Outcome {
  reply?: Message;
  deliveries?: readonly string[];
  held?: HeldConnect<PendingConnect>;
  /**
   * A publish whose engine call is under way: its reply stands unless this
   * rejects. Consecutive publishes in one request are issued back to back
   * (the engine keeps call order) and awaited together.
   */
  settle?: Promise<unknown>;
}

/** What the messages of one request share while they are handled. */
interface RequestState {
  /** Sessions found live earlier in this run of publishes (cleared by any other message). */
  readonly live: Set<string>;
}

/** A held connect: everything needed to answer it, in one record. */
interface PendingConnect {
  readonly message: Message;
  readonly conn: Connection;
  readonly presence: Presence;
  readonly ip: string | undefined;
  readonly firstConnect: boolean;
  readonly multipleClients: boolean;
  /** On a socket without acks: nothing is taken for the reply (pushes carry the messages). */
  readonly pushMode: boolean;
  readonly ack: number | undefined;
  /** When it was received, for timesync. */
  readonly received: number;
  /** Where the texts go, once the request's caller registered. */
  respond: ((replies: string[]) => void) | undefined;
  /** The texts, if they were ready before the caller registered. */
  answered: string[] | undefined;
}

const NOTHING_TAKEN: TakeResult = Object.freeze({ messages: [], dropped: 0 }) as TakeResult;

/** How much of a message's data a debug trace shows. */
const TRACE_DATA_CHARS = 200;
const CLIENT_ID_IN_JSON = /("clientId":"[^"]{0,6})[^"]*"/g;

export class Server extends EventEmitter<ServerEvents> {
  readonly options: ResolvedOptions;
  readonly #pipeline = new Pipeline();
  readonly #outgoing: OutgoingHook[] = [];
  readonly #services = new Map<string, ServiceHandler>();
  readonly #presences: Presences;
  readonly #holds = new Holds();
  /** Sessions that have connected at least once (on this node): their later connects may be held. */
  readonly #connected: LRUCache<string, true>;
  readonly #heldPerIp = new Map<string, number>();
  #connectionTypes: string[];
  #opened: Promise<void> | undefined;
  #closed = false;
  #messagesIn = 0;
  #messagesOut = 0;
  #sockets = 0;
  #local: LocalClient | undefined;
  #inFlight = 0;
  #idle: (() => void) | undefined;
  readonly #observers = new Observers((err) => {
    this.options.logger.error(`an observer threw: ${err instanceof Error ? err.message : String(err)}`);
  });

  constructor(options: ResolvedOptions) {
    // A listener that returns a rejected promise is routed to the rejection handler below, never left unhandled.
    super({ captureRejections: true });
    // A listener's returned promise rejected: log it, never crash.
    (this as unknown as Record<symbol, unknown>)[EventEmitter.captureRejectionSymbol] = (err: unknown, event: string | symbol): void => {
      this.options.logger.error(`'${String(event)}' listener rejected: ${err instanceof Error ? err.message : String(err)}`);
    };
    this.options = options;
    this.#connectionTypes = options.jsonp ? ['long-polling', 'callback-polling'] : ['long-polling'];
    this.#presences = new Presences((woken) => this.#flush(woken));
    // A hint only (a miss answers one connect at once), so a plain bounded LRU will do.
    this.#connected = new LRUCache({ max: 200_000 });
    for (const [name, fn] of Object.entries(options.services)) {
      this.#services.set(name === '_handler' ? '_handler' : '/service/' + name.replace(/^\/+/, ''), fn);
    }
  }

  /** Open the engine; idempotent. Every entry point awaits it. */
  open(): Promise<void> {
    if (this.#opened) return this.#opened;
    const opening = this.options.engine.open(
      {
        wake: (ids) => this.#presences.wake(ids),
        expired: (id) => this.#expired(id),
      },
      {
        maxQueue: this.options.maxQueue,
        maxQueueBytes: this.options.maxQueueBytes,
        maxSubscriptions: this.options.maxSubscriptions,
        maxSessionDataBytes: this.options.maxSessionDataBytes,
        sweepInterval: Math.max(50, Math.min(1000, this.options.maxInterval / 4)),
        logger: this.options.logger,
      },
    );
    // A store that was down at start may be back later: try again on the next call.
    this.#opened = opening.catch((err: unknown) => {
      if (this.#opened === guarded) this.#opened = undefined;
      throw err;
    });
    const guarded = this.#opened;
    return guarded;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connection types offered in handshake replies. The WebSocket transport adds itself. */
  addConnectionType(type: string): void {
    if (!this.#connectionTypes.includes(type)) this.#connectionTypes.unshift(type);
  }

  use(pattern: string | undefined, fn: Middleware): void {
    this.#pipeline.use(pattern, fn);
  }

  outgoing(fn: OutgoingHook): void {
    if (typeof fn !== 'function') throw new TypeError('outgoing hook must be a function');
    this.#outgoing.push(fn);
  }

  service(channel: string, fn: ServiceHandler): void {
    if (channel === '_handler') {
      this.#services.set('_handler', fn);
      return;
    }
    if (!isValidChannel(channel) || !isService(channel)) {
      throw new TypeError(`service channel must be a /service/... channel, got ${channel}`);
    }
    if (typeof fn !== 'function') throw new TypeError('service handler must be a function');
    this.#services.set(channel, fn);
  }

  /** Report what the server does to `observer` (metrics, the admin page). Returns a function that stops it. */
  observe(observer: ServerObserver): () => void {
    return this.#observers.add(observer);
  }

  /** Transports report open sockets for `stats()`. */
  socketOpened(): void {
    this.#sockets++;
  }

  /** A connection went away: stop pushing to it, answer what it held. */
  detach(conn: Connection): void {
    if (conn.push) this.#sockets = Math.max(0, this.#sockets - 1);
    const id = conn.clientId;
    if (id === undefined) return;
    const presence = this.#presences.get(id);
    if (!presence) return;
    if (presence.sink === conn) presence.sink = undefined;
    if (presence.held?.conn === conn) presence.held.release(true); // nothing is taken for a gone socket
    this.#presences.prune(presence);
  }

  // ---------------------------------------------------------------- requests

  /**
   * Handle one request's messages, in order. Resolves to the JSON texts to
   * send back: deliveries first, then replies. Never rejects.
   */
  process(messages: readonly unknown[], conn: Connection): Promise<string[]> {
    return new Promise((resolve) => this.handle(messages, conn, resolve));
  }

  /**
   * {@link process} with a callback: `respond` is called once with the JSON
   * texts to send. A held connect costs a small record and this callback
   * while it waits, not a chain of suspended async functions.
   */
  handle(messages: readonly unknown[], conn: Connection, respond: (replies: string[]) => void): void {
    this.#inFlight++;
    const finish = (replies: string[]): void => {
      if (--this.#inFlight === 0) this.#idle?.();
      respond(replies);
    };
    this.#process(messages, conn).then(
      (result) => {
        if (Array.isArray(result)) return finish(result);
        const pending = result.data;
        if (pending.answered) finish(pending.answered);
        else pending.respond = finish;
      },
      (err: unknown) => {
        // #process answers every failure itself; should it ever reject, the request gets a 500, never a crash.
        this.options.logger.error(`request failed: ${err instanceof Error ? err.message : String(err)}`);
        finish([this.#stringifyReply({ channel: '/meta/unknown', successful: false, error: new BayeuxError(500, 'server_error').toString() })]);
      },
    );
  }

  /**
   * A held connect was released: take its messages (unless the batch of its
   * tick already did, or its client went away), and answer it.
   */
  readonly #heldReleased = (held: HeldConnect<PendingConnect>, aborted: boolean, taken: unknown): void => {
    const pending = held.data;
    this.#unhold(held);
    const messages = aborted ? Promise.resolve(NOTHING_TAKEN) : ((taken as Promise<TakeResult | null> | undefined) ?? this.#takeFor(pending));
    messages
      .then((result) => this.#connectReply(pending.message, undefined, pending.presence, result, aborted, pending.firstConnect, pending.multipleClients))
      .catch((err: unknown): Outcome => ({ reply: this.#failure(pending.message, err) }))
      .then(async (outcome) => {
        const { reply } = this.#timesync(pending.message, pending.received, outcome);
        const out: string[] = [];
        if (outcome.deliveries) for (const d of outcome.deliveries) out.push(d);
        if (reply) {
          const text = this.#serializeReply(reply, pending.conn);
          out.push(typeof text === 'string' ? text : await text);
        }
        this.#messagesOut += out.length;
        if (this.options.debug) for (const text of out) this.#trace('out', pending.conn, text);
        if (pending.respond) pending.respond(out);
        else pending.answered = out;
      })
      .catch((err: unknown) => this.options.logger.error(`a held connect could not be answered: ${err instanceof Error ? err.message : String(err)}`));
  };

  /** A held connect no longer waits: forget it everywhere. */
  #unhold(held: HeldConnect<PendingConnect>): void {
    const { presence, ip, conn } = held.data;
    held.release();
    conn.offAbort?.(held);
    if (presence.held === held) presence.held = undefined;
    if (ip !== undefined) {
      const n = (this.#heldPerIp.get(ip) ?? 1) - 1;
      if (n > 0) this.#heldPerIp.set(ip, n);
      else this.#heldPerIp.delete(ip);
    }
    this.#presences.prune(presence);
  }

  /** What a connect's reply carries: the session's queue, or, in push mode, nothing (after checking the session lives). */
  async #takeFor(pending: Pick<PendingConnect, 'presence' | 'pushMode' | 'ack'>): Promise<TakeResult | null> {
    const { engine } = this.options;
    const { clientId } = pending.presence;
    if (pending.pushMode) return (await engine.exists(clientId)) ? NOTHING_TAKEN : null;
    return engine.take(clientId, pending.ack);
  }

  /** The replies, or for a lone held connect, its hold (the caller registers for its answer). */
  async #process(messages: readonly unknown[], conn: Connection): Promise<string[] | HeldConnect<PendingConnect>> {
    try {
      await this.open();
    } catch (err) {
      // Every message gets the same answer: the engine could not be opened.
      return Promise.all(messages.map((raw) => {
        this.#messagesIn++;
        const message = isObject(raw) && typeof raw['channel'] === 'string' ? (raw as Message) : { channel: '/meta/unknown' };
        return this.#serializeReply(this.#failure(message, err), conn);
      }));
    }
    const single = messages.length === 1;
    const batchedHandshake = !single && messages.some((m) => isObject(m) && m['channel'] === '/meta/handshake');
    const { debug } = this.options;
    const request: RequestState = { live: new Set() };
    const outcomes: Outcome[] = [];
    /** Publishes whose engine calls are under way, with their messages. */
    const unsettled: Array<[Outcome, unknown]> = [];
    const settle = async (): Promise<void> => {
      for (const [outcome, raw] of unsettled) {
        try {
          await outcome.settle;
        } catch (err) {
          outcome.reply = this.#failure(raw as Message, err);
        }
      }
      unsettled.length = 0;
    };
    for (const raw of messages) {
      this.#messagesIn++;
      if (debug) this.#trace('in', conn, raw);
      // Anything but another plain publish waits for the publishes before it to land.
      if (!isPlainPublish(raw)) {
        request.live.clear();
        if (unsettled.length > 0) await settle();
      }
      const outcome = await this.#handle(raw, conn, single, batchedHandshake, request);
      // Only a lone connect is held; its answer comes through #heldReleased.
      if (outcome.held) return outcome.held;
      outcomes.push(outcome);
      if (outcome.settle) unsettled.push([outcome, raw]);
    }
    if (unsettled.length > 0) await settle();
    const out: string[] = [];
    for (const outcome of outcomes) {
      if (outcome.deliveries) for (const d of outcome.deliveries) out.push(d);
      if (outcome.reply) {
        const text = this.#serializeReply(outcome.reply, conn);
        out.push(typeof text === 'string' ? text : await text);
      }
    }
    this.#messagesOut += out.length;
    if (debug) for (const text of out) this.#trace('out', conn, text);
    return out;
  }

  /** Log one message at debug level: direction, transport, shortened clientId, channel, data cut short. */
  #trace(direction: 'in' | 'out', conn: Connection, message: unknown): void {
    let text: string;
    try {
      text = typeof message === 'string' ? message : (JSON.stringify(message) ?? String(message));
    } catch {
      text = '(unserializable)';
    }
    // A clientId is a bearer secret: logs get its first characters only.
    text = text.replace(CLIENT_ID_IN_JSON, '$1…"');
    if (text.length > TRACE_DATA_CHARS) text = text.slice(0, TRACE_DATA_CHARS) + `… (${text.length} chars)`;
    const id = conn.clientId ?? (isObject(message) && typeof message['clientId'] === 'string' ? message['clientId'] : undefined);
    this.options.logger.debug(`${direction === 'in' ? '<-' : '->'} ${conn.transport} ${shortId(id)} ${text}`);
  }

  async #handle(raw: unknown, conn: Connection, single: boolean, batchedHandshake: boolean, request: RequestState): Promise<Outcome> {
    if (!isObject(raw)) {
      return { reply: { channel: '/meta/unknown', successful: false, error: ProtocolErrors.badMessage('message must be an object').toString() } };
    }
    const message = raw as Message;
    const { channel } = message;
    if (typeof channel !== 'string') {
      return { reply: this.#refusal(message, ProtocolErrors.badMessage('channel missing'), '/meta/unknown') };
    }
    if (message.id !== undefined && typeof message.id !== 'string' && typeof message.id !== 'number') {
      return { reply: this.#refusal(message, ProtocolErrors.badMessage('id must be a string')) };
    }
    if (!isValidPattern(channel)) {
      return { reply: this.#refusal(message, ProtocolErrors.channelInvalid(channel)) };
    }
    if (this.#closed) {
      return { reply: this.#refusal(message, new BayeuxError(503, 'server_closing'), undefined, { reconnect: 'retry', interval: 1000 }) };
    }
    const ctx = this.#context(message, conn);
    const received = Date.now();
    try {
      // A socket belongs to the session that handshook or connected on it.
      if (conn.clientId !== undefined && message.clientId !== undefined && message.clientId !== conn.clientId && channel !== '/meta/handshake') {
        throw ProtocolErrors.denied('clientId_mismatch');
      }
      switch (channel) {
        case '/meta/handshake':
          if (batchedHandshake) {
            throw ProtocolErrors.badMessage('handshake must not be batched with other messages');
          }
          return this.#timesync(message, received, await this.#handshake(message, ctx, conn));
        case '/meta/connect':
          return this.#timesync(message, received, await this.#connect(message, ctx, conn, single, received));
        case '/meta/subscribe':
          return await this.#subscribe(message, ctx);
        case '/meta/unsubscribe':
          return await this.#unsubscribe(message, ctx);
        case '/meta/disconnect':
          return await this.#disconnect(message, ctx);
        default:
          if (isMeta(channel)) throw ProtocolErrors.channelInvalid(channel);
          return await this.#publishMessage(message, ctx, request);
      }
    } catch (err) {
      return { reply: this.#failure(message, err) };
    }
  }

  /**
   * CometD's timesync extension: a request with `ext.timesync: { tc, l, o }`
   * is answered with `{ tc, ts, p, a }`: ts when it was received, p the ms
   * until the answer (a hold included), a the accuracy of the client's
   * estimate (tc + o + l - ts).
   */
  #timesync(message: Message, received: number, outcome: Outcome): Outcome {
    const sync = message.ext?.['timesync'];
    if (!this.options.timesync || !isObject(sync) || typeof sync['tc'] !== 'number') return outcome;
    const { reply } = outcome;
    if (!reply) return outcome;
    const tc = sync['tc'];
    const l = typeof sync['l'] === 'number' ? sync['l'] : 0;
    const o = typeof sync['o'] === 'number' ? sync['o'] : 0;
    reply.ext = { ...reply.ext, timesync: { tc, ts: received, p: Date.now() - received, a: tc + o + l - received } };
    return outcome;
  }

  /** Turn a thrown value into a refusal reply; unexpected errors are logged and answered with retry advice. */
  #failure(message: Message, err: unknown): Message {
    if (err instanceof BayeuxError) {
      const advice: Advice | undefined = message.channel === '/meta/handshake' ? { reconnect: 'none', interval: 0 } : undefined;
      return this.#refusal(message, err, undefined, advice);
    }
    const retry: Advice = { reconnect: 'retry', interval: Math.max(this.options.interval, 1000) };
    if (err instanceof EngineUnavailableError) {
      // The store is out of reach (e.g. Redis restarting): nothing is wrong with the request.
      this.#observers.engineError();
      this.#logUnavailable(err);
      return this.#refusal(message, new BayeuxError(503, 'engine_unavailable'), undefined, retry);
    }
    const text = err instanceof Error ? err.message : String(err);
    this.options.logger.error(`${message.channel}: ${text}`);
    return this.#refusal(message, new BayeuxError(500, 'server_error'), undefined, {
      reconnect: 'retry',
      interval: Math.max(this.options.interval, 1000),
    });
  }

  #unavailableLogged = 0;

  /** Log an engine outage at most once every 5 s, however many requests it fails. */
  #logUnavailable(err: EngineUnavailableError): void {
    const now = Date.now();
    if (now - this.#unavailableLogged < 5000) return;
    this.#unavailableLogged = now;
    this.options.logger.warn(`engine unavailable, clients told to retry: ${err.message}`);
  }

  #refusal(message: Message, error: BayeuxError, channel?: string, advice?: Advice): Message {
    const reply: Message = { channel: channel ?? message.channel, successful: false, error: error.toString() };
    this.#observers.refused(error.code);
    // Echo only what is well-formed: a refusal must be sendable whatever the request held.
    if (typeof message.id === 'string' || typeof message.id === 'number') reply.id = message.id;
    if (typeof message.clientId === 'string') reply.clientId = message.clientId;
    const { subscription } = message;
    if (typeof subscription === 'string' || (Array.isArray(subscription) && subscription.every((s) => typeof s === 'string'))) {
      reply.subscription = subscription;
    }
    if (advice) reply.advice = advice;
    return reply;
  }

  /**
   * `ctx.client` is the sender's clientId. Handlers run middleware only
   * after checking the session exists; a handshake has no session yet.
   */
  #context(message: Message, conn: Connection): MessageContext {
    if (message.channel === '/meta/handshake') {
      return new MessageContext(undefined, conn, this.#openSession, new PendingSessionData(this.options.maxSessionDataBytes));
    }
    const claimed = message.clientId;
    return new MessageContext(typeof claimed === 'string' ? claimed : conn.clientId, conn, this.#openSession);
  }

  readonly #openSession = (clientId: string | undefined): SessionData =>
    clientId === undefined ? NO_SESSION : new EngineSessionData(this.options.engine, clientId, this.options.maxSessionDataBytes);

  #advice(): Advice {
    return { reconnect: 'retry', interval: this.options.interval, timeout: this.options.timeout };
  }

  #sessionUnknown(message: Message): Message {
    return this.#refusal(message, ProtocolErrors.sessionUnknown(), undefined, { reconnect: 'handshake', interval: 0 });
  }

  /** Replies start from the request's id and channel. */
  #reply(message: Message, fields: Omit<Message, 'channel'>): Message {
    const reply: Message = { channel: message.channel, ...fields };
    if (message.id !== undefined) reply.id = message.id;
    return reply;
  }

  // ---------------------------------------------------------------- meta handlers

  /**
   * /meta/handshake. Required: channel, version, supportedConnectionTypes.
   * Optional: minimumVersion, ext, id. Replies with clientId,
   * supportedConnectionTypes, version, advice; ext.ack when acks are on.
   */
  async #handshake(message: Message, ctx: Context, conn: Connection): Promise<Outcome> {
    const { version, supportedConnectionTypes: types } = message;
    if (typeof version !== 'string') throw ProtocolErrors.badMessage('version missing');
    if (!/^1(\.|$)/.test(version)) throw ProtocolErrors.versionUnsupported(version);
    if (!Array.isArray(types)) throw ProtocolErrors.badMessage('supportedConnectionTypes missing');
    if (!types.some((t) => this.#connectionTypes.includes(t))) throw ProtocolErrors.transportUnsupported(types);
    await this.#pipeline.run(message, ctx);
    const ack = this.options.ack && message.ext?.['ack'] === true;
    const pending = ctx.session instanceof PendingSessionData ? ctx.session.entries : undefined;
    const data = pending && pending.size > 0 ? pending : undefined;
    const clientId = await this.options.engine.createSession({ ack, ttl: this.options.maxInterval, data });
    if (conn.push) conn.clientId = clientId;
    const reply = this.#reply(message, {
      version: BAYEUX_VERSION,
      supportedConnectionTypes: [...this.#connectionTypes],
      clientId,
      successful: true,
      advice: this.#advice(),
    });
    if (ack) reply.ext = { ack: true };
    this.options.logger.info(`session ${shortId(clientId)} started (${conn.transport}${ack ? ', acks' : ''})`);
    this.#emit('handshake', clientId, new MessageContext(clientId, conn, this.#openSession));
    return { reply };
  }

  /**
   * /meta/connect. Required: channel, clientId, connectionType. Optional:
   * advice (timeout 0 asks for an immediate answer), ext.ack (the last batch
   * received), id. Held until messages arrive or `timeout` passes when it is
   * the only message in the request, the session has connected before, and
   * the client did not ask otherwise.
   */
  async #connect(message: Message, ctx: Context, conn: Connection, single: boolean, received: number): Promise<Outcome> {
    const { clientId } = message;
    const { engine, timeout, maxInterval, maxConnectionsPerIp } = this.options;
    if (typeof clientId !== 'string') return { reply: this.#sessionUnknown(message) };
    // While held, the session must outlive the wait.
    if (!(await engine.touch(clientId, timeout + maxInterval))) return { reply: this.#sessionUnknown(message) };
    await this.#pipeline.run(message, ctx);
    const ackField = message.ext?.['ack'];
    const ack = typeof ackField === 'number' ? ackField : undefined;
    const firstConnect = !this.#connected.has(clientId);
    if (firstConnect) this.#connected.set(clientId, true);

    // A client that acknowledges batches sends ext.ack on every connect; its
    // deliveries then travel only in connect replies.
    const presence = this.#presences.ensure(clientId, ack !== undefined);
    if (ack !== undefined) presence.ack = true;
    if (conn.push) {
      presence.sink = conn;
      conn.clientId = clientId;
    } else if (presence.sink) {
      presence.sink = undefined; // the session moved to long-polling
    }
    if (presence.held) {
      presence.held.release(); // an older connect for this session is answered now
      this.#presences.keep(presence); // its answer pruned the presence this connect goes on using
    }

    const requestedTimeout = message.advice?.timeout;
    let hold = single && !firstConnect && requestedTimeout !== 0 && timeout > 0 && !this.#closed;
    let multipleClients = false;
    const ip = conn.ip;
    if (hold && maxConnectionsPerIp > 0 && ip !== undefined && (this.#heldPerIp.get(ip) ?? 0) >= maxConnectionsPerIp) {
      hold = false;
      multipleClients = true;
    }

    // On a socket, a session without acks has its messages pushed, and only
    // #flush takes and pushes them: one ordered path. Its connects carry none.
    const pushMode = conn.push !== undefined && ack === undefined;
    if (pushMode) this.#presences.wake([clientId]);
    const pending: PendingConnect = {
      message, conn, presence, ip, firstConnect, multipleClients, pushMode, ack, received, respond: undefined, answered: undefined,
    };
    if (!hold) {
      let result: TakeResult | null;
      try {
        result = await this.#takeFor(pending);
      } finally {
        this.#presences.prune(presence);
      }
      return this.#connectReply(message, ctx, presence, result, false, firstConnect, multipleClients);
    }

    // Register before taking, so a publish that lands between the take and
    // the wait releases this connect instead of being missed.
    const ms = typeof requestedTimeout === 'number' && requestedTimeout > 0 ? Math.min(requestedTimeout, timeout) : timeout;
    const held = this.#holds.add(conn, ms, pending);
    presence.held = held;
    if (ip !== undefined) this.#heldPerIp.set(ip, (this.#heldPerIp.get(ip) ?? 0) + 1);
    let first: TakeResult | null;
    try {
      first = pushMode ? NOTHING_TAKEN : await this.#takeFor(pending);
    } catch (err) {
      this.#unhold(held);
      throw err;
    }
    if (!first || first.messages.length > 0 || held.released) {
      // Messages were waiting (or the wait already ended): answer now.
      const aborted = conn.aborted?.() === true;
      this.#unhold(held);
      if (first && first.messages.length === 0 && !aborted && !pushMode) first = await this.#takeFor(pending).catch(() => first);
      return this.#connectReply(message, ctx, presence, first, aborted, firstConnect, multipleClients);
    }
    if (conn.aborted?.()) held.release(true);
    else conn.onAbort?.(held);
    held.onRelease(this.#heldReleased);
    return { held };
  }

  /** The reply to a connect once its messages are taken (or its wait was aborted). */
  async #connectReply(
    message: Message,
    /** For the `connect` event of a first connect, which is never held. */
    ctx: Context | undefined,
    presence: Presence,
    result: TakeResult | null,
    aborted: boolean,
    firstConnect: boolean,
    multipleClients: boolean,
  ): Promise<Outcome> {
    const { clientId } = presence;
    const { engine, maxInterval } = this.options;
    if (!result) {
      this.#presences.delete(clientId);
      // The client disconnected while this connect was held: tell it not to come back.
      if (presence.ended === 'client') {
        return { reply: this.#reply(message, { clientId, successful: true, advice: { reconnect: 'none', interval: 0 } }) };
      }
      return { reply: this.#sessionUnknown(message) };
    }
    if (result.batch !== undefined) presence.ack = true;
    // The session lives maxInterval after this connect ends. If the engine
    // fails here the messages taken must still go out; the earlier touch
    // (timeout + maxInterval) keeps the session alive meanwhile.
    await engine.touch(clientId, maxInterval).catch(() => undefined);
    if (result.dropped > 0 && (await this.#overflowed(clientId, result.dropped))) {
      return {
        reply: this.#refusal(message, new BayeuxError(408, 'slow_consumer'), undefined, { reconnect: 'handshake', interval: 0 }),
      };
    }
    const advice = this.#advice();
    if (multipleClients) {
      advice['multiple-clients'] = true;
      advice.interval = Math.max(this.options.interval, 2000);
    }
    const reply = this.#reply(message, { clientId, successful: true, advice });
    if (result.batch !== undefined) reply.ext = { ack: result.batch };
    if (firstConnect && ctx) this.#emit('connect', clientId, ctx);
    if (aborted) return { reply };
    this.#observers.delivered(result.messages);
    return { reply, deliveries: result.messages };
  }

  /**
   * /meta/subscribe. Required: channel, clientId, subscription (a channel or
   * pattern, or a list of them). Optional: ext, id. `/service/*`
   * subscriptions succeed and do nothing; `/meta/*` ones are refused.
   */
  async #subscribe(message: Message, ctx: Context): Promise<Outcome> {
    const patterns = await this.#subscriptionRequest(message, ctx);
    if (!Array.isArray(patterns)) return { reply: patterns };
    const { engine } = this.options;
    for (const pattern of patterns) {
      if (isService(pattern)) continue;
      if (!(await this.#subscribeSession(engine, message.clientId as string, pattern))) return { reply: this.#sessionUnknown(message) };
      this.#emit('subscribe', message.clientId as string, pattern);
    }
    return { reply: this.#reply(message, { clientId: message.clientId, subscription: message.subscription, successful: true }) };
  }

  /** /meta/unsubscribe. Required: channel, clientId, subscription. Optional: ext, id. */
  async #unsubscribe(message: Message, ctx: Context): Promise<Outcome> {
    const patterns = await this.#subscriptionRequest(message, ctx);
    if (!Array.isArray(patterns)) return { reply: patterns };
    for (const pattern of patterns) {
      if (isService(pattern)) continue;
      if (!(await this.options.engine.unsubscribe(message.clientId as string, pattern))) {
        return { reply: this.#sessionUnknown(message) };
      }
      this.#emit('unsubscribe', message.clientId as string, pattern);
    }
    return { reply: this.#reply(message, { clientId: message.clientId, subscription: message.subscription, successful: true }) };
  }

  /** engine.subscribe, with the per-session cap turned into the refusal the client sees. */
  async #subscribeSession(engine: ResolvedOptions['engine'], clientId: string, pattern: string): Promise<boolean> {
    try {
      return await engine.subscribe(clientId, pattern);
    } catch (err) {
      if (err instanceof EngineLimitError) throw new BayeuxError(403, 'subscription_limit', [this.options.maxSubscriptions]);
      throw err;
    }
  }

  /** Validate a (un)subscribe request: its patterns, or the refusal to send. */
  async #subscriptionRequest(message: Message, ctx: Context): Promise<string[] | Message> {
    const { clientId, subscription } = message;
    if (typeof clientId !== 'string' || !(await this.options.engine.exists(clientId))) return this.#sessionUnknown(message);
    const patterns = Array.isArray(subscription) ? subscription : [subscription];
    if (patterns.length === 0) throw ProtocolErrors.badMessage('subscription missing');
    for (const pattern of patterns) {
      if (pattern === undefined) throw ProtocolErrors.badMessage('subscription missing');
      if (!isValidPattern(pattern)) throw ProtocolErrors.channelInvalid(pattern);
      if (isMeta(pattern)) throw new BayeuxError(403, 'meta_channel', [pattern]);
    }
    await this.#pipeline.run(message, ctx);
    return patterns as string[];
  }

  /** /meta/disconnect. Required: channel, clientId. Optional: ext, id. */
  async #disconnect(message: Message, ctx: Context): Promise<Outcome> {
    const { clientId } = message;
    if (typeof clientId !== 'string' || !(await this.options.engine.exists(clientId))) {
      return { reply: this.#sessionUnknown(message) };
    }
    await this.#pipeline.run(message, ctx);
    if (!(await this.options.engine.destroy(clientId))) return { reply: this.#sessionUnknown(message) };
    this.#forget(clientId, 'client');
    this.options.logger.info(`session ${shortId(clientId)} ended: client`);
    this.#emit('disconnect', clientId, 'client');
    return { reply: this.#reply(message, { clientId, successful: true }) };
  }

  // ---------------------------------------------------------------- publish and services

  /**
   * A publish. Required: channel, data; clientId unless anonymousPublish.
   * Optional: id, ext. `/service/*` goes to a handler and its reply to the
   * sender only; anything else is broadcast without the sender's clientId.
   */
  async #publishMessage(message: Message, ctx: Context, request: RequestState): Promise<Outcome> {
    const { channel, clientId } = message;
    if (isWildcard(channel)) throw ProtocolErrors.channelInvalid(channel);
    if (clientId !== undefined || !this.options.anonymousPublish) {
      if (typeof clientId !== 'string') return { reply: this.#sessionUnknown(message) };
      // A batch of publishes from one session checks it once.
      if (!request.live.has(clientId)) {
        if (!(await this.options.engine.exists(clientId))) return { reply: this.#sessionUnknown(message) };
        request.live.add(clientId);
      }
    }
    if (isService(channel)) return this.#callService(message, ctx);
    if (!('data' in message)) throw ProtocolErrors.badMessage('data missing');
    await this.#pipeline.run(message, ctx);
    const except = !this.options.broadcastToPublisher && typeof clientId === 'string' ? [clientId] : undefined;
    const published = this.#broadcast(message, ctx, { except, id: message.id });
    const reply = this.#reply(message, { successful: true });
    if (this.#outgoing.length > 0) {
      // An outgoing hook may be async: the next publish must not overtake this one.
      await published;
      return { reply };
    }
    // Issued already (no hook to wait for): the next publish may go out behind it at once.
    published.catch(() => undefined);
    return { reply, settle: published };
  }

  async #callService(message: Message, ctx: Context): Promise<Outcome> {
    await this.#pipeline.run(message, ctx);
    const handler = this.#services.get(message.channel) ?? this.#services.get('_handler');
    if (!handler) return { reply: this.#reply(message, { successful: true }) };
    let data: unknown;
    try {
      data = await handler(message, ctx);
    } catch (err) {
      if (err instanceof BayeuxError) throw err;
      this.options.logger.error(`service ${message.channel} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      throw new BayeuxError(500, 'service_failed', [message.channel]);
    }
    const reply = this.#reply(message, { successful: true });
    if (data !== undefined) reply.data = data;
    return { reply };
  }

  /**
   * Fan a message out: one serialization, one engine call. The copy carries
   * channel, data, and the given id and ext; never the publisher's clientId.
   */
  async #broadcast(
    message: Message,
    ctx: Context,
    options: { except?: readonly string[] | undefined; id?: string | number | undefined; ext?: Record<string, unknown> | undefined },
  ): Promise<number> {
    let copy: Message = { channel: message.channel, data: message.data };
    if (options.id !== undefined) copy.id = options.id;
    if (options.ext !== undefined) copy.ext = options.ext;
    if (this.#outgoing.length > 0) copy = await this.#applyOutgoing(copy, ctx);
    const text = JSON.stringify(copy);
    this.#observers.published(message.channel, text);
    this.#local?.published(text, ctx.client);
    const except = options.except && options.except.length > 0 ? { except: options.except } : undefined;
    const recipients = await this.options.engine.publish(expand(message.channel), text, except);
    this.#emit('publish', ctx.client, message.channel, message.data, message);
    return recipients;
  }

  /**
   * The one place outgoing hooks run: each may change the message in place,
   * return a replacement, or return a promise of either. A throw or
   * rejection rejects the result.
   */
  async #applyOutgoing(message: Message, ctx: Context): Promise<Message> {
    for (const hook of this.#outgoing) {
      const result: unknown = hook(message, ctx);
      const replacement = result && typeof (result as PromiseLike<unknown>).then === 'function' ? await result : result;
      if (isObject(replacement)) message = replacement as Message;
    }
    return message;
  }

  /** Run the outgoing hooks and serialize; a reply that cannot be (a failing hook, a BigInt in a service's answer) becomes a 500. */
  #serializeReply(reply: Message, conn: Connection): string | Promise<string> {
    if (this.#outgoing.length > 0) {
      return this.#applyOutgoing(reply, this.#context(reply, conn)).then(
        (hooked) => this.#stringifyReply(hooked),
        (err: unknown) => this.#unsendable(reply, err),
      );
    }
    return this.#stringifyReply(reply);
  }

  #stringifyReply(reply: Message): string {
    try {
      return JSON.stringify(reply);
    } catch (err) {
      return this.#unsendable(reply, err);
    }
  }

  #unsendable(reply: Message, err: unknown): string {
    this.options.logger.error(`reply on ${String(reply.channel)} could not be sent: ${err instanceof Error ? err.message : String(err)}`);
    const fallback: Message = { channel: String(reply.channel), successful: false, error: new BayeuxError(500, 'server_error').toString() };
    if (typeof reply.id === 'string' || typeof reply.id === 'number') fallback.id = reply.id;
    return JSON.stringify(fallback);
  }

  // ---------------------------------------------------------------- deliveries

  /**
   * Messages are waiting for these sessions, which have a connection here:
   * answer their held connects, or push to their sockets. All the pushes of
   * one tick take their queues in one engine call.
   */
  #flush(woken: readonly Presence[]): void {
    const pushers: Presence[] = [];
    let polls: Presence[] | undefined;
    for (const presence of woken) {
      const { sink } = presence;
      if (!sink || presence.ack) {
        // A long-polling session without acks: its queue is taken below, with the others', in one engine call.
        if (!sink && !presence.ack && presence.held && this.options.engine.takeMany) (polls ??= []).push(presence);
        else presence.held?.release();
        continue;
      }
      // A closing socket would lose what is taken for it; leave it queued for the next connect.
      if (sink.writable && !sink.writable()) continue;
      if (sink.congested?.()) void this.#congested(presence, sink);
      else pushers.push(presence);
    }
    if (pushers.length > 0) void this.#push(pushers);
    if (polls) this.#answerPolls(polls);
  }

  /**
   * Answer the held long-polling connects woken in one tick with one engine
   * call: each is released at once with its share of the batch, so nothing
   * taken can go to a connect that was answered otherwise meanwhile.
   */
  #answerPolls(polls: readonly Presence[]): void {
    const { engine } = this.options;
    const batch = (engine.takeMany as NonNullable<typeof engine.takeMany>).call(engine, polls.map((p) => p.clientId));
    batch.catch(() => undefined); // each connect's share reports the failure
    for (let i = 0; i < polls.length; i++) {
      (polls[i] as Presence).held?.release(false, batch.then((results) => results[i] ?? null));
    }
  }

  async #push(pushers: readonly Presence[]): Promise<void> {
    const { engine } = this.options;
    const ids = pushers.map((p) => p.clientId);
    let results: Array<TakeResult | null>;
    try {
      results = engine.takeMany ? await engine.takeMany(ids) : await Promise.all(ids.map((id) => engine.take(id)));
    } catch (err) {
      this.#observers.engineError();
      if (err instanceof EngineUnavailableError) this.#logUnavailable(err);
      else this.options.logger.error(`take for a push failed: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    for (let i = 0; i < pushers.length; i++) {
      const result = results[i];
      const presence = pushers[i] as Presence;
      if (!result) {
        // The session is gone (ended on another node, or expired): tell the socket's client.
        if (this.#presences.get(presence.clientId) === presence) this.#ended(presence, 'server');
        continue;
      }
      if (result.batch !== undefined) {
        // An acked session whose client left ext.ack off its connect: what was
        // taken stays unacknowledged and goes out in its next connect reply.
        presence.ack = true;
        continue;
      }
      if (result.dropped > 0 && (await this.#overflowed(presence.clientId, result.dropped))) continue;
      if (result.messages.length > 0 && presence.sink?.push) {
        this.#messagesOut += result.messages.length;
        this.#observers.delivered(result.messages);
        presence.sink.push(result.messages);
      }
    }
  }

  /** A socket over its high-water mark: apply the slow-consumer policy. */
  async #congested(presence: Presence, sink: Connection): Promise<void> {
    if (this.options.slowConsumer === 'disconnect') {
      await this.#kick(presence.clientId, 'slow_consumer');
      return;
    }
    // drop-oldest: leave messages queued (the engine bounds the queue) and
    // look again shortly; one timer per session, however many wakes come.
    if (presence.retrying) return;
    presence.retrying = true;
    setTimeout(() => {
      presence.retrying = false;
      if (this.#presences.get(presence.clientId)?.sink === sink) this.#presences.wake([presence.clientId]);
    }, 50).unref();
  }

  /** The engine dropped messages for a session; true when the session was ended for it. */
  async #overflowed(clientId: string, dropped: number): Promise<boolean> {
    this.#observers.dropped(dropped);
    if (this.options.slowConsumer === 'disconnect') {
      await this.#kick(clientId, 'slow_consumer');
      return true;
    }
    this.options.logger.warn(`session queue full: dropped ${dropped} oldest message(s) (maxQueue ${this.options.maxQueue})`);
    return false;
  }

  /** End a session on the server's initiative. */
  async #kick(clientId: string, reason: string): Promise<void> {
    const presence = this.#presences.get(clientId);
    if (await this.options.engine.destroy(clientId).catch(() => false)) {
      this.options.logger.warn(`session ${shortId(clientId)} ended by the server: ${reason}`);
      this.#emit('disconnect', clientId, 'server');
    }
    if (presence) this.#ended(presence, reason);
    else this.#forget(clientId);
  }

  /**
   * A session with a connection here is gone: its held connect is answered
   * (402, re-handshake), its socket told with a `/meta/disconnect` carrying
   * `reconnect: 'handshake'`.
   */
  #ended(presence: Presence, reason: string): void {
    const { clientId, sink } = presence;
    this.#forget(clientId, presence.ended ?? 'server');
    sink?.push?.([
      JSON.stringify({
        channel: '/meta/disconnect',
        clientId,
        successful: true,
        error: new BayeuxError(reason === 'slow_consumer' ? 408 : 402, reason).toString(),
        advice: { reconnect: 'handshake', interval: 0 },
      }),
    ]);
  }

  #forget(clientId: string, ended?: Presence['ended']): void {
    this.#connected.delete(clientId);
    const presence = this.#presences.delete(clientId);
    if (presence && ended) presence.ended = ended;
    presence?.held?.release();
  }

  #expired(clientId: string): void {
    this.#forget(clientId);
    this.options.logger.info(`session ${shortId(clientId)} ended: timeout`);
    this.#emit('disconnect', clientId, 'timeout');
  }

  #emit<K extends keyof ServerEvents>(event: K, ...args: ServerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ServerEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.options.logger.error(`'${event}' listener threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }



  // ---------------------------------------------------------------- server-side API

  /**
   * Publish from the server. Resolves to the number of sessions it was
   * queued for. `except` (a clientId or a list) does not receive it; every
   * copy carries `ext` and `id` when given.
   */
  async publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<number> {
    if (!isPublishable(channel) || isService(channel)) throw ProtocolErrors.channelInvalid(channel);
    const { except, ext, id } = checkPublishOptions(options);
    await this.open();
    await this.#local?.settled();
    const message: Message = { channel, data };
    if (id !== undefined) message.id = id;
    if (ext !== undefined) message.ext = ext;
    return this.#broadcast(message, this.#serverContext(), { except, ext, id });
  }

  /** Push one message to one session. Resolves to false for an unknown session. */
  async deliver(clientId: string, channel: string, data: unknown): Promise<boolean> {
    if (!isPublishable(channel)) throw ProtocolErrors.channelInvalid(channel);
    if (typeof clientId !== 'string') throw new TypeError('deliver: clientId must be a string');
    await this.open();
    let message: Message = { channel, data };
    if (this.#outgoing.length > 0) message = await this.#applyOutgoing(message, this.#serverContext());
    const delivered = await this.options.engine.deliver(clientId, JSON.stringify(message));
    if (delivered) this.#emit('deliver', clientId, channel, data);
    return delivered;
  }

  /**
   * Subscribe a session to a channel or pattern from the server (a room
   * join). False for an unknown session; rejects with
   * `403:<max>:subscription_limit` beyond `maxSubscriptions`. Fires
   * `subscribe`. Works for a session held by any node.
   */
  async join(clientId: string, channel: string): Promise<boolean> {
    checkRoom(clientId, channel);
    await this.open();
    if (isService(channel)) return this.options.engine.exists(clientId);
    const ok = await this.#subscribeSession(this.options.engine, clientId, channel);
    if (ok) this.#emit('subscribe', clientId, channel);
    return ok;
  }

  /** Unsubscribe a session from the server. False for an unknown session. Fires `unsubscribe`. */
  async leave(clientId: string, channel: string): Promise<boolean> {
    checkRoom(clientId, channel);
    await this.open();
    if (isService(channel)) return this.options.engine.exists(clientId);
    const ok = await this.options.engine.unsubscribe(clientId, channel);
    if (ok) this.#emit('unsubscribe', clientId, channel);
    return ok;
  }

  /** The clientIds subscribed to exactly `channel` (a channel or pattern), cluster-wide; in-process subscribers are not listed. */
  async subscribers(channel: string): Promise<string[]> {
    if (!isValidPattern(channel)) throw ProtocolErrors.channelInvalid(channel);
    await this.open();
    const ids = await this.options.engine.subscribers(channel);
    const local = await this.#local?.id();
    return local === undefined ? ids : ids.filter((id) => id !== local);
  }

  /**
   * End a session from the server. Its client is told to handshake again
   * (a held connect gets `402::session_unknown`, a WebSocket a
   * `/meta/disconnect`, both with `reconnect: 'handshake'`). Fires
   * `disconnect` with reason `server`. False for an unknown session.
   */
  async disconnect(clientId: string): Promise<boolean> {
    if (typeof clientId !== 'string') throw new TypeError('disconnect: clientId must be a string');
    await this.open();
    // The engine wakes whichever node holds the session's connection, which answers it.
    if (!(await this.options.engine.destroy(clientId))) return false;
    this.#connected.delete(clientId);
    this.options.logger.info(`session ${shortId(clientId)} ended: server`);
    this.#emit('disconnect', clientId, 'server');
    return true;
  }

  /** The per-session data of `clientId` (every method rejects with 402 for an unknown session). */
  session(clientId: string): SessionData {
    if (typeof clientId !== 'string') throw new TypeError('session: clientId must be a string');
    return new EngineSessionData(this.options.engine, clientId, this.options.maxSessionDataBytes);
  }

  #serverContext(): Context {
    return new MessageContext(undefined, { transport: 'local', req: undefined, socket: undefined, ip: undefined }, this.#openSession);
  }

  /** An in-process subscriber: sees every publish to channels matching `pattern`, from any client or node. */
  subscribe(pattern: string, listener: LocalListener): LocalSubscription {
    if (!isValidPattern(pattern) || isMeta(pattern)) throw ProtocolErrors.channelInvalid(pattern);
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    this.#local ??= new LocalClient(this, this.#presences);
    return this.#local.add(pattern, listener);
  }

  async stats(): Promise<Stats> {
    await this.open();
    const engine = await this.options.engine.stats();
    return {
      sessions: engine.sessions,
      subscriptions: engine.subscriptions,
      heldConnections: this.#holds.size,
      sockets: this.#sockets,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
    };
  }

  /** Answer every held connect now, stop timers, close the engine. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const presence of this.#presences.values()) presence.held?.release();
    this.#holds.releaseAll();
    this.#local?.stop();
    // Let the released connects (and any request under way) take their
    // queues and reply before the engine goes; at most `closeGraceMs`.
    if (this.#inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.#idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
    }
    if (this.#opened) {
      await this.#opened.catch(() => undefined);
      await this.options.engine.close();
    }
  }
}

/** A publish to a (non-meta, non-service) channel: such messages may travel to the engine back to back. */
function isPlainPublish(raw: unknown): boolean {
  if (!isObject(raw)) return false;
  const channel = raw['channel'];
  return typeof channel === 'string' && !isMeta(channel) && !isService(channel);
}

/** A clientId cut short for logs: enough to tell sessions apart, not enough to use one. */
function shortId(clientId: string | undefined): string {
  return clientId === undefined ? '-' : clientId.slice(0, 6) + '…';
}

function checkRoom(clientId: unknown, channel: unknown): void {
  if (typeof clientId !== 'string') throw new TypeError('clientId must be a string');
  if (!isValidPattern(channel) || isMeta(channel)) throw ProtocolErrors.channelInvalid(channel);
}

/** Validate `publish()` options; TypeErrors name the bad one. */
function checkPublishOptions(options: PublishOptions): { except: string[] | undefined; ext: Record<string, unknown> | undefined; id: string | number | undefined } {
  if (!isObject(options)) throw new TypeError('publish options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'except' && key !== 'ext' && key !== 'id') throw new TypeError(`unknown publish option ${key}`);
  }
  const { except, ext, id } = options;
  let list: string[] | undefined;
  if (typeof except === 'string') list = [except];
  else if (Array.isArray(except) && except.every((e) => typeof e === 'string')) list = [...(except as string[])];
  else if (except !== undefined) throw new TypeError('publish option except must be a clientId or a list of them');
  if (ext !== undefined && !isObject(ext)) throw new TypeError('publish option ext must be an object');
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number') throw new TypeError('publish option id must be a string or a number');
  return { except: list, ext, id };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
