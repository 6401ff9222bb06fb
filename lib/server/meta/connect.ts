/**
 * `/meta/connect`: keeping a session alive, holding the connect until
 * messages arrive (or `timeout` passes), per-address limits on held
 * connects, the move of a session between long-polling and a socket, and
 * the ack extension's batches.
 */
import type { TakeResult } from '../../engines/engine.js';
import type { ServerCore } from '../core.js';
import { type Outcome, sessionUnknown } from '../reply.js';
import type { Connection, Context, Message } from '../types.js';
import { connectReply, HeldConnect, takeFor } from './held-connect.js';

/**
 * /meta/connect. Required: channel, clientId, connectionType. Optional:
 * advice (timeout 0 asks for an immediate answer), ext.ack (the last batch
 * received), id. Held until messages arrive or `timeout` passes when it is
 * the only message in the request, the session has connected before, and
 * the client did not ask otherwise. `respond` is given only for a connect
 * alone in its request (the only kind that may be held): a held connect
 * answers through it.
 */
export async function connect(
  core: ServerCore, message: Message, ctx: Context, conn: Connection, received: number, respond: ((replies: string[]) => void) | undefined,
): Promise<Outcome> {
  const { clientId } = message;
  const { engine, options, attachments } = core;
  const { timeout, maxInterval, maxConnectionsPerIp } = options;
  if (typeof clientId !== 'string') return { reply: sessionUnknown(core, message) };
  // While held, the session must outlive the wait.
  if (!(await engine.touch(clientId, timeout + maxInterval))) return { reply: sessionUnknown(core, message) };
  await core.pipeline.run(message, ctx);
  const ackField = message.ext?.['ack'];
  const ack = typeof ackField === 'number' ? ackField : undefined;
  const firstConnect = !core.connected.has(clientId);
  if (firstConnect) core.connected.set(clientId, true);

  // A client that acknowledges batches sends ext.ack on every connect; its
  // deliveries then travel only in connect replies.
  const attachment = attachments.ensure(clientId, ack !== undefined);
  if (ack !== undefined) attachment.ack = true;
  if (conn.push) {
    attachment.sink = conn;
    core.bind(conn, clientId);
  } else if (attachment.sink) {
    attachment.sink = undefined; // the session moved to long-polling
  }
  if (attachment.held) {
    attachment.held.release(); // an older connect for this session is answered now
    attachments.keep(attachment); // its answer pruned the attachment this connect goes on using
  }

  const requestedTimeout = message.advice?.timeout;
  // A draining node holds only the connects of sessions whose slice has not come.
  let hold = respond !== undefined && !firstConnect && requestedTimeout !== 0 && timeout > 0 && !core.closed && !core.drain?.due(clientId);
  let multipleClients = false;
  // The address only when it is counted: behind Express, req.ip parses X-Forwarded-For each time.
  const ip = maxConnectionsPerIp > 0 ? conn.ip : undefined;
  if (hold && maxConnectionsPerIp > 0 && ip !== undefined && (core.heldPerIp.get(ip) ?? 0) >= maxConnectionsPerIp) {
    hold = false;
    multipleClients = true;
  }

  // On a socket, a session without acks has its messages pushed, and only
  // delivery's flush takes and pushes them: one ordered path. Its connects carry none.
  const pushMode = conn.push !== undefined && ack === undefined;
  if (pushMode) attachments.wake([clientId]);
  if (!hold || respond === undefined) {
    let result: TakeResult | null;
    try {
      result = await takeFor(core, clientId, pushMode, ack);
    } finally {
      attachments.prune(attachment);
    }
    return connectReply(core, { message, attachment, result, aborted: false, ctx: firstConnect ? ctx : undefined, multipleClients, conn });
  }
  const ms = typeof requestedTimeout === 'number' && requestedTimeout > 0 ? Math.min(requestedTimeout, timeout) : timeout;
  return new HeldConnect(core, message, conn, attachment, ip, ack, received, respond).hold(ms);
}
