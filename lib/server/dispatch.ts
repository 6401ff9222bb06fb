/**
 * Dispatch: the messages of one request, in order. Each is validated and
 * routed by its channel to a meta handler or to publish; consecutive plain
 * publishes go to the engine back to back. The replies come back through
 * the transport's `respond` callback, once.
 */
import { ProtocolErrors } from '../errors.js';
import { isMeta, isService, isValidPattern } from '../protocol/channel.js';
import type { ServerCore } from './core.js';
import { connect } from './meta/connect.js';
import { disconnect } from './meta/disconnect.js';
import { handshake } from './meta/handshake.js';
import { subscribe, unsubscribe } from './meta/subscription.js';
import { kick } from './session-end.js';
import { publishMessage, type RequestState } from './publish.js';
import { answer, failure, type Outcome, refusal, serializeReply, sessionUnknown, stringifyReply } from './reply.js';
import { timesync } from './timesync.js';
import type { Connection, Message } from './types.js';
import { isObject } from './util.js';
import { describeError } from '../protocol/error.js';

/**
 * Handle one request's messages; `respond` is called once with the JSON
 * texts to send (deliveries first, then replies). A held connect costs one
 * object while it waits (`meta/held-connect.ts` `HeldConnect`, which keeps
 * `respond` and calls it), not a chain of suspended async functions.
 */
export function dispatch(core: ServerCore, messages: readonly unknown[], conn: Connection, respond: (replies: string[]) => void): void {
  core.inFlight++;
  run(core, messages, conn, respond).then(
    (replies) => {
      if (replies) core.finish(respond, replies);
    },
    (err: unknown) => {
      // run() answers every failure itself; should it ever reject, the request gets a 500, never a crash.
      core.options.logger.error(`request failed: ${describeError(err)}`);
      core.finish(respond, [stringifyReply(core, { channel: '/meta/unknown', successful: false, error: ProtocolErrors.serverError().toString() })]);
    },
  );
}

/** The replies, or undefined for a lone connect that is held (it answers through `respond` itself). */
async function run(core: ServerCore, messages: readonly unknown[], conn: Connection, respond: (replies: string[]) => void): Promise<string[] | undefined> {
  try {
    await core.open();
  } catch (err) {
    // Every message gets the same answer: the engine could not be opened.
    // serializeReply answers a plain reply at once and a hooked one later: the list mixes texts and promises.
    // eslint-disable-next-line @typescript-eslint/await-thenable
    return Promise.all(messages.map((raw) => {
      core.messagesIn++;
      const message = isObject(raw) && typeof raw['channel'] === 'string' ? (raw as Message) : { channel: '/meta/unknown' };
      return serializeReply(core, failure(core, message, err), conn);
    }));
  }
  const single = messages.length === 1;
  const batchedHandshake = !single && messages.some((m) => isObject(m) && m['channel'] === '/meta/handshake');
  const { debug } = core.options;
  const request: RequestState = { live: new Set() };
  const outcomes: Outcome[] = [];
  /** Publishes whose engine calls are under way, with their messages. */
  const unsettled: Array<[Outcome, unknown]> = [];
  const settle = async (): Promise<void> => {
    for (const [outcome, raw] of unsettled) {
      try {
        await outcome.settle;
      } catch (err) {
        outcome.reply = failure(core, raw as Message, err);
      }
    }
    unsettled.length = 0;
  };
  for (const raw of messages) {
    core.messagesIn++;
    if (debug) core.trace('in', conn, raw);
    // Anything but another plain publish waits for the publishes before it to land.
    if (!isPlainPublish(raw)) {
      request.live.clear();
      if (unsettled.length > 0) await settle();
    }
    const outcome = await route(core, raw, conn, single ? respond : undefined, batchedHandshake, request);
    // Only a lone connect is held; it answers through `respond` itself (meta/held-connect.ts).
    if (outcome.held) return undefined;
    outcomes.push(outcome);
    if (outcome.settle) unsettled.push([outcome, raw]);
  }
  if (unsettled.length > 0) await settle();
  return answer(core, conn, outcomes);
}

/**
 * Validate one message and route it by its channel. `respond` is given
 * only for a message alone in its request: a connect may then be held.
 */
async function route(
  core: ServerCore, raw: unknown, conn: Connection, respond: ((replies: string[]) => void) | undefined, batchedHandshake: boolean, request: RequestState,
): Promise<Outcome> {
  if (!isObject(raw)) {
    return { reply: { channel: '/meta/unknown', successful: false, error: ProtocolErrors.badMessage('message must be an object').toString() } };
  }
  const message = raw as Message;
  const { channel } = message;
  if (typeof channel !== 'string') {
    return { reply: refusal(core, message, ProtocolErrors.badMessage('channel missing'), '/meta/unknown') };
  }
  if (message.id !== undefined && typeof message.id !== 'string' && typeof message.id !== 'number') {
    return { reply: refusal(core, message, ProtocolErrors.badMessage('id must be a string')) };
  }
  if (!isValidPattern(channel)) {
    return { reply: refusal(core, message, ProtocolErrors.channelInvalid(channel)) };
  }
  if (core.closed) {
    // The answer closes the connection: a kept-alive one would bring the client's retries back here for as
    // long as the host serves, while its session expires, instead of letting a balancer pick another node.
    conn.drain?.();
    return { reply: refusal(core, message, ProtocolErrors.serverClosing(), undefined, { reconnect: 'retry', interval: 1000 }) };
  }
  // A clientId not of the engine's form is no session's: answered here, it never becomes part of an engine key.
  if (typeof message.clientId === 'string' && channel !== '/meta/handshake' && !core.isClientId(message.clientId)) {
    return { reply: sessionUnknown(core, message) };
  }
  if (core.rateLimits && channel !== '/meta/connect' && channel !== '/meta/handshake' && channel !== '/meta/disconnect') {
    const over = rateLimited(core, message, conn);
    if (over) return over;
  }
  const ctx = core.context(message, conn);
  const received = Date.now();
  try {
    // A socket belongs to the session that handshook or connected on it.
    const bound = core.boundTo(conn);
    if (bound !== undefined && message.clientId !== undefined && message.clientId !== bound && channel !== '/meta/handshake') {
      throw ProtocolErrors.denied('clientId_mismatch');
    }
    switch (channel) {
      case '/meta/handshake':
        if (batchedHandshake) {
          throw ProtocolErrors.badMessage('handshake must not be batched with other messages');
        }
        return timesync(core.options, message, received, await handshake(core, message, ctx, conn));
      case '/meta/connect':
        return timesync(core.options, message, received, await connect(core, message, ctx, conn, received, respond));
      case '/meta/subscribe':
        return await subscribe(core, message, ctx);
      case '/meta/unsubscribe':
        return await unsubscribe(core, message, ctx);
      case '/meta/disconnect':
        return await disconnect(core, message, ctx);
      default:
        if (isMeta(channel)) throw ProtocolErrors.channelInvalid(channel);
        return await publishMessage(core, message, ctx, request);
    }
  } catch (err) {
    return { reply: failure(core, message, err) };
  }
}

/** A publish to a (non-meta, non-service) channel: such messages may travel to the engine back to back. */
function isPlainPublish(raw: unknown): boolean {
  if (!isObject(raw)) return false;
  const channel = raw['channel'];
  return typeof channel === 'string' && !isMeta(channel) && !isService(channel);
}

/**
 * Count a message against its session's `rateLimit`; over it, the
 * refusal (and, with `rateLimitPolicy: 'disconnect'`, the session ends).
 * A message without a session (an anonymous publish) is not counted.
 */
function rateLimited(core: ServerCore, message: Message, conn: Connection): Outcome | undefined {
  const limits = core.rateLimits;
  const clientId = typeof message.clientId === 'string' ? message.clientId : core.boundTo(conn);
  if (!limits || clientId === undefined) return undefined;
  const over = limits.check(clientId, limits.measuresBytes ? (JSON.stringify(message)?.length ?? 0) : 0);
  if (!over) return undefined;
  core.observers.rateLimited();
  if (core.options.rateLimitPolicy === 'disconnect') {
    limits.forget(clientId);
    void kick(core, clientId, 'rate_limited');
  }
  return { reply: refusal(core, message, ProtocolErrors.rateLimited(over)) };
}
