/**
 * Delivery: taking sessions' queues from the engine, and handing what was
 * taken to the connections on this node (a held connect's answer, a
 * socket's push), with the slow-consumer policy for those that cannot
 * keep up.
 */
import { EngineUnavailableError, type TakeResult } from '../engines/engine.js';
import type { ServerCore } from './core.js';
import type { HeldConnect } from './meta/held-connect.js';
import type { Attachment } from './attachment.js';
import { ended, kick } from './session-end.js';
import type { Connection } from './types.js';
import { describeError } from '../protocol/error.js';

// ---------------------------------------------------------------- taking

/**
 * Take one session's waiting messages (`ack`: the last batch its client
 * acknowledged). With {@link takeQueues}, the only code that takes from
 * the engine.
 */
export function takeQueue(core: ServerCore, clientId: string, ack: number | undefined): Promise<TakeResult | null> {
  return core.engine.take(clientId, ack);
}

/** Take several sessions' queues (none with acks): in one engine call when the engine can. */
export function takeQueues(core: ServerCore, clientIds: readonly string[]): Promise<Array<TakeResult | null>> {
  const { engine } = core;
  return engine.takeMany ? engine.takeMany(clientIds) : Promise.all(clientIds.map((id) => engine.take(id)));
}

// ---------------------------------------------------------------- flushing

/**
 * Messages are waiting for these sessions, which have a connection here
 * (`Attachments` calls this once per tick with every session woken in it):
 * answer their held connects, or push to their sockets. All the pushes of
 * one tick take their queues in one engine call, and so do all the
 * long-polls.
 */
export function flush(core: ServerCore, woken: readonly Attachment[]): void {
  const pushers: Attachment[] = [];
  let polls: HeldConnect[] | undefined;
  for (const attachment of woken) {
    const { sink } = attachment;
    if (!sink || attachment.ack) {
      // A long-polling session without acks: its queue is taken below, with the others', in one engine call.
      if (!sink && !attachment.ack && attachment.held) (polls ??= []).push(attachment.held);
      else attachment.held?.release();
      continue;
    }
    // A closing socket would lose what is taken for it; leave it queued for the next connect.
    if (sink.writable && !sink.writable()) continue;
    if (sink.congested?.()) void congested(core, attachment, sink);
    else pushers.push(attachment);
  }
  if (pushers.length > 0) void push(core, pushers);
  if (polls) answerPolls(core, polls);
}

/**
 * Answer the held long-polling connects woken in one tick with one take:
 * each is released at once with its share of the batch (a release takes
 * it off its attachment), so nothing taken can go to a connect that was
 * answered otherwise meanwhile, and no later wake takes for it again.
 */
function answerPolls(core: ServerCore, polls: readonly HeldConnect[]): void {
  const batch = takeQueues(core, polls.map((held) => held.attachment.clientId));
  batch.catch(() => undefined); // each connect's share reports the failure
  for (let i = 0; i < polls.length; i++) {
    (polls[i] as HeldConnect).release(batch.then((results) => results[i] ?? null));
  }
}

/** Take the queues of sockets without acks and push what was taken. */
async function push(core: ServerCore, pushers: readonly Attachment[]): Promise<void> {
  let results: Array<TakeResult | null>;
  try {
    results = await takeQueues(core, pushers.map((p) => p.clientId));
  } catch (err) {
    core.observers.engineError();
    if (err instanceof EngineUnavailableError) core.logUnavailable(err);
    else core.options.logger.error(`take for a push failed: ${describeError(err)}`);
    return;
  }
  for (let i = 0; i < pushers.length; i++) {
    const result = results[i];
    const attachment = pushers[i] as Attachment;
    if (!result) {
      // The session is gone (ended on another node, or expired): tell the socket's client.
      if (core.attachments.get(attachment.clientId) === attachment) ended(core, attachment, 'server');
      continue;
    }
    if (result.batch !== undefined) {
      // An acked session whose client left ext.ack off its connect: what was
      // taken stays unacknowledged and goes out in its next connect reply.
      attachment.ack = true;
      continue;
    }
    if (result.dropped > 0 && (await overflowed(core, attachment.clientId, result.dropped))) continue;
    if (result.messages.length > 0 && attachment.sink?.push) {
      core.messagesOut += result.messages.length;
      core.observers.delivered(result.messages);
      attachment.sink.push(result.messages);
    }
  }
}

// ---------------------------------------------------------------- slow consumers

/** A socket over its high-water mark: apply the slow-consumer policy. */
async function congested(core: ServerCore, attachment: Attachment, sink: Connection): Promise<void> {
  if (core.options.slowConsumer === 'disconnect') {
    await kick(core, attachment.clientId, 'slow_consumer');
    return;
  }
  // drop-oldest: leave messages queued (the engine bounds the queue) and
  // look again shortly; one timer per session, however many wakes come.
  if (attachment.retrying) return;
  attachment.retrying = true;
  setTimeout(() => {
    attachment.retrying = false;
    if (core.attachments.get(attachment.clientId)?.sink === sink) core.attachments.wake([attachment.clientId]);
  }, 50).unref();
}

/** The engine dropped messages for a session (`maxQueue`); true when the session was ended for it. */
export async function overflowed(core: ServerCore, clientId: string, dropped: number): Promise<boolean> {
  core.observers.dropped(dropped);
  if (core.options.slowConsumer === 'disconnect') {
    await kick(core, clientId, 'slow_consumer');
    return true;
  }
  core.options.logger.warn(`session queue full: dropped ${dropped} oldest message(s) (maxQueue ${core.options.maxQueue})`);
  return false;
}
