/**
 * Publishing: a client's publish (checked, passed through the middleware,
 * broadcast), `/service/*` requests and their handlers, and the fan-out
 * the server-side `publish()` and `deliver()` share.
 */
import type { PublishOptions as EnginePublishOptions } from '../engines/engine.js';
import { expand } from './expand.js';
import { historyText, MAX_POSITION_CHARS } from './history.js';
import { ProtocolErrors } from '../errors.js';
import { isService, isWildcard } from '../protocol/channel.js';
import { BayeuxError, describeError } from '../protocol/error.js';
import type { ServerCore } from './core.js';
import { type Outcome, reply, sessionUnknown } from './reply.js';
import type { Context, Message } from './types.js';

/** What the messages of one request share while they are handled. */
export interface RequestState {
  /** Sessions found live earlier in this run of publishes (cleared by any other message). */
  readonly live: Set<string>;
}

/**
 * A publish. Required: channel, data; clientId unless anonymousPublish.
 * Optional: id, ext. `/service/*` goes to a handler and its reply to the
 * sender only; anything else is broadcast without the sender's clientId.
 */
export async function publishMessage(core: ServerCore, message: Message, ctx: Context, request: RequestState): Promise<Outcome> {
  const { channel, clientId } = message;
  const { options } = core;
  if (isWildcard(channel)) throw ProtocolErrors.channelInvalid(channel);
  /** Checked by the engine with the publish itself (`Engine.checksPublisher`), not before. */
  let publisher: string | undefined;
  if (clientId !== undefined || !options.anonymousPublish) {
    if (typeof clientId !== 'string') return { reply: sessionUnknown(core, message) };
    // A batch of publishes from one session checks it once.
    if (!request.live.has(clientId)) {
      // Middleware and outgoing hooks see only live sessions' messages: with any to run, the session is checked first.
      if (core.engine.checksPublisher === true && !isService(channel) && !core.outgoing.any && !core.pipeline.applies(message)) {
        publisher = clientId;
      } else {
        if (!(await core.engine.exists(clientId))) return { reply: sessionUnknown(core, message) };
        request.live.add(clientId);
      }
    }
  }
  if (isService(channel)) return callService(core, message, ctx);
  if (!('data' in message)) throw ProtocolErrors.badMessage('data missing');
  await core.pipeline.run(message, ctx);
  const except = !options.broadcastToPublisher && typeof clientId === 'string' ? [clientId] : undefined;
  // A client's reply carries no count: the engine need not read who subscribed to count them.
  const published = broadcast(core, message, ctx, { except, id: message.id, count: false, publisher });
  const out = reply(message, { successful: true });
  if (core.outgoing.any) {
    // An outgoing hook may be async: the next publish must not overtake this one.
    await published;
    return { reply: out };
  }
  // Issued already (no hook to wait for): the next publish may go out behind it at once.
  published.catch(() => undefined);
  return { reply: out, settle: published };
}

/** A `/service/*` request: its handler's answer goes back to the sender only. */
async function callService(core: ServerCore, message: Message, ctx: Context): Promise<Outcome> {
  await core.pipeline.run(message, ctx);
  const handler = core.services.get(message.channel) ?? core.services.get('_handler');
  if (!handler) return { reply: reply(message, { successful: true }) };
  let data: unknown;
  try {
    data = await handler(message, ctx);
  } catch (err) {
    if (err instanceof BayeuxError) throw err;
    core.options.logger.error(`service ${message.channel} failed: ${describeError(err, { stack: true })}`);
    throw ProtocolErrors.serviceFailed(message.channel);
  }
  const out = reply(message, { successful: true });
  if (data !== undefined) out.data = data;
  return { reply: out };
}

/**
 * Fan a message out: one serialization, one engine call. The copy carries
 * channel, data, and the given id and ext; never the publisher's clientId.
 * Resolves to the number of sessions it was queued for.
 */
export async function broadcast(
  core: ServerCore,
  message: Message,
  ctx: Context,
  options: {
    except?: readonly string[] | undefined;
    id?: string | number | undefined;
    ext?: Record<string, unknown> | undefined;
    count?: boolean;
    /** The publishing session, for the engine to check (`PublishOptions.publisher`). */
    publisher?: string | undefined;
  },
): Promise<number> {
  let copy: Message = { channel: message.channel, data: message.data };
  if (options.id !== undefined) copy.id = options.id;
  if (options.ext !== undefined) copy.ext = options.ext;
  if (core.outgoing.any) copy = await hooked(core, copy, ctx);
  const channel = message.channel;
  // A history channel's copy is written with the place of its position marked; the engine fills it in.
  const settings = core.options.history?.settingsFor(channel);
  const kept = settings ? historyText(copy, channel, settings) : undefined;
  const text = kept ? kept.text : JSON.stringify(copy);
  checkSize(core, text, kept ? MAX_POSITION_CHARS : 0);
  core.observers.published(channel, text);
  core.local?.published(text, ctx.client);
  let engineOptions: EnginePublishOptions | undefined;
  if (options.except && options.except.length > 0) engineOptions = { except: options.except };
  if (kept) (engineOptions ??= {}).history = kept.history;
  if (options.count === false) (engineOptions ??= {}).count = false;
  if (options.publisher !== undefined) (engineOptions ??= {}).publisher = options.publisher;
  const recipients = await core.engine.publish(expand(channel), text, engineOptions);
  core.emit('publish', ctx.client, message.channel, message.data, message);
  return recipients;
}

/** Queue one message for one session (`deliver()`). False for an unknown session. */
export async function deliverTo(core: ServerCore, clientId: string, channel: string, data: unknown): Promise<boolean> {
  let message: Message = { channel, data };
  if (core.outgoing.any) message = await hooked(core, message, core.serverContext());
  const text = JSON.stringify(message);
  checkSize(core, text);
  const delivered = await core.engine.deliver(clientId, text);
  if (delivered) core.emit('deliver', clientId, channel, data);
  return delivered;
}

/**
 * Refuse a message over `maxMessageBytes` (UTF-8 bytes of its JSON text)
 * before anyone sees it: a client that cannot take it in one response or
 * frame would never get past it (an acked session is sent it again on
 * every connect). `added`: characters the engine adds later (a
 * position), counted against the bound. The length bounds the bytes
 * from both sides (1 to 3 bytes per UTF-16 unit), so most texts are
 * never encoded to be measured.
 */
function checkSize(core: ServerCore, text: string, added = 0): void {
  const max = core.options.maxMessageBytes - added;
  if (text.length * 3 <= max) return;
  if (text.length > max || Buffer.byteLength(text) > max) throw ProtocolErrors.messageTooLarge(core.options.maxMessageBytes);
}

/** A message for subscribers, through the outgoing hooks; a hook's failure (logged there) refuses it. */
async function hooked(core: ServerCore, message: Message, ctx: Context): Promise<Message> {
  const out = await core.outgoing.apply(message, ctx);
  if (out === undefined) throw ProtocolErrors.serverError();
  return out;
}
