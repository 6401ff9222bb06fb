/**
 * The extension chain (`client.use()`, the `extensions` option), as in
 * CometD and Faye: outgoing hooks in the order extensions were added,
 * incoming hooks in reverse order, each seeing what the one before
 * returned; `null` drops the message. The chain is copied before each run,
 * so a hook that adds or removes an extension affects the next message,
 * not this one.
 */

import { isThenable, toError } from './errors.js';
import type { BayeuxExtension, BayeuxMessage } from './message.js';

export class Extensions {
  readonly #list: BayeuxExtension[];
  readonly #reportError: (error: Error) => void;

  /**
   * @param initial The `extensions` option.
   * @param reportError Where a throwing or rejecting incoming hook's error goes.
   */
  constructor(initial: readonly BayeuxExtension[], reportError: (error: Error) => void) {
    this.#list = [...initial];
    this.#reportError = reportError;
  }

  /** No extension installed: callers skip the chain (and the `await` it costs). */
  get isEmpty(): boolean {
    return this.#list.length === 0;
  }

  /** Install an extension last; returns a function that removes it. */
  add(extension: BayeuxExtension): () => void {
    const list = this.#list;
    list.push(extension);
    return function removeExtension() {
      const index = list.indexOf(extension);
      if (index >= 0) list.splice(index, 1);
    };
  }

  /**
   * Run the outgoing hooks; resolves with the message to send, or null when
   * one dropped it. A hook that throws or rejects rejects this promise: the
   * caller fails the message.
   */
  async outgoing(message: BayeuxMessage): Promise<BayeuxMessage | null> {
    let current = message;
    for (const extension of [...this.#list]) {
      if (!extension.outgoing) continue;
      const result = await extension.outgoing(current);
      if (result === null) return null;
      if (result !== undefined) current = result;
    }
    return current;
  }

  /**
   * Run the incoming hooks; returns the message to act on, or null when one
   * dropped it. They are synchronous so messages stay in order: a hook
   * that throws drops the message, one that returns a promise is skipped
   * (a promise is not a message); both failures are reported.
   */
  incoming(message: BayeuxMessage): BayeuxMessage | null {
    let current = message;
    const extensions = [...this.#list].reverse();
    for (const extension of extensions) {
      if (!extension.incoming) continue;
      try {
        const result: unknown = extension.incoming(current);
        if (result === null) return null;
        if (isThenable(result)) {
          result.then(undefined, (error: unknown) => this.#reportError(toError(error)));
          continue;
        }
        if (result !== undefined) current = result as BayeuxMessage;
      } catch (error) {
        this.#reportError(toError(error));
        return null;
      }
    }
    return current;
  }
}
