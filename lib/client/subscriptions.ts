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

/** What `subscribe()` resolves with. */
export interface Subscription {
  /** The channel or pattern subscribed to. */
  readonly channel: string;
  /** False once unsubscribed, or when the server refused or the client disconnected. */
  readonly active: boolean;
  /** Stop this handler; the last handler of a channel unsubscribes it on the server. */
  unsubscribe(): Promise<void>;
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
}

/** One channel (or pattern) subscribed on the server, and its handlers. */
interface ChannelEntry {
  channel: string;
  subscriptions: Set<ClientSubscription>;
  /** The server has accepted it in the current session (so it is re-subscribed after a new handshake). */
  confirmed: boolean;
  /** The subscribe in flight, if any. */
  pending: Promise<void> | undefined;
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
  subscribe(channel: string, handler: MessageHandler): { subscription: Subscription; ready: Promise<void> | undefined } {
    const subscription = new ClientSubscription(channel, handler, (sub) => this.#removeSubscription(sub));
    let entry = this.#channels.get(channel);
    if (!entry) {
      const created: ChannelEntry = { channel, subscriptions: new Set(), confirmed: false, pending: undefined };
      this.#channels.set(channel, created);
      created.pending = this.#host.send('subscribe', { channel: '/meta/subscribe', subscription: channel }).then(
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
      this.#host.start();
    }
    entry.subscriptions.add(subscription);
    return { subscription, ready: entry.pending };
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
      entry.pending = this.#host.send('subscribe', { channel: '/meta/subscribe', subscription: entry.channel }, { barrier: true, front: true })
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

  /** The client stopped: every subscription ends (listeners stay: they send nothing). */
  clear(): void {
    for (const entry of this.#channels.values()) for (const sub of entry.subscriptions) sub.deactivate();
    this.#channels.clear();
  }

  /** Call each subscriber and each listener whose pattern matches, once each. */
  dispatch(message: BayeuxMessage): void {
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
  unsubscribe(): Promise<void> {
    if (!this.active) return Promise.resolve();
    this.deactivate();
    return Promise.resolve(this.removeFrom(this));
  }
}
