/**
 * The subscription registry: which channels the client is subscribed to
 * and with which handlers, the listeners (`addListener()`, which send
 * nothing to the server), and the dispatch of each delivered message to
 * every handler whose pattern matches it.
 *
 * Several `subscribe()` calls for one channel share one server
 * subscription: the first sends `/meta/subscribe`, the last `unsubscribe()`
 * sends `/meta/unsubscribe`. A subscription the server accepted is
 * subscribed again, first thing, in every new session.
 */

import { channelMatches } from '../protocol/channel.js';
import { isThenable } from './errors.js';
import type { BayeuxMessage } from './message.js';
import { type PresenceEvent, presenceNotice, PresenceView, type PresentUser } from './presence.js';
import type { ClientState } from './state.js';

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

/**
 * A place in a channel's history, as the server gives it on every message
 * of a channel with history (`ext.position`): `offset` goes up by one per
 * message; `epoch` changes when the server lost the channel's history.
 */
export interface HistoryPosition {
  epoch: string;
  offset: number;
}

/**
 * Where `subscribe(channel, fn, { recover })` starts: `true` from now on
 * (and from the last message handed to `fn` after any gap), a position
 * (stored by an earlier page, say), or the last `N` messages kept.
 */
export type RecoverOption = true | HistoryPosition | { last: number };

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /**
   * Recover what was missed on this channel (it must keep history on the
   * server, see the server's `history` option): the client remembers the
   * position of the last message it handed to the handlers and, after any
   * gap (a new session, a server restart), subscribes again from there.
   * Each recovery is reported with the client's `recover` event.
   */
  recover?: RecoverOption;
  /**
   * Follow who is on this channel (it must keep presence on the server,
   * see the server's `presence` option): the subscribe's reply carries who
   * is there (`client.presence(channel)`), and the client's `join` and
   * `leave` events report each change. Default `false`.
   */
  presence?: boolean;
}

/** What the client's `recover` event reports. */
export interface RecoverOutcome {
  /** False when the server no longer had everything missed (or lost the channel's history): nothing was replayed. */
  recovered: boolean;
  /** How many missed messages the server replays (0 when `recovered` is false). */
  missed: number;
}

/** What `subscribe()` resolves with. */
export interface Subscription {
  /** The channel or pattern subscribed to. */
  readonly channel: string;
  /** False once unsubscribed, or when the server refused or the client disconnected. */
  readonly active: boolean;
  /** Stop this handler; the last handler of a channel unsubscribes it on the server. */
  unsubscribe(): Promise<void>;
  /**
   * With `recover`: the position of the last message handed to the
   * handlers (before any, the channel's position when subscribed);
   * undefined without `recover`, or before the server answered.
   */
  position(): HistoryPosition | undefined;
}

/** What the registry needs from the client. */
export interface SubscriptionsHost {
  /** Where the client is: nothing is sent to the server once it is disconnecting or disconnected. */
  readonly state: ClientState;
  /**
   * Queue a `/meta/subscribe` or `/meta/unsubscribe`; resolves with the
   * successful reply. `front` and `barrier` put a re-subscription ahead of
   * everything queued and hold the rest back until it is answered.
   */
  send(kind: 'subscribe' | 'unsubscribe', template: BayeuxMessage, options?: { barrier: boolean; front: boolean }): Promise<BayeuxMessage>;
  /** Handshake if the client has no session yet. */
  start(): void;
  /** A handler threw or rejected. */
  handlerFailed(error: unknown): void;
  /** The server answered a subscribe that asked to recover. */
  recovered(channel: string, outcome: RecoverOutcome): void;
  /** Someone joined or left a channel followed with `presence`. */
  presenceChanged(channel: string, event: PresenceEvent, user: PresentUser): void;
}

/** One channel (or pattern) subscribed on the server, and its handlers. */
interface ChannelEntry {
  channel: string;
  subscriptions: Set<ClientSubscription>;
  /** The server has accepted it in the current session (so it is re-subscribed after a new handshake). */
  confirmed: boolean;
  /** The subscribe in flight, if any. */
  pending: Promise<void> | undefined;
  /** Subscribed with `recover`: positions are kept and every new session recovers from the last. */
  recovering: boolean;
  /** The position of the last message handed to the handlers (the highest offset of its epoch). */
  position: HistoryPosition | undefined;
  /** Followed with `presence`: who is there (set by the first answered subscribe that asked). */
  presence: PresenceView | undefined;
  /** Some `subscribe()` asked for presence: every subscribe of the channel asks. */
  wantsPresence: boolean;
}

export class Subscriptions {
  readonly #host: SubscriptionsHost;
  readonly #channels = new Map<string, ChannelEntry>();
  readonly #listeners = new Set<ClientChannelListener>();

  constructor(host: SubscriptionsHost) {
    this.#host = host;
  }

  /**
   * Add `handler` to `channel` (checked by the caller), subscribing on the
   * server when it is the channel's first. Returns the subscription and,
   * while the server has not answered, the promise of its answer: the
   * subscription is not active once that rejects.
   */
  subscribe(channel: string, handler: MessageHandler, recover?: RecoverOption, presence = false): { subscription: Subscription; ready: Promise<void> | undefined } {
    const subscription = new ClientSubscription(channel, handler, (sub) => this.#removeSubscription(sub), () => this.#position(channel));
    let entry = this.#channels.get(channel);
    if (!entry) {
      const created: ChannelEntry = {
        channel, subscriptions: new Set(), confirmed: false, pending: undefined, recovering: recover !== undefined, position: undefined,
        presence: undefined, wantsPresence: presence,
      };
      this.#channels.set(channel, created);
      const template: BayeuxMessage = { channel: '/meta/subscribe', subscription: channel };
      // recover: true starts from now: { last: 0 } gets the channel's position to recover from after a gap.
      if (recover !== undefined) template.ext = { recover: recover === true ? { last: 0 } : { ...recover } };
      if (presence) template.ext = { ...template.ext, presence: true };
      created.pending = this.#host.send('subscribe', template).then(
        (reply) => {
          created.pending = undefined;
          if (this.#channels.get(channel) !== created) return;
          created.confirmed = true;
          if (recover !== undefined) this.#answered(created, reply, recover !== true);
          if (presence) this.#presenceAnswered(created, reply);
        },
        (error: unknown) => {
          created.pending = undefined;
          if (this.#channels.get(channel) === created) this.#channels.delete(channel);
          for (const sub of created.subscriptions) sub.deactivate();
          throw error;
        },
      );
      entry = created;
      this.#host.start();
    } else {
      // The channel is subscribed already: it recovers after later gaps, from its next message on.
      if (recover !== undefined) entry.recovering = true;
      if (presence && !entry.wantsPresence) this.#followPresence(entry);
    }
    entry.subscriptions.add(subscription);
    return { subscription, ready: entry.pending };
  }

  /**
   * Who is on a channel followed with `presence`, once its subscribe is
   * answered; undefined for a channel not followed so.
   */
  async presence(channel: string): Promise<PresentUser[] | undefined> {
    const entry = this.#channels.get(channel);
    if (!entry?.wantsPresence) return undefined;
    if (entry.pending) await entry.pending;
    return entry.presence?.list();
  }

  /**
   * A channel subscribed without presence starts following it: one more
   * subscribe that asks, after the one in flight. Refused, the channel
   * stays subscribed without presence (and the `subscribe()` that asked
   * rejects).
   */
  #followPresence(entry: ChannelEntry): void {
    entry.wantsPresence = true;
    const template: BayeuxMessage = { channel: '/meta/subscribe', subscription: entry.channel, ext: { presence: true } };
    const asking: Promise<void> = (entry.pending ?? Promise.resolve())
      .then(() => this.#host.send('subscribe', template))
      .then(
        (reply) => {
          if (entry.pending === asking) entry.pending = undefined;
          if (this.#channels.get(entry.channel) === entry) this.#presenceAnswered(entry, reply);
        },
        (error: unknown) => {
          if (entry.pending === asking) entry.pending = undefined;
          if (!entry.presence) entry.wantsPresence = false;
          throw error;
        },
      );
    entry.pending = asking;
  }

  #presenceAnswered(entry: ChannelEntry, reply: BayeuxMessage): void {
    const initial = entry.presence === undefined;
    entry.presence ??= new PresenceView();
    entry.presence.snapshot(reply.ext?.['presence'], initial, (event, user) => this.#host.presenceChanged(entry.channel, event, user));
  }

  /** Remove every handler of `channel` and unsubscribe on the server. */
  async unsubscribe(channel: string): Promise<void> {
    const entry = this.#channels.get(channel);
    if (!entry) return;
    for (const sub of entry.subscriptions) sub.deactivate();
    entry.subscriptions.clear();
    await this.#dropChannel(entry);
  }

  /** Add a listener for `pattern` (checked by the caller). */
  listen(pattern: string, handler: MessageHandler): ChannelListener {
    const listener = new ClientChannelListener(pattern, handler, (removed) => void this.unlisten(removed));
    this.#listeners.add(listener);
    return listener;
  }

  /** Remove a listener; returns whether it was listening. */
  unlisten(listener: ChannelListener): boolean {
    if (!(listener instanceof ClientChannelListener) || !this.#listeners.delete(listener)) return false;
    listener.deactivate();
    return true;
  }

  /** A new session: put a subscribe for every accepted subscription at the head of the queue. */
  resubscribe(): void {
    const entries = [...this.#channels.values()].filter((entry) => entry.confirmed);
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i] as ChannelEntry;
      entry.confirmed = false;
      const template: BayeuxMessage = { channel: '/meta/subscribe', subscription: entry.channel };
      // A recovering channel asks for what it missed since the last message handed to its handlers.
      const from = entry.recovering ? entry.position : undefined;
      if (entry.recovering) template.ext = { recover: from ? { ...from } : { last: 0 } };
      if (entry.wantsPresence) template.ext = { ...template.ext, presence: true };
      entry.pending = this.#host.send('subscribe', template, { barrier: true, front: true })
        .then(
          (reply) => {
            entry.pending = undefined;
            if (this.#channels.get(entry.channel) !== entry) return;
            entry.confirmed = true;
            if (entry.recovering) this.#answered(entry, reply, from !== undefined);
            if (entry.wantsPresence) this.#presenceAnswered(entry, reply);
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

  /** The client stopped: every subscription ends (listeners stay: they send nothing). */
  clear(): void {
    for (const entry of this.#channels.values()) for (const sub of entry.subscriptions) sub.deactivate();
    this.#channels.clear();
  }

  /**
   * Call each subscriber and each listener whose pattern matches, once
   * each. A recovering channel skips a message at or before the position
   * it has handed its handlers already (the same epoch, an offset not
   * above it), and remembers the position of each one it hands them.
   */
  dispatch(message: BayeuxMessage): void {
    const notice = presenceNotice(message);
    if (notice !== undefined) {
      // Join and leave notices go to the presence view, never to handlers.
      const entry = this.#channels.get(message.channel);
      entry?.presence?.apply(notice, (event, user) => this.#host.presenceChanged(entry.channel, event, user));
      return;
    }
    for (const entry of [...this.#channels.values()]) {
      if (!channelMatches(entry.channel, message.channel)) continue;
      if (entry.recovering) {
        const position = positionOf(message);
        if (position) {
          const last = entry.position;
          if (last && last.epoch === position.epoch && position.offset <= last.offset) continue;
          entry.position = position;
        }
      }
      for (const sub of [...entry.subscriptions]) {
        if (sub.active) this.#callHandler(sub.handler, message);
      }
    }
    for (const listener of [...this.#listeners]) {
      if (listener.active && channelMatches(listener.channel, message.channel)) this.#callHandler(listener.handler, message);
    }
  }

  /**
   * The server answered a subscribe that carried `ext.recover`: its reply
   * says where the channel is. Not recovered: nothing is replayed, and the
   * channel goes on from the server's position. Recovered: the missed
   * messages (those after `offset - missed`) are on their way. `report`:
   * tell the application (not for the `{ last: 0 }` that only asks where
   * the channel is).
   */
  #answered(entry: ChannelEntry, reply: BayeuxMessage, report: boolean): void {
    const answer = reply.ext?.['recover'];
    const recovered = isRecord(answer) && answer['recovered'] === true;
    const missed = recovered && typeof answer['missed'] === 'number' && answer['missed'] >= 0 ? answer['missed'] : 0;
    const position = isRecord(answer) ? positionOf({ channel: entry.channel, ext: { position: answer } }) : undefined;
    if (position) {
      const start = { epoch: position.epoch, offset: Math.max(0, position.offset - missed) };
      const last = entry.position;
      // The highest offset of an epoch; a new epoch replaces the old one.
      if (!last || last.epoch !== start.epoch || last.offset < start.offset) entry.position = start;
    }
    if (report) this.#host.recovered(entry.channel, { recovered, missed });
  }

  #position(channel: string): HistoryPosition | undefined {
    const position = this.#channels.get(channel)?.position;
    return position ? { ...position } : undefined;
  }

  /** Call a user's handler; what it throws or rejects with is reported. */
  #callHandler(handler: MessageHandler, message: BayeuxMessage): void {
    const report = (error: unknown): void => this.#host.handlerFailed(error);
    try {
      const result: unknown = handler(message.data, message);
      if (isThenable(result)) result.then(undefined, report);
    } catch (error) {
      report(error);
    }
  }

  async #removeSubscription(sub: ClientSubscription): Promise<void> {
    const entry = this.#channels.get(sub.channel);
    if (!entry || !entry.subscriptions.delete(sub)) return;
    if (entry.subscriptions.size === 0) await this.#dropChannel(entry);
  }

  async #dropChannel(entry: ChannelEntry): Promise<void> {
    if (this.#channels.get(entry.channel) === entry) this.#channels.delete(entry.channel);
    const state = this.#host.state;
    if (state === 'disconnected' || state === 'disconnecting') return;
    await this.#host.send('unsubscribe', { channel: '/meta/unsubscribe', subscription: entry.channel });
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
  readonly #position: () => HistoryPosition | undefined;

  constructor(channel: string, handler: MessageHandler, remove: (registration: ClientSubscription) => Promise<void> | void, position: () => HistoryPosition | undefined) {
    super(channel, handler, remove);
    this.#position = position;
  }

  position(): HistoryPosition | undefined {
    return this.#position();
  }

  unsubscribe(): Promise<void> {
    if (!this.active) return Promise.resolve();
    this.deactivate();
    return Promise.resolve(this.removeFrom(this));
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Longest epoch the client keeps (the server issues at most 64 characters). */
const MAX_EPOCH = 64;

/** A message's `ext.position`, when it has a well-formed one. */
function positionOf(message: BayeuxMessage): HistoryPosition | undefined {
  const position = message.ext?.['position'];
  if (!isRecord(position)) return undefined;
  const { epoch, offset } = position;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH) return undefined;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return undefined;
  return { epoch, offset };
}

/** Check a `recover` option; a `TypeError` says what is wrong. */
export function checkRecoverOption(value: unknown): RecoverOption | undefined {
  if (value === undefined || value === true) return value;
  const bad = new TypeError('subscribe() option recover must be true, a position { epoch, offset } or { last: N }');
  if (!isRecord(value)) throw bad;
  if ('last' in value) {
    const { last } = value;
    if (typeof last !== 'number' || !Number.isInteger(last) || last < 0) throw bad;
    return { last };
  }
  const position = positionOf({ channel: '/', ext: { position: value } });
  if (!position) throw bad;
  return position;
}
