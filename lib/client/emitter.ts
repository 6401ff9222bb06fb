/**
 * A small typed event emitter, so the browser entry needs no Node `events`.
 * Listeners run synchronously in registration order; one that throws or
 * rejects does not stop the others (see {@link TypedEmitter.emit}).
 */

import { isThenable, toError } from './errors.js';

/** Maps each event name to its listener's argument list. */
export type EventMap = { [event: string]: unknown[] };

/** A listener for event `K` of `E`. */
export type Listener<E extends EventMap, K extends keyof E> = (...args: E[K]) => void;

export class TypedEmitter<E extends EventMap> {
  #listeners = new Map<keyof E, Array<Listener<E, keyof E>>>();

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: Listener<E, K>): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as unknown as Listener<E, keyof E>);
    this.#listeners.set(event, list);
    return () => this.off(event, listener);
  }

  /** Add a listener that is removed after its first call; returns a function that removes it. */
  once<K extends keyof E>(event: K, listener: Listener<E, K>): () => void {
    const off = this.on(event, function onceListener(...args: E[K]) {
      off();
      listener(...args);
    });
    return off;
  }

  /** Remove a listener added with {@link on} or {@link once}. */
  off<K extends keyof E>(event: K, listener: Listener<E, K>): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    const index = list.indexOf(listener as unknown as Listener<E, keyof E>);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.#listeners.delete(event);
  }

  /** How many listeners `event` has. */
  listenerCount(event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /**
   * Call every listener of `event`; returns whether there were any. A
   * listener that throws, or returns a promise that rejects, does not stop
   * the others: its error goes to the `error` listeners when there are any
   * (and this is not `error`), otherwise it is thrown again on a later tick.
   */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const listener of [...list]) {
      try {
        const result: unknown = (listener as unknown as Listener<E, K>)(...args);
        if (isThenable(result)) result.then(undefined, (error: unknown) => this.#listenerFailed(event, error));
      } catch (error) {
        this.#listenerFailed(event, error);
      }
    }
    return true;
  }

  #listenerFailed(event: keyof E, error: unknown): void {
    if (event !== 'error' && (this.#listeners.get('error')?.length ?? 0) > 0) {
      this.emit('error', ...([toError(error)] as unknown as E[keyof E]));
      return;
    }
    setTimeout(function rethrowListenerError() { throw error; }, 0);
  }
}
