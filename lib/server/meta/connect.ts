/**
 * `/meta/connect`: keeping a session alive, holding the connect until
 * messages arrive (or `timeout` passes), per-address limits on held
 * connects, the move of a session between long-polling and a socket, and
 * the ack extension's batches.
 */
import type { TakeResult } from '../../engines/engine.js';
import { ProtocolErrors } from '../../errors.js';
import type { ServerCore } from '../core.js';
import { overflowed, takeQueue } from '../delivery.js';
import type { HeldConnect } from '../hold.js';
import type { Presence } from '../presence.js';
import { answer, connectAdvice, failure, type Outcome, refusal, reply, sessionUnknown } from '../reply.js';
import { timesync } from '../timesync.js';
import type { Connection, Context, Message } from '../types.js';
import type { PendingConnect } from './pending-connect.js';
import { describeError } from '../../protocol/error.js';

const NOTHING_TAKEN: TakeResult = Object.freeze({ messages: [], dropped: 0 });

/**
 * /meta/connect. Required: channel, clientId, connectionType. Optional:
 * advice (timeout 0 asks for an immediate answer), ext.ack (the last batch
 * received), id. Held until messages arrive or `timeout` passes when it is
 * the only message in the request, the session has connected before, and
 * the client did not ask otherwise.
 */
export async function connect(core: ServerCore, message: Message, ctx: Context, conn: Connection, single: boolean, received: number): Promise<Outcome> {
  const { clientId } = message;
  const { engine, options, presences } = core;
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
  const presence = presences.ensure(clientId, ack !== undefined);
  if (ack !== undefined) presence.ack = true;
  if (conn.push) {
    presence.sink = conn;
    core.bind(conn, clientId);
  } else if (presence.sink) {
    presence.sink = undefined; // the session moved to long-polling
  }
  if (presence.held) {
    presence.held.release(); // an older connect for this session is answered now
    presences.keep(presence); // its answer pruned the presence this connect goes on using
  }

  const requestedTimeout = message.advice?.timeout;
  let hold = single && !firstConnect && requestedTimeout !== 0 && timeout > 0 && !core.closed;
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
  if (pushMode) presences.wake([clientId]);
  const pending: PendingConnect = {
    core, message, conn, presence, ip, firstConnect, multipleClients, pushMode, ack, received, respond: undefined, answered: undefined,
  };
  if (!hold) {
    let result: TakeResult | null;
    try {
      result = await takeFor(pending);
    } finally {
      presences.prune(presence);
    }
    return connectReply(core, message, ctx, presence, result, false, firstConnect, multipleClients);
  }

  // Register before taking, so a publish that lands between the take and
  // the wait releases this connect instead of being missed.
  const ms = typeof requestedTimeout === 'number' && requestedTimeout > 0 ? Math.min(requestedTimeout, timeout) : timeout;
  const held = core.holds.add(conn, ms, pending);
  presence.held = held;
  if (ip !== undefined) core.heldPerIp.set(ip, (core.heldPerIp.get(ip) ?? 0) + 1);
  let first: TakeResult | null;
  try {
    first = pushMode ? NOTHING_TAKEN : await takeFor(pending);
  } catch (err) {
    unhold(held);
    throw err;
  }
  if (!first || first.messages.length > 0 || held.released) {
    // Messages were waiting (or the wait already ended): answer now.
    const aborted = conn.aborted?.() === true;
    unhold(held);
    if (first && first.messages.length === 0 && !aborted && !pushMode) first = await takeFor(pending).catch(() => first);
    return connectReply(core, message, ctx, presence, first, aborted, firstConnect, multipleClients);
  }
  if (conn.aborted?.()) held.release(true);
  else conn.onAbort?.(held);
  held.onRelease(released);
  return { held };
}

/**
 * A held connect was released (one function for all of them): take its
 * messages (unless the batch of its tick already did, or its client went
 * away), and answer it.
 */
function released(held: HeldConnect<PendingConnect>, aborted: boolean, taken: unknown): void {
  const pending = held.data;
  const { core, message, conn } = pending;
  unhold(held);
  const messages = aborted ? Promise.resolve(NOTHING_TAKEN) : ((taken as Promise<TakeResult | null> | undefined) ?? takeFor(pending));
  messages
    .then((result) => connectReply(core, message, undefined, pending.presence, result, aborted, pending.firstConnect, pending.multipleClients))
    .catch((err: unknown): Outcome => ({ reply: failure(core, message, err) }))
    .then((outcome) => answer(core, conn, [timesync(core.options, message, pending.received, outcome)]))
    .then((out) => {
      if (pending.respond) pending.respond(out);
      else pending.answered = out;
    })
    .catch((err: unknown) => core.options.logger.error(`a held connect could not be answered: ${describeError(err)}`));
}

/** A held connect no longer waits: forget it everywhere. */
function unhold(held: HeldConnect<PendingConnect>): void {
  const { core, presence, ip, conn } = held.data;
  held.release();
  conn.offAbort?.(held);
  if (presence.held === held) presence.held = undefined;
  if (ip !== undefined) {
    const n = (core.heldPerIp.get(ip) ?? 1) - 1;
    if (n > 0) core.heldPerIp.set(ip, n);
    else core.heldPerIp.delete(ip);
  }
  core.presences.prune(presence);
}

/** What a connect's reply carries: the session's queue, or, in push mode, nothing (after checking the session lives). */
async function takeFor(pending: PendingConnect): Promise<TakeResult | null> {
  const { core } = pending;
  const { clientId } = pending.presence;
  if (pending.pushMode) return (await core.engine.exists(clientId)) ? NOTHING_TAKEN : null;
  return takeQueue(core, clientId, pending.ack);
}

/** The reply to a connect once its messages are taken (or its wait was aborted). */
async function connectReply(
  core: ServerCore,
  message: Message,
  /** For the `connect` event of a first connect, which is never held. */
  ctx: Context | undefined,
  presence: Presence,
  result: TakeResult | null,
  aborted: boolean,
  firstConnect: boolean,
  multipleClients: boolean,
): Promise<Outcome> {
  const { clientId } = presence;
  const { options } = core;
  if (!result) {
    core.presences.delete(clientId);
    // The client disconnected while this connect was held: tell it not to come back.
    if (presence.ended === 'client') {
      return { reply: reply(message, { clientId, successful: true, advice: { reconnect: 'none', interval: 0 } }) };
    }
    return { reply: sessionUnknown(core, message) };
  }
  if (result.batch !== undefined) presence.ack = true;
  // The session lives maxInterval after this connect ends. If the engine
  // fails here the messages taken must still go out; the earlier touch
  // (timeout + maxInterval) keeps the session alive meanwhile.
  await core.engine.touch(clientId, options.maxInterval).catch(() => undefined);
  if (result.dropped > 0 && (await overflowed(core, clientId, result.dropped))) {
    return {
      reply: refusal(core, message, ProtocolErrors.slowConsumer(), undefined, { reconnect: 'handshake', interval: 0 }),
    };
  }
  const advice = connectAdvice(options);
  if (multipleClients) {
    advice['multiple-clients'] = true;
    advice.interval = Math.max(options.interval, 2000);
  }
  const out = reply(message, { clientId, successful: true, advice });
  if (result.batch !== undefined) out.ext = { ack: result.batch };
  if (firstConnect && ctx) core.emit('connect', clientId, ctx);
  if (aborted) return { reply: out };
  core.observers.delivered(result.messages);
  return { reply: out, deliveries: result.messages };
}
