/**
 * Where the client's failures go. Every failure is emitted as `error`; a
 * refused message also goes to the `onError` option and the log. A
 * subscriber's or listener's failure with nobody listening for `error` is
 * thrown again on a later tick, as an `EventEmitter` listener's would be;
 * the client's own failures are not (a client offline is not a crash).
 */

import { BayeuxError, isThenable, toError, type BayeuxClientError } from './errors.js';
import type { ClientLog } from './logger.js';
import type { BayeuxMessage } from './message.js';
import type { ResolvedOptions } from './options.js';

/** Emits `error` on the client; returns whether anybody listened. */
export type EmitError = (error: Error) => boolean;

export class Reporter {
  readonly #emit: EmitError;
  readonly #onError: ResolvedOptions['onError'];
  readonly #log: ClientLog;

  constructor(emit: EmitError, onError: ResolvedOptions['onError'], log: ClientLog) {
    this.#emit = emit;
    this.#onError = onError;
    this.#log = log;
  }

  /** A message the client will not send: report it, and return the error to reject with. */
  refuse<E extends BayeuxError | BayeuxClientError>(error: E, message: BayeuxMessage): E {
    const text = error instanceof BayeuxError ? error.toString() : error.message;
    this.failed(error, { ...message, successful: false, error: text });
    return error;
  }

  /** A message the server refused (or the client refused to send): log, `onError`, `error`. */
  failed(error: BayeuxError | BayeuxClientError, message: BayeuxMessage): void {
    this.#log.warn(`bayeux refused ${String(message.channel)}: ${error instanceof BayeuxError ? error.toString() : error.message}`);
    const onError = this.#onError;
    if (onError) {
      const rethrow = (thrown: unknown): void => {
        setTimeout(function rethrowOnErrorError() { throw thrown; }, 0);
      };
      try {
        const result: unknown = onError(message, error);
        if (isThenable(result)) result.then(undefined, rethrow);
      } catch (thrown) {
        rethrow(thrown);
      }
    }
    this.#emit(error);
  }

  /** The client stopped trying (a URL that is not a Bayeux server): log at `error`, and `error`. */
  gaveUp(error: Error): void {
    this.#log.error(`bayeux gave up: ${error.message}`);
    this.#emit(error);
  }

  /** Anything else that went wrong (the network, an extension): log and `error`. */
  error(error: Error): void {
    this.#log.warn(`bayeux error: ${error.message}`);
    this.#emit(error);
  }

  /** A subscriber or listener threw or rejected: `error`, or thrown again later when nobody listens. */
  handlerFailed(error: unknown): void {
    const failure = toError(error);
    if (!this.#emit(failure)) setTimeout(function rethrowHandlerError() { throw failure; }, 0);
  }

  /** Every promise the client starts ends here or is awaited: a failure is reported, never left unhandled. */
  guard(promise: Promise<void>): void {
    promise.catch((error: unknown) => this.error(toError(error)));
  }
}
