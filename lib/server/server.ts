/**
 * The Bayeux protocol: meta handlers, validation, advice, error strings,
 * the middleware chain, services and publish. Transport- and
 * engine-agnostic: hand it arrays of messages and a `Connection`, get back
 * the JSON texts of the replies (and deliveries) to send.
 */
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import { expand, isMeta, isPublishable, isService, isValidChannel, isWildcard, matches } from '../channel.js';
import { EngineUnavailableError, type TakeResult } from '../engines/engine.js';
import { BayeuxError, ProtocolErrors } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { Observers, type ServerObserver } from './observer.js';
import { Pipeline } from './pipeline.js';
import { type HeldConnect, type Presence, Presences } from './presence.js';
import type {
  Advice, Connection, Context, Message, Middleware, OutgoingHook, ServerEvents, ServiceHandler, Stats,
} from './types.js';

export const BAYEUX_VERSION = '1.0';

/** How long close() waits for requests under way to be answered. */
const CLOSE_GRACE_MS = 2000;

/** What one message's handling produced: replies for the sender and deliveries to put before them. */
interface Outcome {
  reply?: Message;
  deliveries?: readonly string[];
}

/** An in-process subscription: call it (or its `unsubscribe`) to stop. */
export interface LocalSubscription {
  (): Promise<void>;
  unsubscribe(): Promise<void>;
  /** Settles when the subscription is active in the engine. */
  readonly ready: Promise<void>;
}

export type LocalListener = (data: unknown, message: Message) => void;



export class Server extends EventEmitter<ServerEvents> {
  readonly options: ResolvedOptions;
  readonly #pipeline = new Pipeline();
  readonly #outgoing: OutgoingHook[] = [];
  readonly #services = new Map<string, ServiceHandler>();
  readonly #presences: Presences;
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
    super();
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
    if (!isValidChannel(channel) || !isService(channel) || isWildcard(channel)) {
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
    if (presence.held?.conn === conn) presence.held.release();
    this.#presences.prune(presence);
  }

  // ---------------------------------------------------------------- requests

  /**
   * Handle one request's messages, in order. Resolves to the JSON texts to
   * send back: deliveries first, then replies. Never rejects.
   */
  async process(messages: readonly unknown[], conn: Connection): Promise<string[]> {
    this.#inFlight++;
    try {
      return await this.#process(messages, conn);
    } finally {
      if (--this.#inFlight === 0) this.#idle?.();
    }
  }

  async #process(messages: readonly unknown[], conn: Connection): Promise<string[]> {
    try {
      await this.open();
    } catch (err) {
      // Every message gets the same answer: the engine could not be opened.
      return messages.map((raw) => {
        this.#messagesIn++;
        const message = isObject(raw) && typeof raw['channel'] === 'string' ? (raw as Message) : { channel: '/meta/unknown' };
        return this.#serializeReply(this.#failure(message, err), conn);
      });
    }
    const out: string[] = [];
    const single = messages.length === 1;
    const batchedHandshake = !single && messages.some((m) => isObject(m) && m['channel'] === '/meta/handshake');
    for (const raw of messages) {
      this.#messagesIn++;
      const outcome = await this.#handle(raw, conn, single, batchedHandshake);
      if (outcome.deliveries) for (const d of outcome.deliveries) out.push(d);
      if (outcome.reply) out.push(this.#serializeReply(outcome.reply, conn));
    }
    this.#messagesOut += out.length;
    return out;
  }

  async #handle(raw: unknown, conn: Connection, single: boolean, batchedHandshake: boolean): Promise<Outcome> {
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
    if (!isValidChannel(channel)) {
      return { reply: this.#refusal(message, ProtocolErrors.channelInvalid(channel)) };
    }
    if (this.#closed) {
      return { reply: this.#refusal(message, new BayeuxError(503, 'server_closing'), undefined, { reconnect: 'retry', interval: 1000 }) };
    }
    const ctx = this.#context(message, conn);
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
          return await this.#handshake(message, ctx, conn);
        case '/meta/connect':
          return await this.#connect(message, ctx, conn, single);
        case '/meta/subscribe':
          return await this.#subscribe(message, ctx);
        case '/meta/unsubscribe':
          return await this.#unsubscribe(message, ctx);
        case '/meta/disconnect':
          return await this.#disconnect(message, ctx);
        default:
          if (isMeta(channel)) throw ProtocolErrors.channelInvalid(channel);
          return await this.#publishMessage(message, ctx, conn);
      }
    } catch (err) {
      return { reply: this.#failure(message, err) };
    }
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
  #context(message: Message, conn: Connection): Context {
    const claimed = message.channel === '/meta/handshake' ? undefined : message.clientId;
    return {
      client: typeof claimed === 'string' ? claimed : conn.clientId,
      transport: conn.transport,
      req: conn.req,
      socket: conn.socket,
      ip: conn.ip,
    };
  }

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
    const clientId = await this.options.engine.createSession({ ack, ttl: this.options.maxInterval });
    if (conn.push) conn.clientId = clientId;
    const reply = this.#reply(message, {
      version: BAYEUX_VERSION,
      supportedConnectionTypes: [...this.#connectionTypes],
      clientId,
      successful: true,
      advice: this.#advice(),
    });
    if (ack) reply.ext = { ack: true };
    this.#emit('handshake', clientId, { ...ctx, client: clientId });
    return { reply };
  }

  /**
   * /meta/connect. Required: channel, clientId, connectionType. Optional:
   * advice (timeout 0 asks for an immediate answer), ext.ack (the last batch
   * received), id. Held until messages arrive or `timeout` passes when it is
   * the only message in the request, the session has connected before, and
   * the client did not ask otherwise.
   */
  async #connect(message: Message, ctx: Context, conn: Connection, single: boolean): Promise<Outcome> {
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
    presence.held?.release(); // an older connect for this session is answered now

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
    const take = pushMode
      ? async (): Promise<TakeResult | null> => ((await engine.exists(clientId)) ? { messages: [], dropped: 0 } : null)
      : () => engine.take(clientId, ack);
    if (pushMode) this.#presences.wake([clientId]);

    let result: TakeResult | null;
    let aborted = false;
    try {
      if (!hold) {
        result = await take();
      } else {
        // Register before taking, so a publish that lands between the take
        // and the wait wakes this connect instead of being missed.
        const wait = new Wait(typeof requestedTimeout === 'number' && requestedTimeout > 0 ? Math.min(requestedTimeout, timeout) : timeout, conn.signal);
        const held: HeldConnect = { conn, release: () => wait.release() };
        presence.held = held;
        if (ip !== undefined) this.#heldPerIp.set(ip, (this.#heldPerIp.get(ip) ?? 0) + 1);
        try {
          result = pushMode ? { messages: [], dropped: 0 } : await take();
          if (result && result.messages.length === 0) {
            aborted = await wait.done;
            if (!aborted) result = await take();
          }
        } finally {
          wait.release();
          if (presence.held === held) presence.held = undefined;
          if (ip !== undefined) {
            const n = (this.#heldPerIp.get(ip) ?? 1) - 1;
            if (n > 0) this.#heldPerIp.set(ip, n);
            else this.#heldPerIp.delete(ip);
          }
        }
      }
    } finally {
      this.#presences.prune(presence);
    }
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
    if (firstConnect) this.#emit('connect', clientId, ctx);
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
      if (!(await engine.subscribe(message.clientId as string, pattern))) return { reply: this.#sessionUnknown(message) };
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

  /** Validate a (un)subscribe request: its patterns, or the refusal to send. */
  async #subscriptionRequest(message: Message, ctx: Context): Promise<string[] | Message> {
    const { clientId, subscription } = message;
    if (typeof clientId !== 'string' || !(await this.options.engine.exists(clientId))) return this.#sessionUnknown(message);
    const patterns = Array.isArray(subscription) ? subscription : [subscription];
    if (patterns.length === 0) throw ProtocolErrors.badMessage('subscription missing');
    for (const pattern of patterns) {
      if (pattern === undefined) throw ProtocolErrors.badMessage('subscription missing');
      if (!isValidChannel(pattern)) throw ProtocolErrors.channelInvalid(pattern);
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
    this.#emit('disconnect', clientId, 'client');
    return { reply: this.#reply(message, { clientId, successful: true }) };
  }

  // ---------------------------------------------------------------- publish and services

  /**
   * A publish. Required: channel, data; clientId unless anonymousPublish.
   * Optional: id, ext. `/service/*` goes to a handler and its reply to the
   * sender only; anything else is broadcast without the sender's clientId.
   */
  async #publishMessage(message: Message, ctx: Context, conn: Connection): Promise<Outcome> {
    const { channel, clientId } = message;
    if (isWildcard(channel)) throw ProtocolErrors.channelInvalid(channel);
    if (clientId !== undefined || !this.options.anonymousPublish) {
      if (typeof clientId !== 'string') return { reply: this.#sessionUnknown(message) };
      if (!(await this.options.engine.exists(clientId))) return { reply: this.#sessionUnknown(message) };
    }
    if (isService(channel)) return this.#callService(message, ctx);
    if (!('data' in message)) throw ProtocolErrors.badMessage('data missing');
    await this.#pipeline.run(message, ctx);
    await this.#broadcast(message, ctx);
    return { reply: this.#reply(message, { successful: true }) };
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

  /** Fan a message out: one serialization, one engine call. */
  async #broadcast(message: Message, ctx: Context): Promise<number> {
    let copy: Message = { channel: message.channel, data: message.data };
    if (message.id !== undefined) copy.id = message.id;
    for (const hook of this.#outgoing) copy = hook(copy, ctx) ?? copy;
    const recipients = await this.options.engine.publish(expand(message.channel), JSON.stringify(copy));
    this.#emit('publish', ctx.client, message.channel, message.data);
    return recipients;
  }

  /** Run the outgoing hooks and serialize; a reply that cannot be (a throwing hook, a BigInt in a service's answer) becomes a 500. */
  #serializeReply(reply: Message, conn: Connection): string {
    try {
      if (this.#outgoing.length > 0) {
        const ctx = this.#context(reply, conn);
        for (const hook of this.#outgoing) reply = hook(reply, ctx) ?? reply;
      }
      return JSON.stringify(reply);
    } catch (err) {
      this.options.logger.error(`reply on ${String(reply.channel)} could not be sent: ${err instanceof Error ? err.message : String(err)}`);
      const fallback: Message = { channel: String(reply.channel), successful: false, error: new BayeuxError(500, 'server_error').toString() };
      if (typeof reply.id === 'string' || typeof reply.id === 'number') fallback.id = reply.id;
      return JSON.stringify(fallback);
    }
  }

  // ---------------------------------------------------------------- deliveries

  /**
   * Messages are waiting for these sessions, which have a connection here:
   * answer their held connects, or push to their sockets. All the pushes of
   * one tick take their queues in one engine call.
   */
  #flush(woken: readonly Presence[]): void {
    const pushers: Presence[] = [];
    for (const presence of woken) {
      const { sink } = presence;
      if (!sink || presence.ack) {
        presence.held?.release();
        continue;
      }
      // A closing socket would lose what is taken for it; leave it queued for the next connect.
      if (sink.writable && !sink.writable()) continue;
      if (sink.congested?.()) void this.#congested(presence, sink);
      else pushers.push(presence);
    }
    if (pushers.length > 0) void this.#push(pushers);
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
      if (!result) continue;
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
    const sink = presence?.sink;
    if (await this.options.engine.destroy(clientId).catch(() => false)) {
      this.options.logger.warn(`session ended by the server: ${reason}`);
      this.#emit('disconnect', clientId, 'server');
    }
    this.#forget(clientId);
    sink?.push?.([
      JSON.stringify({
        channel: '/meta/disconnect',
        clientId,
        successful: true,
        error: new BayeuxError(408, reason).toString(),
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

  /** Publish from the server. Resolves to the number of sessions it was queued for. */
  async publish(channel: string, data: unknown): Promise<number> {
    if (!isPublishable(channel) || isService(channel)) throw ProtocolErrors.channelInvalid(channel);
    await this.open();
    await this.#local?.settled();
    return this.#broadcast({ channel, data }, serverContext());
  }

  /** Push one message to one session. Resolves to false for an unknown session. */
  async deliver(clientId: string, channel: string, data: unknown): Promise<boolean> {
    if (!isPublishable(channel)) throw ProtocolErrors.channelInvalid(channel);
    await this.open();
    let message: Message = { channel, data };
    for (const hook of this.#outgoing) message = hook(message, serverContext()) ?? message;
    return this.options.engine.deliver(clientId, JSON.stringify(message));
  }

  /** An in-process subscriber: sees every publish to channels matching `pattern`, from any client or node. */
  subscribe(pattern: string, listener: LocalListener): LocalSubscription {
    if (!isValidChannel(pattern) || isMeta(pattern)) throw ProtocolErrors.channelInvalid(pattern);
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
      heldConnections: this.#presences.heldCount,
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

function serverContext(): Context {
  return { client: undefined, transport: 'local', req: undefined, socket: undefined, ip: undefined };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A timed wait that can be released early or aborted. Resolves to true when aborted. */
class Wait {
  readonly done: Promise<boolean>;
  #resolve!: (aborted: boolean) => void;
  #timer: NodeJS.Timeout | undefined;
  #signal: AbortSignal | undefined;
  #onAbort = (): void => this.#finish(true);

  constructor(ms: number, signal: AbortSignal | undefined) {
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    this.#timer = setTimeout(() => this.#finish(false), ms);
    this.#signal = signal;
    if (signal?.aborted) this.#finish(true);
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  release(): void {
    this.#finish(false);
  }

  #finish(aborted: boolean): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#resolve(aborted);
  }
}

/**
 * The server's own session for in-process subscribers: an engine session
 * like any other, so it sees publishes from every node, kept alive by a
 * timer and re-created if the engine lost it.
 */
class LocalClient {
  readonly #server: Server;
  readonly #presences: Presences;
  readonly #listeners = new Map<string, Set<LocalListener>>();
  #id: Promise<string> | undefined;
  #pending: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(server: Server, presences: Presences) {
    this.#server = server;
    this.#presences = presences;
  }

  /** Resolves when every subscribe/unsubscribe issued so far reached the engine. */
  settled(): Promise<unknown> {
    return this.#pending;
  }

  add(pattern: string, listener: LocalListener): LocalSubscription {
    let set = this.#listeners.get(pattern);
    const first = !set;
    if (!set) this.#listeners.set(pattern, (set = new Set()));
    set.add(listener);
    const ready = this.#queue(async () => {
      if (first) await this.#server.options.engine.subscribe(await this.#session(), pattern);
    });
    let done: Promise<void> | undefined;
    const unsubscribe = (): Promise<void> => {
      done ??= this.#queue(async () => {
        const current = this.#listeners.get(pattern);
        if (!current?.delete(listener) || current.size > 0) return;
        this.#listeners.delete(pattern);
        await this.#server.options.engine.unsubscribe(await this.#session(), pattern);
      });
      return done;
    };
    return Object.assign(unsubscribe, { unsubscribe, ready });
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  #queue(task: () => Promise<void>): Promise<void> {
    const run = this.#pending.then(task);
    this.#pending = run.catch((err: unknown) => {
      this.#server.options.logger.error(`local subscription failed: ${err instanceof Error ? err.message : String(err)}`);
    });
    return run;
  }

  #session(): Promise<string> {
    this.#id ??= this.#create();
    return this.#id;
  }

  async #create(): Promise<string> {
    const { engine, maxInterval } = this.#server.options;
    await this.#server.open();
    const id = await engine.createSession({ ack: false, ttl: maxInterval });
    const presence = this.#presences.ensure(id, false);
    presence.sink = {
      transport: 'local',
      push: (messages) => this.#dispatch(messages),
    };
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#keepAlive(), Math.max(20, maxInterval / 3));
      this.#timer.unref();
    }
    return id;
  }

  /** Touch the session; if the engine lost it (expiry during an outage), make a new one and subscribe again. */
  async #keepAlive(): Promise<void> {
    if (this.#stopped || !this.#id) return;
    const { engine, maxInterval } = this.#server.options;
    try {
      const id = await this.#id;
      if (await engine.touch(id, maxInterval)) return;
      this.#presences.delete(id);
      this.#id = this.#create();
      const fresh = await this.#id;
      for (const pattern of this.#listeners.keys()) await engine.subscribe(fresh, pattern);
    } catch (err) {
      this.#server.options.logger.warn(`local client keep-alive failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #dispatch(messages: readonly string[]): void {
    for (const text of messages) {
      const message = JSON.parse(text) as Message;
      for (const [pattern, listeners] of this.#listeners) {
        if (!matches(pattern, message.channel)) continue;
        for (const listener of listeners) {
          try {
            listener(message.data, message);
          } catch (err) {
            this.#server.options.logger.error(`subscriber of ${pattern} threw: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
      }
    }
  }
}


