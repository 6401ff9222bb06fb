/**
 * `/meta/subscribe` and `/meta/unsubscribe`, and the subscribe the
 * server-side API shares with them (a room join).
 */
import { EngineLimitError } from '../../engines/engine.js';
import { ProtocolErrors } from '../../errors.js';
import { isMeta, isService, isValidPattern } from '../../protocol/channel.js';
import type { ServerCore } from '../core.js';
import { type RecoverRequest, recoverRequest, recoverSession } from '../history.js';
import { type Outcome, reply, sessionUnknown } from '../reply.js';
import { followPresence, presenceRequest, subscribeOptions, unfollowPresence } from '../users.js';
import type { Context, Message } from '../types.js';

/**
 * /meta/subscribe. Required: channel, clientId, subscription (a channel or
 * pattern, or a list of them). Optional: ext, id. `/service/*`
 * subscriptions succeed and do nothing; `/meta/*` ones are refused.
 * `ext.recover` (`{ epoch, offset }` or `{ last }`, one channel with
 * history) subscribes and queues what was missed in one engine call; the
 * reply carries `ext.recover: { recovered, epoch, offset, missed }`.
 */
export async function subscribe(core: ServerCore, message: Message, ctx: Context): Promise<Outcome> {
  let recover: RecoverRequest | undefined;
  let presence: string | undefined;
  // ext.recover and ext.presence are checked before the middleware runs; the middleware then decides as for any subscribe.
  const patterns = await subscriptionRequest(core, message, ctx, (checked) => {
    recover = recoverRequest(core, message, checked);
    presence = presenceRequest(core, message, checked);
  });
  if (!Array.isArray(patterns)) return { reply: patterns };
  const clientId = message.clientId as string;
  const ext: Record<string, unknown> = {};
  if (recover) {
    const result = await recoverSession(core, clientId, recover, await subscribeOptions(core, clientId, recover.channel));
    if (!result) return { reply: sessionUnknown(core, message) };
    core.emit('subscribe', clientId, recover.channel);
    const { recovered, epoch, offset, missed } = result;
    ext['recover'] = { recovered, epoch, offset, missed };
  } else {
    for (const pattern of patterns) {
      if (isService(pattern)) continue;
      if (!(await subscribeSession(core, clientId, pattern))) return { reply: sessionUnknown(core, message) };
      core.emit('subscribe', clientId, pattern);
    }
  }
  if (presence !== undefined) {
    const snapshot = await followPresence(core, clientId, presence);
    if (!snapshot) return { reply: sessionUnknown(core, message) };
    ext['presence'] = snapshot;
  }
  const out = reply(message, { clientId, subscription: message.subscription, successful: true });
  if (recover || presence !== undefined) out.ext = ext;
  return { reply: out };
}

/**
 * /meta/unsubscribe. Required: channel, clientId, subscription (as for
 * subscribe). Optional: ext, id.
 */
export async function unsubscribe(core: ServerCore, message: Message, ctx: Context): Promise<Outcome> {
  const patterns = await subscriptionRequest(core, message, ctx);
  if (!Array.isArray(patterns)) return { reply: patterns };
  const clientId = message.clientId as string;
  for (const pattern of patterns) {
    if (isService(pattern)) continue;
    if (!(await core.engine.unsubscribe(clientId, pattern))) return { reply: sessionUnknown(core, message) };
    await unfollowPresence(core, clientId, pattern);
    core.emit('unsubscribe', clientId, pattern);
  }
  return { reply: reply(message, { clientId, subscription: message.subscription, successful: true }) };
}

/** engine.subscribe, with the per-session cap turned into the refusal the client sees. */
export async function subscribeSession(core: ServerCore, clientId: string, pattern: string): Promise<boolean> {
  try {
    return await core.engine.subscribe(clientId, pattern, await subscribeOptions(core, clientId, pattern));
  } catch (err) {
    if (err instanceof EngineLimitError) throw ProtocolErrors.subscriptionLimit(core.options.maxSubscriptions);
    throw err;
  }
}

/** Validate a (un)subscribe request: its patterns, or the refusal to send. */
async function subscriptionRequest(
  core: ServerCore, message: Message, ctx: Context, check?: (patterns: readonly string[]) => void,
): Promise<string[] | Message> {
  const { clientId, subscription } = message;
  if (typeof clientId !== 'string' || !(await core.engine.exists(clientId))) return sessionUnknown(core, message);
  const patterns = Array.isArray(subscription) ? subscription : [subscription];
  if (patterns.length === 0) throw ProtocolErrors.badMessage('subscription missing');
  for (const pattern of patterns) {
    if (pattern === undefined) throw ProtocolErrors.badMessage('subscription missing');
    if (!isValidPattern(pattern)) throw ProtocolErrors.channelInvalid(pattern);
    if (isMeta(pattern)) throw ProtocolErrors.metaChannel(pattern);
  }
  check?.(patterns as string[]);
  await core.pipeline.run(message, ctx);
  return patterns as string[];
}
