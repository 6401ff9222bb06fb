/**
 * The message middleware chain: Express-style `(message, ctx, next)`
 * functions, optionally scoped to a channel pattern.
 */
import { isMeta, isValidPattern, overlaps } from '../protocol/channel.js';
import type { Context, Message, Middleware } from './types.js';

interface Layer {
  readonly pattern: string | undefined;
  readonly fn: Middleware;
}

/**
 * The channels a message is "about": its channel, and for (un)subscribe the
 * subscriptions. A layer runs when its pattern overlaps any of them, so a
 * wildcard subscription (`/**`) is seen by a layer on `/private/**`. A layer
 * scoped under `/meta/` (`/meta/subscribe`, as the Perl server's
 * `MessageACL` is written) matches the message's own channel instead.
 */
function channelsOf(message: Message): string[] {
  const { channel, subscription } = message;
  if ((channel === '/meta/subscribe' || channel === '/meta/unsubscribe') && subscription !== undefined) {
    return Array.isArray(subscription) ? subscription : [subscription];
  }
  return [channel];
}

export class Pipeline {
  readonly #layers: Layer[] = [];

  /** Add middleware, for every message or for messages about channels matching `pattern`. */
  use(pattern: string | undefined, fn: Middleware): void {
    if (pattern !== undefined && !isValidPattern(pattern)) throw new TypeError(`invalid channel pattern ${String(pattern)}`);
    if (typeof fn !== 'function') throw new TypeError('middleware must be a function');
    this.#layers.push({ pattern, fn });
  }

  /** Run the chain; resolves when every layer passed the message on, rejects with the refusal. */
  async run(message: Message, ctx: Context): Promise<void> {
    if (this.#layers.length === 0) return;
    const channels = channelsOf(message);
    for (const layer of this.#layers) {
      if (appliesTo(layer, message, channels)) await runLayer(layer.fn, message, ctx);
    }
  }

  /** Whether any layer would see `message`. */
  applies(message: Message): boolean {
    if (this.#layers.length === 0) return false;
    const channels = channelsOf(message);
    return this.#layers.some((layer) => appliesTo(layer, message, channels));
  }
}

/** Whether `layer` runs for `message`, about `channels` ({@link channelsOf}). */
function appliesTo(layer: Layer, message: Message, channels: readonly unknown[]): boolean {
  const { pattern } = layer;
  if (pattern === undefined) return true;
  const about = isMeta(pattern) ? [message.channel] : channels;
  return about.some((c) => typeof c === 'string' && isValidPattern(c) && overlaps(pattern, c));
}

/** Whatever a layer threw or rejected with refuses the message, even `undefined` or `null`. */
function refusal(err: unknown): unknown {
  return err ?? new Error('middleware rejected without a reason');
}

function runLayer(fn: Middleware, message: Message, ctx: Context): Promise<void> {
  // A function that does not take `next` is done when it returns (or its promise settles).
  if (fn.length < 3) {
    let result: unknown;
    try {
      result = fn(message, ctx, () => undefined);
    } catch (err) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the app's own refusal, whatever it is, reaches its error handling as given
      return Promise.reject(refusal(err));
    }
    return Promise.resolve(result).then(
      () => undefined,
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- as above
      (err: unknown) => Promise.reject(refusal(err)),
    );
  }
  return new Promise<void>(function layerPromise(resolve, reject) {
    let settled = false;
    const next = function next(err?: unknown): void {
      if (settled) return;
      settled = true;
      if (err === undefined || err === null) resolve();
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- next(err) passes the app's value on as given
      else reject(err);
    };
    try {
      const result = fn(message, ctx, next);
      // A rejection refuses whatever it carries: it never becomes next(undefined).
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, (err: unknown) => next(refusal(err)));
      }
    } catch (err) {
      next(refusal(err));
    }
  });
}
