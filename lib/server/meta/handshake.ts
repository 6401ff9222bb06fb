/**
 * `/meta/handshake`: version and connection-type negotiation, and the
 * creation of a session (with the data handshake middleware set).
 */
import { ProtocolErrors } from '../../errors.js';
import { MessageContext } from '../context.js';
import type { ServerCore } from '../core.js';
import { connectAdvice, type Outcome, reply } from '../reply.js';
import { PendingSessionData } from '../session-data.js';
import type { Connection, Context, Message } from '../types.js';
import { shortId } from '../util.js';

const BAYEUX_VERSION = '1.0';

/**
 * /meta/handshake. Required: channel, version, supportedConnectionTypes.
 * Optional: minimumVersion, ext (ext.ack asks for acks), id. Replies with
 * clientId, supportedConnectionTypes, version, advice; ext.ack when acks
 * are on. Never batched with other messages (the dispatcher refuses it).
 */
export async function handshake(core: ServerCore, message: Message, ctx: Context, conn: Connection): Promise<Outcome> {
  const { options } = core;
  const { version, supportedConnectionTypes: types } = message;
  if (typeof version !== 'string') throw ProtocolErrors.badMessage('version missing');
  if (!/^1(\.|$)/.test(version)) throw ProtocolErrors.versionUnsupported(version);
  if (!Array.isArray(types)) throw ProtocolErrors.badMessage('supportedConnectionTypes missing');
  if (!types.some((t) => core.connectionTypes.includes(t))) throw ProtocolErrors.transportUnsupported(types);
  await core.pipeline.run(message, ctx);
  const ack = options.ack && message.ext?.['ack'] === true;
  const pending = ctx.session instanceof PendingSessionData ? ctx.session.entries : undefined;
  const data = pending && pending.size > 0 ? pending : undefined;
  const clientId = await core.engine.createSession({ ack, ttl: options.maxInterval, data });
  core.bind(conn, clientId);
  const out = reply(message, {
    version: BAYEUX_VERSION,
    supportedConnectionTypes: [...core.connectionTypes],
    clientId,
    successful: true,
    advice: connectAdvice(options),
  });
  if (ack) out.ext = { ack: true };
  options.logger.info(`session ${shortId(clientId)} started (handshake over ${conn.transport}${ack ? ', acks' : ''})`);
  core.emit('handshake', clientId, new MessageContext(clientId, conn, core.openSession));
  return { reply: out };
}
