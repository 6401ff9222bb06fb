/**
 * In-process subscribers (`cometd.subscribe`): the server's own session,
 * fed by the engine like any other, so it sees publishes from every node.
 */
import { channelMatches } from '../protocol/channel.js';
import { unspliced } from './history.js';
import type { Attachments } from './attachment.js';
import type { ResolvedOptions } from '../options.js';
import type { LocalListener, LocalMessageInfo, LocalSubscription, Message } from './types.js';
import { describeError } from '../protocol/error.js';

/** What the local client needs of the server: its options, and the engine opened. */
export interface LocalHost {
  readonly options: Pick<ResolvedOptions, 'engine' | 'logger' | 'maxInterval'>;
  open(): Promise<void>;
}

/**
 * The server's own session for in-process subscribers: an engine session
 * like any other, so it sees publishes from every node, kept alive by a
 * timer and re-created if the engine lost it.
 */
export class LocalClient {
  readonly #server: LocalHost;
  readonly #attachments: Attachments;
  readonly #listeners = new Map<string, Set<LocalListener>>();
  #id: Promise<string> | undefined;
  #pending: Promise<unknown> = Promise.resolve();
  /** Who published recent messages on this node, by their serialized text (two one-second generations). */
  #origins = new Map<string, string>();
  #olderOrigins = new Map<string, string>();
  #rotated = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(server: LocalHost, attachments: Attachments) {
    this.#server = server;
    this.#attachments = attachments;
  }

  /** This node's local session id, once it has one. */
  async id(): Promise<string | undefined> {
    return this.#id?.catch(() => undefined);
  }

  /** Remember who published `text` on this node, so subscribers learn it as `info.client`. */
  published(text: string, client: string | undefined): void {
    if (client === undefined) return;
    const now = Date.now();
    if (now - this.#rotated > 1000) {
      this.#olderOrigins = this.#origins;
      this.#origins = new Map();
      this.#rotated = now;
    }
    this.#origins.set(text, client);
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
      this.#server.options.logger.error(`local subscription failed: ${describeError(err)}`);
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
    const attachment = this.#attachments.ensure(id, false);
    attachment.sink = {
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
      this.#attachments.delete(id);
      this.#id = this.#create();
      const fresh = await this.#id;
      for (const pattern of this.#listeners.keys()) await engine.subscribe(fresh, pattern);
    } catch (err) {
      this.#server.options.logger.warn(`local client keep-alive failed: ${describeError(err)}`);
    }
  }

  /** Who published `text` on this node; a history copy is found by its text as published, before the engine gave it a position. */
  #origin(text: string): string | undefined {
    const found = this.#origins.get(text) ?? this.#olderOrigins.get(text);
    if (found !== undefined || this.#origins.size + this.#olderOrigins.size === 0) return found;
    const published = unspliced(text);
    return published === undefined ? undefined : this.#origins.get(published) ?? this.#olderOrigins.get(published);
  }

  #dispatch(messages: readonly string[]): void {
    for (const text of messages) {
      const message = JSON.parse(text) as Message;
      const info: LocalMessageInfo = { client: this.#origin(text) };
      for (const [pattern, listeners] of this.#listeners) {
        if (!channelMatches(pattern, message.channel)) continue;
        for (const listener of listeners) {
          const failed = (err: unknown): void => {
            this.#server.options.logger.error(`subscriber of ${pattern} failed: ${describeError(err)}`);
          };
          try {
            const result = listener(message.data, message, info);
            if (result && typeof (result as PromiseLike<unknown>).then === 'function') (result as Promise<unknown>).then(undefined, failed);
          } catch (err) {
            failed(err);
          }
        }
      }
    }
  }
}


