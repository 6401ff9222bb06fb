/**
 * CometD's timesync extension, which the server answers itself: a request
 * with `ext.timesync: { tc, l, o }` is answered with `{ tc, ts, p, a }`.
 */
import type { ResolvedOptions } from '../options.js';
import { isObject } from './util.js';
import type { Outcome } from './reply.js';
import type { Message } from './types.js';

/**
 * Add the timesync answer to `outcome`'s reply: ts when the request was
 * received, p the ms until the answer (a hold included), a the accuracy of
 * the client's estimate (tc + o + l - ts).
 */
export function timesync(options: ResolvedOptions, message: Message, received: number, outcome: Outcome): Outcome {
  const sync = message.ext?.['timesync'];
  if (!options.timesync || !isObject(sync) || typeof sync['tc'] !== 'number') return outcome;
  const { reply } = outcome;
  if (!reply) return outcome;
  const tc = sync['tc'];
  const l = typeof sync['l'] === 'number' ? sync['l'] : 0;
  const o = typeof sync['o'] === 'number' ? sync['o'] : 0;
  reply.ext = { ...reply.ext, timesync: { tc, ts: received, p: Date.now() - received, a: tc + o + l - received } };
  return outcome;
}
