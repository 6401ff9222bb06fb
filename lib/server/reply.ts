/**
 * Replies: what handling one message produces, the reply and refusal
 * shapes (error strings, advice), and the texts sent back (outgoing hooks
 * applied, serialized, counted, traced).
 */
import { EngineUnavailableError, UnknownPublisherError } from '../engines/engine.js';
import type { ResolvedOptions } from '../options.js';
import { ProtocolErrors } from '../errors.js';
import { BayeuxError, describeError } from '../protocol/error.js';
import type { ServerCore } from './core.js';
import type { HeldConnect } from './meta/held-connect.js';
import type { Advice, Connection, Message } from './types.js';

/**
 * What one message's handling produced: replies for the sender and
 * deliveries to put before them; or, for a held connect, the connect
 * (it answers later through the request's `respond`; no async chain stays
 * suspended while it waits).
 */
export interface Outcome {
  reply?: Message;
  deliveries?: readonly string[];
  held?: HeldConnect;
  /**
   * A publish whose engine call is under way: its reply stands unless this
   * rejects. Consecutive publishes in one request are issued back to back
   * (the engine keeps call order) and awaited together.
   */
  settle?: Promise<unknown>;
}

/** Replies start from the request's id and channel. */
export function reply(message: Message, fields: Omit<Message, 'channel'>): Message {
  const out: Message = { channel: message.channel, ...fields };
  if (message.id !== undefined) out.id = message.id;
  return out;
}

/** The advice of handshake and connect replies. */
export function connectAdvice(options: ResolvedOptions): Advice {
  return { reconnect: 'retry', interval: options.interval, timeout: options.timeout };
}

/** A `successful: false` reply carrying `error`, echoing what of the request is well-formed; counted for observers. */
export function refusal(core: ServerCore, message: Message, error: BayeuxError, channel?: string, advice?: Advice): Message {
  const out: Message = { channel: channel ?? message.channel, successful: false, error: error.toString() };
  core.observers.refused(error.code);
  // Echo only what is well-formed: a refusal must be sendable whatever the request held.
  if (typeof message.id === 'string' || typeof message.id === 'number') out.id = message.id;
  if (typeof message.clientId === 'string') out.clientId = message.clientId;
  const { subscription } = message;
  if (typeof subscription === 'string' || (Array.isArray(subscription) && subscription.every((s) => typeof s === 'string'))) {
    out.subscription = subscription;
  }
  if (advice) out.advice = advice;
  return out;
}

/** `402::session_unknown`: the client must handshake again. */
export function sessionUnknown(core: ServerCore, message: Message): Message {
  return refusal(core, message, ProtocolErrors.sessionUnknown(), undefined, { reconnect: 'handshake', interval: 0 });
}

/** Turn a thrown value into a refusal reply; unexpected errors are logged and answered with retry advice. */
export function failure(core: ServerCore, message: Message, err: unknown): Message {
  const { options } = core;
  if (err instanceof BayeuxError) {
    const advice: Advice | undefined = message.channel === '/meta/handshake' ? { reconnect: 'none', interval: 0 } : undefined;
    return refusal(core, message, err, undefined, advice);
  }
  // The engine checked the publishing session with the publish (`Engine.checksPublisher`): it is gone.
  if (err instanceof UnknownPublisherError) return sessionUnknown(core, message);
  const retry: Advice = { reconnect: 'retry', interval: Math.max(options.interval, 1000) };
  if (err instanceof EngineUnavailableError) {
    // The store is out of reach (e.g. Redis restarting): nothing is wrong with the request.
    core.observers.engineError();
    core.logUnavailable(err);
    return refusal(core, message, ProtocolErrors.engineUnavailable(), undefined, retry);
  }
  const text = describeError(err);
  options.logger.error(`${message.channel}: ${text}`);
  return refusal(core, message, ProtocolErrors.serverError(), undefined, retry);
}

/**
 * The texts a request is answered with: each outcome's deliveries, then
 * its reply (through the outgoing hooks). Synchronous when no hook is
 * registered.
 */
export function answer(core: ServerCore, conn: Connection, outcomes: readonly Outcome[]): string[] | Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i] as Outcome;
    if (outcome.deliveries) for (const d of outcome.deliveries) out.push(d);
    if (!outcome.reply) continue;
    const text = serializeReply(core, outcome.reply, conn);
    if (typeof text !== 'string') return answerLater(core, conn, outcomes, i, out, text);
    out.push(text);
  }
  return sent(core, conn, out);
}

/** {@link answer} from the first reply an async hook holds up. */
async function answerLater(
  core: ServerCore, conn: Connection, outcomes: readonly Outcome[], from: number, out: string[], pending: Promise<string>,
): Promise<string[]> {
  out.push(await pending);
  for (let i = from + 1; i < outcomes.length; i++) {
    const outcome = outcomes[i] as Outcome;
    if (outcome.deliveries) for (const d of outcome.deliveries) out.push(d);
    if (outcome.reply) {
      const text = serializeReply(core, outcome.reply, conn);
      out.push(typeof text === 'string' ? text : await text);
    }
  }
  return sent(core, conn, out);
}

function sent(core: ServerCore, conn: Connection, out: string[]): string[] {
  core.messagesOut += out.length;
  if (core.options.debug) for (const text of out) core.trace('out', conn, text);
  return out;
}

/**
 * Run the outgoing hooks and serialize. A reply that cannot be sent as it
 * is (a failing hook, a BigInt in a service's answer) becomes a 500.
 */
export function serializeReply(core: ServerCore, message: Message, conn: Connection): string | Promise<string> {
  if (core.outgoing.any) {
    return core.outgoing.apply(message, core.context(message, conn)).then((hooked) => (hooked ? stringifyReply(core, hooked) : serverError(message)));
  }
  return stringifyReply(core, message);
}

/** Serialize a reply; one JSON cannot hold (a BigInt) is logged and becomes a 500. */
export function stringifyReply(core: ServerCore, message: Message): string {
  try {
    return JSON.stringify(message);
  } catch (err) {
    core.options.logger.error(`reply on ${String(message.channel)} could not be sent: ${describeError(err)}`);
    return serverError(message);
  }
}

/** What goes out instead of a reply that cannot: a 500 refusal with the request's id. */
function serverError(message: Message): string {
  const fallback: Message = { channel: String(message.channel), successful: false, error: ProtocolErrors.serverError().toString() };
  if (typeof message.id === 'string' || typeof message.id === 'number') fallback.id = message.id;
  return JSON.stringify(fallback);
}
