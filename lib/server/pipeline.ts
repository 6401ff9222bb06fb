/**
 * The message middleware chain: Express-style `(message, ctx, next)`
 * functions, optionally scoped to a channel pattern.
 */
import { isValidChannel, overlaps } from '../channel.js';
import type { Context, Message, Middleware } from './types.js';

interface Layer {
  readonly pattern: string | undefined;
  readonly fn: Middleware;
}

/**
 * The channels a message is "about": its channel, and for (un)subscribe the
 * subscriptions. A layer runs when its pattern overlaps any of them, so a
 * wildcard subscription (`/**`) is seen by a layer on `/private/**`.
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

  get size(): number {
    return this.#layers.length;
  }

  /** Add middleware, for every message or for messages about channels matching `pattern`. */
  use(pattern: string | undefined, fn: Middleware): void {
    if (pattern !== undefined && !isValidChannel(pattern)) throw new TypeError(`invalid channel pattern ${pattern}`);
    if (typeof fn !== 'function') throw new TypeError('middleware must be a function');
    this.#layers.push({ pattern, fn });
  }

  /** Run the chain; resolves when every layer passed the message on, rejects with the refusal. */
  async run(message: Message, ctx: Context): Promise<void> {
    if (this.#layers.length === 0) return;
    const channels = channelsOf(message);
    for (const layer of this.#layers) {
      const { pattern } = layer;
      if (pattern !== undefined && !channels.some((c) => typeof c === 'string' && isValidChannel(c) && overlaps(pattern, c))) continue;
      await runLayer(layer.fn, message, ctx);
    }
  }
}

function runLayer(fn: Middleware, message: Message, ctx: Context): Promise<void> {
  // A function that does not take `next` is done when it returns (or its promise settles).
  if (fn.length < 3) {
    return Promise.resolve(fn(message, ctx, () => undefined)).then(() => undefined);
  }
  return new Promise<void>(function layerPromise(resolve, reject) {
    let settled = false;
    const next = function next(err?: unknown): void {
      if (settled) return;
      settled = true;
      if (err === undefined || err === null) resolve();
      else reject(err);
    };
    try {
      const result = fn(message, ctx, next);
      if (result && typeof (result as Promise<unknown>).then === 'function') {
        (result as Promise<unknown>).then(undefined, next);
      }
    } catch (err) {
      next(err ?? new Error('middleware threw'));
    }
  });
}
