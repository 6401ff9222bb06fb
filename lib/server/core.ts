/**
 * The state the pieces of the Server share. The `Server` (the public
 * facade) builds one `ServerCore` and hands it to every module that does
 * part of the protocol: dispatch, the meta handlers, publish, delivery,
 * the ending of sessions. Nothing outside `lib/server` sees it, so its
 * fields are plain properties rather than a public surface.
 */
import type { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import type { PresenceMember } from '../engines/engine.js';
import { clientIdCheck } from '../engines/client-id.js';
import type { Engine, EngineUnavailableError } from '../engines/engine.js';
import type { ResolvedOptions } from '../options.js';
import { MessageContext } from './context.js';
import type { Drain } from './drain.js';
import { Holds } from './hold.js';
import { Admission, RateLimits } from './limits.js';
import type { LocalClient } from './local-client.js';
import { Observers } from './observer.js';
import { Outgoing } from './outgoing.js';
import { Pipeline } from './pipeline.js';
import { Attachments } from './attachment.js';
import { PresenceNotices, SnapshotReads } from './users.js';
import { EngineSessionData, NO_SESSION, PendingSessionData } from './session-data.js';
import type { Attachment } from './attachment.js';
import type { Connection, Message, ServerEvents, ServiceHandler, SessionData } from './types.js';
import { isObject, shortId } from './util.js';
import { describeError } from '../protocol/error.js';

/** How much of a message's data a debug trace shows. */
const TRACE_DATA_CHARS = 200;
const CLIENT_ID_IN_JSON = /("clientId":"[^"]{0,6})[^"]*"/g;

/** What the Server wires into its core: what happens on a wake and on an expiry. */
export interface CoreHandlers {
  flush: (woken: readonly Attachment[]) => void;
  expired: (clientId: string) => void;
}

/** What dispatch, the meta handlers, publish and delivery share: one per Server. */
export class ServerCore {
  readonly options: ResolvedOptions;
  readonly engine: Engine;
  /**
   * Whether a clientId has the form of the engine's ids (its own
   * `isClientId`, or a conservative check of length and characters). A
   * client's clientId that fails it never reaches the engine.
   */
  readonly isClientId: (clientId: string) => boolean;
  /** Message middleware (`use`). */
  readonly pipeline = new Pipeline();
  /** Outgoing hooks (`outgoing`): every reply and published message goes through them. */
  readonly outgoing: Outgoing;
  /** `/service/*` handlers by channel; `_handler` catches the rest. */
  readonly services = new Map<string, ServiceHandler>();
  readonly observers: Observers;
  /** The sessions with a connection on this node: their held connects and sockets. */
  readonly attachments: Attachments;
  /** Presence snapshot reads, shared by the `ext.presence` subscribes that come at once. */
  readonly snapshots = new SnapshotReads();
  /** Presence reports from the engine, turned into events and batched notices. */
  readonly notices: PresenceNotices = new PresenceNotices(this);
  /** Held `/meta/connect`s and their deadlines. */
  readonly holds = new Holds();
  /** Connection types offered in handshake replies, preferred first. */
  readonly connectionTypes: string[];
  /** Sessions that have connected at least once (on this node): their later connects may be held. */
  readonly connected: LRUCache<string, true>;
  /**
   * Who sessions are (`identify`; `{}` anonymous), for presence subscribes:
   * set at handshake on this node, read from the session's data elsewhere.
   * A session's identity never changes, so a bounded LRU will do.
   */
  readonly identities = new LRUCache<string, PresenceMember>({ max: 100_000 });
  /** Held connects per client address, for `maxConnectionsPerIp`. */
  readonly heldPerIp = new Map<string, number>();
  /**
   * The session each push-capable connection (a socket) belongs to, from
   * the handshake or connect made on it. The Server's own record: a
   * transport's connection object is never written to.
   */
  readonly #bindings = new WeakMap<Connection, string>();
  /** Admission control for handshakes (`maxHandshakeRate`, `handshakeRatePerIp`). */
  readonly admission: Admission;
  /** Per-session rate limits (`rateLimit`); undefined when off. */
  readonly rateLimits: RateLimits | undefined;
  /** The drain under way (`close({ drain })`), if any. */
  drain: Drain | undefined;
  /** In-process subscribers' session, made on first use. */
  local: LocalClient | undefined;
  closed = false;
  messagesIn = 0;
  messagesOut = 0;
  /** Requests being handled; `close()` waits for them to be answered. */
  inFlight = 0;
  /** Called when `inFlight` drops to 0 while `close()` waits. */
  idle: (() => void) | undefined;
  readonly #emitter: EventEmitter<ServerEvents>;
  #opened: Promise<void> | undefined;
  #unavailableLogged = 0;

  readonly #expired: (clientId: string) => void;

  /**
   * `flush` delivers to the sessions a tick's wakes found here, and
   * `expired` ends a session the engine let expire: the Server wires them
   * in, so this file depends on no part of the protocol.
   */
  constructor(options: ResolvedOptions, emitter: EventEmitter<ServerEvents>, handlers: CoreHandlers) {
    this.options = options;
    this.engine = options.engine;
    this.isClientId = clientIdCheck(options.engine);
    this.#emitter = emitter;
    this.#expired = handlers.expired;
    this.connectionTypes = options.jsonp ? ['long-polling', 'callback-polling'] : ['long-polling'];
    this.outgoing = new Outgoing(options.logger);
    this.observers = new Observers((err) => {
      options.logger.error(`an observer threw: ${describeError(err)}`);
    });
    this.attachments = new Attachments(handlers.flush);
    this.admission = new Admission(options.maxHandshakeRate, options.handshakeRatePerIp);
    this.rateLimits = options.rateLimit ? new RateLimits(options.rateLimit) : undefined;
    // A hint only (a miss answers one connect at once), so a plain bounded LRU will do.
    this.connected = new LRUCache({ max: 200_000 });
  }

  /** Open the engine; idempotent. Every entry point awaits it. */
  open(): Promise<void> {
    if (this.#opened) return this.#opened;
    const { options } = this;
    const opening = this.engine.open(
      {
        wake: (ids) => this.attachments.wake(ids),
        expired: (id) => this.#expired(id),
        presence: (change) => this.notices.report(change),
      },
      {
        maxQueue: options.maxQueue,
        maxQueueBytes: options.maxQueueBytes,
        maxSubscriptions: options.maxSubscriptions,
        maxSessionDataBytes: options.maxSessionDataBytes,
        sweepInterval: Math.max(50, Math.min(1000, options.maxInterval / 4)),
        logger: options.logger,
        ...(options.maxHistoryBytes === undefined ? {} : { maxHistoryBytes: options.maxHistoryBytes }),
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

  /** A request is answered: `respond` gets its texts (once per request), and `close()` learns when none is left. */
  finish(respond: (replies: string[]) => void, replies: string[]): void {
    if (--this.inFlight === 0) this.idle?.();
    respond(replies);
  }

  /** Close the engine, if it was ever opened. */
  async closeEngine(): Promise<void> {
    if (!this.#opened) return;
    await this.#opened.catch(() => undefined);
    await this.engine.close();
  }

  /** Fire a Server event; a listener that throws is logged, never the caller's problem. */
  emit<K extends keyof ServerEvents>(event: K, ...args: ServerEvents[K]): void {
    try {
      (this.#emitter.emit as (e: K, ...a: ServerEvents[K]) => boolean).call(this.#emitter, event, ...args);
    } catch (err) {
      this.options.logger.error(`'${event}' listener threw: ${describeError(err)}`);
    }
  }

  /** Bind a socket to the session that handshook or connected on it. */
  bind(conn: Connection, clientId: string): void {
    if (conn.push) this.#bindings.set(conn, clientId);
  }

  /** The session a socket is bound to; undefined for an HTTP request (never bound). */
  boundTo(conn: Connection): string | undefined {
    return conn.push === undefined ? undefined : this.#bindings.get(conn);
  }

  /**
   * The `ctx` of one message: `ctx.client` is the sender's clientId (a
   * handshake has none yet, and its session data waits to be stored).
   */
  context(message: Message, conn: Connection): MessageContext {
    if (message.channel === '/meta/handshake') {
      return new MessageContext(undefined, conn, this.openSession, new PendingSessionData(this.options.maxSessionDataBytes));
    }
    const claimed = message.clientId;
    return new MessageContext(typeof claimed === 'string' ? claimed : this.boundTo(conn), conn, this.openSession);
  }

  /** The `ctx` of the server's own calls (`publish`, `deliver`). */
  serverContext(): MessageContext {
    return new MessageContext(undefined, { transport: 'local', req: undefined, socket: undefined, ip: undefined }, this.openSession);
  }

  readonly openSession = (clientId: string | undefined): SessionData =>
    clientId === undefined || !this.isClientId(clientId) ? NO_SESSION : new EngineSessionData(this.engine, clientId, this.options.maxSessionDataBytes);

  /** Log an engine outage at most once every 5 s, however many requests it fails. */
  logUnavailable(err: EngineUnavailableError): void {
    const now = Date.now();
    if (now - this.#unavailableLogged < 5000) return;
    this.#unavailableLogged = now;
    this.options.logger.warn(`engine unavailable, clients told to retry: ${err.message}`);
  }

  /** Log one message at debug level: direction, transport, shortened clientId, channel, data cut short. */
  trace(direction: 'in' | 'out', conn: Connection, message: unknown): void {
    let text: string;
    try {
      text = typeof message === 'string' ? message : (JSON.stringify(message) ?? String(message));
    } catch {
      text = '(unserializable)';
    }
    // A clientId is a bearer secret: logs get its first characters only.
    text = text.replace(CLIENT_ID_IN_JSON, '$1…"');
    if (text.length > TRACE_DATA_CHARS) text = text.slice(0, TRACE_DATA_CHARS) + `… (${text.length} chars)`;
    const id = this.boundTo(conn) ?? (isObject(message) && typeof message['clientId'] === 'string' ? message['clientId'] : undefined);
    this.options.logger.debug(`${direction === 'in' ? '<-' : '->'} ${conn.transport} ${shortId(id)} ${text}`);
  }
}
