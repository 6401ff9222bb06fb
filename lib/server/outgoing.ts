/**
 * Outgoing hooks (`cometd.outgoing`): the one place they run, and the one
 * place a hook's failure is caught and logged.
 */
import type { Logger } from '../options.js';
import type { Context, Message, OutgoingHook } from './types.js';
import { describeError } from '../protocol/error.js';

/** The outgoing hooks of one Server, in the order they were added. */
export class Outgoing {
  readonly #hooks: OutgoingHook[] = [];
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  add(fn: OutgoingHook): void {
    if (typeof fn !== 'function') throw new TypeError('outgoing hook must be a function');
    this.#hooks.push(fn);
  }

  /** Whether any hook is registered: without one, what is sent skips the asynchronous path. */
  get any(): boolean {
    return this.#hooks.length > 0;
  }

  /**
   * Run every hook on `message`, in order. Each may change it in place,
   * return a replacement, or return a promise of either. A throw or a
   * rejection is logged here and the result is `undefined`: the message
   * must not be sent as it stands (a reply becomes a `500::server_error`
   * refusal, a publish or `deliver()` is refused with that error).
   */
  async apply(message: Message, ctx: Context): Promise<Message | undefined> {
    try {
      for (const hook of this.#hooks) {
        const result: unknown = hook(message, ctx);
        const replacement = result && typeof (result as PromiseLike<unknown>).then === 'function' ? await (result as PromiseLike<unknown>) : result;
        if (typeof replacement === 'object' && replacement !== null && !Array.isArray(replacement)) message = replacement as Message;
      }
      return message;
    } catch (err) {
      this.#logger.error(`outgoing hook failed on ${String(message.channel)}: ${describeError(err)}`);
      return undefined;
    }
  }
}
