/**
 * The Bayeux protocol server, as the rest of the library sees it: the
 * facade over the modules of `lib/server` (dispatch, `meta/*`, publish,
 * delivery, ...), which share one internal `ServerCore`. Transport- and
 * engine-agnostic: hand it arrays of messages and a `Connection`, get back
 * the JSON texts of the replies (and deliveries) to send.
 */
import { EventEmitter } from 'node:events';
import { ProtocolErrors } from '../errors.js';
import { isMeta, isPublishable, isService, isValidChannel, isValidPattern } from '../protocol/channel.js';
import type { ResolvedOptions } from '../options.js';
import { ServerCore } from './core.js';
import { flush } from './delivery.js';
import { type HistoryOptions, type HistoryResult, readHistory } from './history.js';
import { dispatch } from './dispatch.js';
import { Drain } from './drain.js';
import { LocalClient } from './local-client.js';
import { subscribeSession } from './meta/subscription.js';
import type { ServerObserver } from './observer.js';
import { broadcast, deliverTo } from './publish.js';
import { expired } from './session-end.js';
import { presenceCountOf, presenceOf, type PresenceUser, sessionsOf, unfollowPresence } from './users.js';
import type { PresenceCount } from '../engines/engine.js';
import type {
  CloseOptions, Connection, LocalListener, LocalSubscription, Message, Middleware, OutgoingHook, PublishOptions, ServerEvents, ServiceHandler, SessionData, Stats,
} from './types.js';
import { isObject, shortId } from './util.js';
import { describeError } from '../protocol/error.js';

/** How long close() waits for requests under way to be answered. */
const CLOSE_GRACE_MS = 2000;

/**
 * One Bayeux server: what transports hand requests to, and the API the
 * middleware object exposes (`publish`, `join`, `session`, events, ...).
 */
export class Server extends EventEmitter<ServerEvents> {
  readonly options: ResolvedOptions;
  /** What the modules of lib/server share; never exposed. */
  readonly #core: ServerCore;
  #sockets = 0;
  /** Settles when the server is closed (set once `close()` begins closing it). */
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions) {
    // A listener that returns a rejected promise is routed to the rejection handler below, never left unhandled.
    super({ captureRejections: true });
    // A listener's returned promise rejected: log it, never crash.
    (this as unknown as Record<symbol, unknown>)[EventEmitter.captureRejectionSymbol] = (err: unknown, event: string | symbol): void => {
      this.options.logger.error(`'${String(event)}' listener rejected: ${describeError(err)}`);
    };
    this.options = options;
    const core: ServerCore = new ServerCore(options, this, {
      flush: (woken) => flush(core, woken),
      expired: (clientId) => expired(core, clientId),
    });
    this.#core = core;
    for (const [name, fn] of Object.entries(options.services)) {
      this.#core.services.set(name === '_handler' ? '_handler' : '/service/' + name.replace(/^\/+/, ''), fn);
    }
  }

  /** Open the engine; idempotent. Every entry point awaits it. */
  open(): Promise<void> {
    return this.#core.open();
  }

  get closed(): boolean {
    return this.#core.closed;
  }

  /** True while a drain (`close({ drain })`) is under way. */
  get draining(): boolean {
    return this.#core.drain !== undefined && !this.#core.closed;
  }

  /** Connection types offered in handshake replies. The WebSocket transport adds itself. */
  addConnectionType(type: string): void {
    const types = this.#core.connectionTypes;
    if (!types.includes(type)) types.unshift(type);
  }

  /** Add message middleware, for every message or for those about channels matching `pattern`. */
  use(pattern: string | undefined, fn: Middleware): void {
    this.#core.pipeline.use(pattern, fn);
  }

  /** Add a hook on everything sent (see {@link OutgoingHook}). */
  outgoing(fn: OutgoingHook): void {
    this.#core.outgoing.add(fn);
  }

  /** Answer requests on a `/service/*` channel (`_handler`: every service channel without a handler). */
  service(channel: string, fn: ServiceHandler): void {
    const { services } = this.#core;
    if (channel === '_handler') {
      services.set('_handler', fn);
      return;
    }
    if (!isValidChannel(channel) || !isService(channel)) {
      throw new TypeError(`service channel must be a /service/... channel, got ${channel}`);
    }
    if (typeof fn !== 'function') throw new TypeError('service handler must be a function');
    services.set(channel, fn);
  }

  /** Report what the server does to `observer` (metrics, the admin page). Returns a function that stops it. */
  observe(observer: ServerObserver): () => void {
    return this.#core.observers.add(observer);
  }

  /** Transports report open sockets for `stats()`. */
  socketOpened(): void {
    this.#sockets++;
  }

  /** A connection went away: stop pushing to it, answer what it held. */
  detach(conn: Connection): void {
    if (conn.push) this.#sockets = Math.max(0, this.#sockets - 1);
    const core = this.#core;
    const id = core.boundTo(conn);
    if (id === undefined) return;
    const attachment = core.attachments.get(id);
    if (!attachment) return;
    if (attachment.sink === conn) {
      attachment.sink = undefined;
      // What pushes took may be kept in the engine's memory only: the client may come back through another node.
      core.engine.detached?.(id);
    }
    if (attachment.held?.conn === conn) attachment.held.abort(); // nothing is taken for a gone socket
    core.attachments.prune(attachment);
  }

  // ---------------------------------------------------------------- requests

  /**
   * Handle one request's messages, in order. Resolves to the JSON texts to
   * send back: deliveries first, then replies. Never rejects.
   */
  process(messages: readonly unknown[], conn: Connection): Promise<string[]> {
    return new Promise((resolve) => dispatch(this.#core, messages, conn, resolve));
  }

  /**
   * {@link process} with a callback: `respond` is called once with the JSON
   * texts to send. A held connect keeps this callback in its one object
   * (`meta/held-connect.ts` `HeldConnect`) while it waits, not a chain of
   * suspended async functions.
   */
  handle(messages: readonly unknown[], conn: Connection, respond: (replies: string[]) => void): void {
    dispatch(this.#core, messages, conn, respond);
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
    const core = this.#core;
    await core.open();
    await core.local?.settled();
    const message: Message = { channel, data };
    if (id !== undefined) message.id = id;
    if (ext !== undefined) message.ext = ext;
    return broadcast(core, message, core.serverContext(), { except, ext, id });
  }

  /**
   * The kept messages of a channel with history (oldest first) and its
   * position. Rejects with `404:<channel>:no_history` for a channel no
   * `history` pattern matches.
   */
  history(channel: string, options?: HistoryOptions): Promise<HistoryResult> {
    return readHistory(this.#core, channel, options);
  }

  /** Push one message to one session. Resolves to false for an unknown session. */
  async deliver(clientId: string, channel: string, data: unknown): Promise<boolean> {
    if (!isPublishable(channel)) throw ProtocolErrors.channelInvalid(channel);
    if (typeof clientId !== 'string') throw new TypeError('deliver: clientId must be a string');
    const core = this.#core;
    if (!core.isClientId(clientId)) return false;
    await core.open();
    return deliverTo(core, clientId, channel, data);
  }

  /**
   * Subscribe a session to a channel or pattern from the server (a room
   * join). False for an unknown session; rejects with
   * `403:<max>:subscription_limit` beyond `maxSubscriptions`. Fires
   * `subscribe`. Works for a session held by any node.
   */
  async join(clientId: string, channel: string): Promise<boolean> {
    checkRoom(clientId, channel);
    const core = this.#core;
    if (!core.isClientId(clientId)) return false;
    await core.open();
    if (isService(channel)) return core.engine.exists(clientId);
    const ok = await subscribeSession(core, clientId, channel);
    if (ok) core.emit('subscribe', clientId, channel);
    return ok;
  }

  /** Unsubscribe a session from the server. False for an unknown session. Fires `unsubscribe`. */
  async leave(clientId: string, channel: string): Promise<boolean> {
    checkRoom(clientId, channel);
    const core = this.#core;
    if (!core.isClientId(clientId)) return false;
    await core.open();
    if (isService(channel)) return core.engine.exists(clientId);
    const ok = await core.engine.unsubscribe(clientId, channel);
    if (ok) {
      await unfollowPresence(core, clientId, channel);
      core.emit('unsubscribe', clientId, channel);
    }
    return ok;
  }

  /** The clientIds subscribed to exactly `channel` (a channel or pattern), cluster-wide; in-process subscribers are not listed. */
  async subscribers(channel: string): Promise<string[]> {
    if (!isValidPattern(channel)) throw ProtocolErrors.channelInvalid(channel);
    const core = this.#core;
    await core.open();
    const ids = await core.engine.subscribers(channel);
    const local = await core.local?.id();
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
    const core = this.#core;
    if (!core.isClientId(clientId)) return false;
    await core.open();
    // The engine wakes whichever node holds the session's connection, which answers it.
    if (!(await core.engine.destroy(clientId))) return false;
    core.connected.delete(clientId);
    this.options.logger.info(`session ${shortId(clientId)} ended: server`);
    core.emit('disconnect', clientId, 'server');
    return true;
  }

  /** Who is on a presence channel, by user (see `users.ts` `presenceOf`). */
  presence(channel: string): Promise<PresenceUser[]> {
    return presenceOf(this.#core, channel);
  }

  presenceCount(channel: string): Promise<PresenceCount> {
    return presenceCountOf(this.#core, channel);
  }

  /** The live sessions of a user, cluster-wide. */
  sessionsOf(userId: string): Promise<string[]> {
    return sessionsOf(this.#core, userId);
  }

  /** `deliver` to every session of a user; resolves to how many it reached. */
  async deliverToUser(userId: string, channel: string, data: unknown): Promise<number> {
    if (!isPublishable(channel)) throw ProtocolErrors.channelInvalid(channel);
    const ids = await sessionsOf(this.#core, userId);
    const reached = await Promise.all(ids.map((id) => deliverTo(this.#core, id, channel, data)));
    return reached.filter(Boolean).length;
  }

  /** `disconnect` every session of a user; resolves to how many ended. */
  async disconnectUser(userId: string): Promise<number> {
    const ids = await sessionsOf(this.#core, userId);
    const ended = await Promise.all(ids.map((id) => this.disconnect(id)));
    return ended.filter(Boolean).length;
  }

  /** The per-session data of `clientId` (every method rejects with 402 for an unknown session). */
  session(clientId: string): SessionData {
    if (typeof clientId !== 'string') throw new TypeError('session: clientId must be a string');
    // A clientId not of the engine's form gets data that rejects with 402, without asking the engine.
    return this.#core.openSession(clientId);
  }

  /** An in-process subscriber: sees every publish to channels matching `pattern`, from any client or node. */
  subscribe(pattern: string, listener: LocalListener): LocalSubscription {
    if (!isValidPattern(pattern) || isMeta(pattern)) throw ProtocolErrors.channelInvalid(pattern);
    if (typeof listener !== 'function') throw new TypeError('listener must be a function');
    const core = this.#core;
    core.local ??= new LocalClient(core, core.attachments);
    return core.local.add(pattern, listener);
  }

  async stats(): Promise<Stats> {
    const core = this.#core;
    await core.open();
    const engine = await core.engine.stats();
    return {
      sessions: engine.sessions,
      subscriptions: engine.subscriptions,
      heldConnections: core.holds.size,
      sockets: this.#sockets,
      messagesIn: core.messagesIn,
      messagesOut: core.messagesOut,
    };
  }

  /**
   * Answer every held connect now, stop timers, close the engine. With
   * `drain`, first hand the sessions off over that many ms (see `drain.ts`);
   * a `close()` without it during a drain cuts the drain short.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    const drainMs = checkCloseOptions(options);
    const core = this.#core;
    if (core.closed) return this.#closing;
    if (drainMs > 0 || core.drain) {
      core.drain ??= new Drain(core, drainMs);
      if (drainMs > 0) await core.drain.done;
      else core.drain.stop();
      // Every caller resolves when the server is closed, whichever of them closes it.
      if (core.closed) return this.#closing;
    }
    core.closed = true;
    this.#closing = this.#shutdown();
    return this.#closing;
  }

  /** What `close()` does once no drain is under way: answer, wait a little, close the engine. */
  async #shutdown(): Promise<void> {
    const core = this.#core;
    for (const attachment of core.attachments.values()) attachment.held?.release();
    core.holds.releaseAll();
    core.local?.stop();
    core.notices.flush();
    // Let the released connects (and any request under way) take their
    // queues and reply before the engine goes; at most CLOSE_GRACE_MS.
    if (core.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (core.idle = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_GRACE_MS))),
      ]);
      clearTimeout(timer);
    }
    await core.closeEngine();
  }
}

/** Validate `close()` options; the drain window in ms (0: none). */
function checkCloseOptions(options: CloseOptions): number {
  if (!isObject(options)) throw new TypeError('close options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'drain') throw new TypeError(`unknown close option ${key}`);
  }
  const { drain = 0 } = options;
  if (typeof drain !== 'number' || !Number.isInteger(drain) || drain < 0 || drain > 2 ** 31 - 1) {
    throw new TypeError('close option drain must be an integer number of ms from 0 to 2147483647');
  }
  return drain;
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
  else if (Array.isArray(except) && except.every((e) => typeof e === 'string')) list = [...(except)];
  else if (except !== undefined) throw new TypeError('publish option except must be a clientId or a list of them');
  if (ext !== undefined && !isObject(ext)) throw new TypeError('publish option ext must be an object');
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number') throw new TypeError('publish option id must be a string or a number');
  return { except: list, ext, id };
}

