/**
 * `/meta/handshake`: version and connection-type negotiation, and the
 * creation of a session (with the data handshake middleware set).
 */
import { ProtocolErrors } from '../../errors.js';
import { MessageContext } from '../context.js';
import type { ServerCore } from '../core.js';
import { connectAdvice, type Outcome, refusal, reply } from '../reply.js';
import { PendingSessionData } from '../session-data.js';
import type { Connection, Context, Message } from '../types.js';
import { admitUser, identify, IDENTITY_KEY, identityEntry, rememberIdentity } from '../users.js';
import { shortId } from '../util.js';
import type { PresenceMember } from '../../engines/engine.js';

const BAYEUX_VERSION = '1.0';

/**
 * /meta/handshake. Required: channel, version, supportedConnectionTypes.
 * Optional: minimumVersion, ext (ext.ack asks for acks), id. Replies with
 * clientId, supportedConnectionTypes, version, advice; ext.ack when acks
 * are on. Never batched with other messages (the dispatcher refuses it).
 */
export async function handshake(core: ServerCore, message: Message, ctx: Context, conn: Connection): Promise<Outcome> {
  const { options } = core;
  const refused = admit(core, message, conn);
  if (refused) return refused;
  const { version, supportedConnectionTypes: types } = message;
  if (typeof version !== 'string') throw ProtocolErrors.badMessage('version missing');
  if (!/^1(\.|$)/.test(version)) throw ProtocolErrors.versionUnsupported(version);
  if (!Array.isArray(types)) throw ProtocolErrors.badMessage('supportedConnectionTypes missing');
  if (!types.some((t) => core.connectionTypes.includes(t))) throw ProtocolErrors.transportUnsupported(types);
  await core.pipeline.run(message, ctx);
  const member = await identify(core, message, ctx);
  await admitUser(core, member);
  const ack = options.ack && message.ext?.['ack'] === true;
  const data = sessionData(core, ctx, member);
  const clientId = await core.engine.createSession({ ack, ttl: options.maxInterval, data, ...(member?.user === undefined ? {} : { user: member.user }) });
  core.bind(conn, clientId);
  rememberIdentity(core, clientId, member);
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

/**
 * The data the session starts with: what handshake middleware set, and
 * who it is (`identify`), together within `maxSessionDataBytes`.
 */
function sessionData(core: ServerCore, ctx: Context, member: PresenceMember | undefined): Map<string, string> | undefined {
  const pending = ctx.session instanceof PendingSessionData ? ctx.session.entries : undefined;
  if (!member) return pending && pending.size > 0 ? pending : undefined;
  const data = new Map(pending);
  data.set(IDENTITY_KEY, identityEntry(member));
  let size = 0;
  for (const [key, value] of data) size += key.length + value.length;
  if (size > core.options.maxSessionDataBytes) throw ProtocolErrors.sessionDataTooLarge(core.options.maxSessionDataBytes);
  return data;
}

/**
 * Admission: a draining node, and a handshake over `maxHandshakeRate` or
 * `handshakeRatePerIp`, answer at once with advice to handshake again
 * after a random interval (over what is left of the drain; over as many
 * seconds as demand is over the rate).
 */
function admit(core: ServerCore, message: Message, conn: Connection): Outcome | undefined {
  const { drain, options, admission } = core;
  if (drain) {
    core.observers.handshakeRefused('draining');
    conn.drain?.(); // the next try opens a new connection, which a balancer sends elsewhere
    return { reply: refusal(core, message, ProtocolErrors.draining(), undefined, { reconnect: 'handshake', interval: drain.interval() }) };
  }
  if (options.maxHandshakeRate === 0 && options.handshakeRatePerIp === 0) return undefined;
  // The address only when it is counted: behind Express, req.ip parses X-Forwarded-For each time.
  const limit = admission.admit(options.handshakeRatePerIp > 0 ? conn.ip : undefined);
  if (!limit) return undefined;
  core.observers.handshakeRefused(limit);
  const interval = admission.backoff(limit === 'node' ? options.maxHandshakeRate : options.handshakeRatePerIp);
  return { reply: refusal(core, message, ProtocolErrors.handshakeRateLimited(limit), undefined, { reconnect: 'handshake', interval }) };
}
