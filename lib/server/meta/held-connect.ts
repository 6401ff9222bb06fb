/**
 * A held `/meta/connect`, from its hold to its answer, as one object; and
 * the reply every connect gets once its messages are taken. Its own file
 * so that the pieces that release a held connect (delivery, the ending of
 * sessions, the Server's close and detach) name it without importing the
 * connect handler.
 */
import type { TakeResult } from '../../engines/engine.js';
import { ProtocolErrors } from '../../errors.js';
import { describeError } from '../../protocol/error.js';
import type { ServerCore } from '../core.js';
import { overflowed, takeQueue } from '../delivery.js';
import type { Holdable, HoldList } from '../hold.js';
import type { Attachment } from '../attachment.js';
import { answer, connectAdvice, failure, type Outcome, refusal, reply, sessionUnknown } from '../reply.js';
import { timesync } from '../timesync.js';
import type { AbortListener, Connection, Context, Message } from '../types.js';

/** What a connect's reply carries when nothing is to be taken for it. */
export const NOTHING_TAKEN: TakeResult = Object.freeze({ messages: [], dropped: 0 });

// Where a held connect is in its life (its `#state`).
/** Registered; the connect handler's first take is under way. */
const TAKING = 0;
/** Waiting for a release. */
const WAITING = 1;
/** Released while its first take was under way: the handler answers it. */
const RELEASED = 2;
/** Its client went away while its first take was under way. */
const ABORTED = 3;
/** Answered, or being answered: every later release is ignored. */
const DONE = 4;

/**
 * A `/meta/connect` held until messages arrive: its request (`message`,
 * `conn`, `respond`), its place in the deadline lists, on its attachment and
 * in the per-address count, and its answer. One object per held connect,
 * and no closure: it is its connection's abort listener, and one function
 * (`#answer`) answers them all.
 *
 * It is answered once, whatever releases it first: a publish (`release`
 * with its share of the tick's take), its deadline, a newer connect of the
 * session, the session's end, the server's close (`release()`), or its
 * client going away (`abort`). The first release takes it out of
 * everywhere it was registered, so no later wake can take messages for it.
 */
export class HeldConnect implements AbortListener, Holdable {
  readonly core: ServerCore;
  readonly message: Message;
  /** The connection it arrived on (`Server.detach` compares it with a socket). */
  readonly conn: Connection;
  readonly attachment: Attachment;
  /** The client's address, when connects are counted per address. */
  readonly ip: string | undefined;
  /** The last batch its client acknowledged (ack extension). */
  readonly ack: number | undefined;
  /** When it was received, for timesync. */
  readonly received: number;
  /** Where its texts go: the transport's callback, given with the request. */
  readonly #respond: (replies: string[]) => void;
  /** When its wait ends (set by `Holds.add`). */
  deadline = 0;
  /** @internal `Holds`' list links */
  prev: Holdable | undefined = undefined;
  /** @internal */
  next: Holdable | undefined = undefined;
  /** @internal the deadline list it is in while waiting */
  list: HoldList | undefined = undefined;
  #state: number = TAKING;
  /** What a publish took for it while its first take was under way. */
  #taken: Promise<TakeResult | null> | undefined = undefined;

  constructor(
    core: ServerCore, message: Message, conn: Connection, attachment: Attachment, ip: string | undefined, ack: number | undefined,
    received: number, respond: (replies: string[]) => void,
  ) {
    this.core = core;
    this.message = message;
    this.conn = conn;
    this.attachment = attachment;
    this.ip = ip;
    this.ack = ack;
    this.received = received;
    this.#respond = respond;
  }

  /** On a socket without acks nothing is taken for it: pushes carry the messages. */
  get pushMode(): boolean {
    return this.conn.push !== undefined && this.ack === undefined;
  }

  /**
   * Hold it for `ms`: in the deadline lists, on its attachment, counted for
   * its address. Then its first take, so that a publish landing between the
   * take and the wait releases it instead of being missed. Resolves to its
   * answer when one is due now (messages were waiting, or the wait already
   * ended), or to `{ held }`: it waits, and answers through `respond`.
   */
  async hold(ms: number): Promise<Outcome> {
    const { core, attachment, ip } = this;
    core.holds.add(this, ms);
    attachment.held = this;
    if (ip !== undefined) core.heldPerIp.set(ip, (core.heldPerIp.get(ip) ?? 0) + 1);
    let first: TakeResult | null;
    try {
      first = this.pushMode ? NOTHING_TAKEN : await this.#take();
    } catch (err) {
      if (this.#state === TAKING) this.#unhold();
      this.#state = DONE;
      throw err;
    }
    const state = this.#state;
    if (state === TAKING) {
      if (first && first.messages.length === 0) {
        this.#state = WAITING;
        if (this.conn.aborted?.()) this.abort();
        else this.conn.onAbort?.(this);
        return { held: this };
      }
      this.#unhold(); // messages were waiting (or the session is gone): answer now
    }
    this.#state = DONE;
    const aborted = state === ABORTED || this.conn.aborted?.() === true;
    const taken = this.#taken;
    this.#taken = undefined;
    if (first && !aborted) {
      // Released meanwhile: what a publish took for it goes out with the rest; otherwise look again.
      if (taken) first = joined(first, await taken.catch(() => first));
      else if (first.messages.length === 0 && !this.pushMode) first = await this.#take().catch(() => first);
    }
    return connectReply(core, { message: this.message, attachment, result: first, aborted, conn: this.conn });
  }

  /**
   * Answer it now: messages arrived (`taken` is its share of what the
   * tick's batch took for it, `delivery.ts` `answerPolls`), its deadline
   * passed, a newer connect came, its session ended, or the server is
   * closing. Only the first release or abort counts.
   */
  release(taken?: Promise<TakeResult | null>): void {
    const state = this.#state;
    if (state !== TAKING && state !== WAITING) return;
    this.#unhold();
    if (state === TAKING) {
      this.#state = RELEASED;
      this.#taken = taken;
      return;
    }
    this.#state = DONE;
    this.#answer(false, taken);
  }

  /** Its client went away: answered without taking anything (nothing could be delivered). */
  abort(): void {
    const state = this.#state;
    if (state !== TAKING && state !== WAITING) return;
    this.#unhold();
    this.#state = state === TAKING ? ABORTED : DONE;
    if (state === WAITING) this.#answer(true, undefined);
  }

  /** Its connection's abort listener (`Connection.onAbort`). */
  handleEvent(): void {
    this.abort();
  }

  /** What its reply carries: the session's queue, or, in push mode, nothing (after checking the session lives). */
  #take(): Promise<TakeResult | null> {
    return takeFor(this.core, this.attachment.clientId, this.pushMode, this.ack);
  }

  /** It no longer waits: out of the deadline lists, its connection, its attachment and the per-address count. */
  #unhold(): void {
    const { core, attachment, ip } = this;
    this.list?.remove(this);
    this.conn.offAbort?.(this);
    if (attachment.held === this) attachment.held = undefined;
    if (ip !== undefined) {
      const n = (core.heldPerIp.get(ip) ?? 1) - 1;
      if (n > 0) core.heldPerIp.set(ip, n);
      else core.heldPerIp.delete(ip);
    }
    core.attachments.prune(attachment);
  }

  /** Released while waiting: take its messages (unless the tick's batch did, or its client went away), and answer. */
  #answer(aborted: boolean, taken: Promise<TakeResult | null> | undefined): void {
    const { core, message } = this;
    const messages = aborted ? Promise.resolve(NOTHING_TAKEN) : (taken ?? this.#take());
    messages
      .then((result) => connectReply(core, { message, attachment: this.attachment, result, aborted, conn: this.conn }))
      .catch((err: unknown): Outcome => ({ reply: failure(core, message, err) }))
      .then((outcome) => answer(core, this.conn, [timesync(core.options, message, this.received, outcome)]))
      .then((texts) => core.finish(this.#respond, texts))
      .catch((err: unknown) => core.options.logger.error(`a held connect could not be answered: ${describeError(err)}`));
  }
}

/** What a connect's reply carries: the session's queue, or, in push mode, nothing (after checking the session lives). */
export async function takeFor(core: ServerCore, clientId: string, pushMode: boolean, ack: number | undefined): Promise<TakeResult | null> {
  if (pushMode) return (await core.engine.exists(clientId)) ? NOTHING_TAKEN : null;
  return takeQueue(core, clientId, ack);
}

/** Two takes for one connect, in the order they were made; a later null (the session ended meanwhile) keeps what was taken first. */
function joined(first: TakeResult, later: TakeResult | null): TakeResult | null {
  if (later === first) return first;
  if (!later) return first.messages.length > 0 || first.dropped > 0 ? first : null;
  if (first.messages.length === 0 && first.dropped === 0) return later;
  return { messages: [...first.messages, ...later.messages], dropped: first.dropped + later.dropped, batch: later.batch ?? first.batch };
}

/** What a connect is answered with, once its messages are taken (or its wait was aborted). */
export interface ConnectDecision {
  readonly message: Message;
  readonly attachment: Attachment;
  /** What was taken for it; null when the session is gone. */
  readonly result: TakeResult | null;
  /** Its client went away: the reply carries no deliveries. */
  readonly aborted: boolean;
  /** A session's first connect (never held): the `connect` event is emitted with this context. */
  readonly ctx?: Context;
  /** The connection the connect arrived on (a drain's hand-off closes it after the answer). */
  readonly conn?: Connection;
  /** Not held because its address holds `maxConnectionsPerIp` already: advise `multiple-clients`. */
  readonly multipleClients?: boolean;
}

/** The reply to a connect once its messages are taken (or its wait was aborted). */
export async function connectReply(core: ServerCore, decision: ConnectDecision): Promise<Outcome> {
  const { message, attachment, result, ctx } = decision;
  const { clientId } = attachment;
  const { options } = core;
  if (!result) {
    core.attachments.delete(clientId);
    // The client disconnected while this connect was held: tell it not to come back.
    if (attachment.ended === 'client') {
      return { reply: reply(message, { clientId, successful: true, advice: { reconnect: 'none', interval: 0 } }) };
    }
    return { reply: sessionUnknown(core, message) };
  }
  if (result.batch !== undefined) attachment.ack = true;
  // The session lives maxInterval after this connect ends. If the engine
  // fails here the messages taken must still go out; the earlier touch
  // (timeout + maxInterval) keeps the session alive meanwhile.
  await core.engine.touch(clientId, options.maxInterval).catch(() => undefined);
  if (result.dropped > 0 && (await overflowed(core, clientId, result.dropped))) {
    return {
      reply: refusal(core, message, ProtocolErrors.slowConsumer(), undefined, { reconnect: 'handshake', interval: 0 }),
    };
  }
  const { drain } = core;
  if (drain?.due(clientId)) {
    // Handed off by a drain: come back after the advised interval (to another node), socket closed once this is written.
    const advice = drain.handOff(clientId);
    // The session must outlive the advised wait (up to the whole window, which may be longer than maxInterval).
    await core.engine.touch(clientId, (advice.interval ?? 0) + options.maxInterval).catch(() => undefined);
    const out = reply(message, { clientId, successful: true, advice });
    if (result.batch !== undefined) out.ext = { ack: result.batch };
    decision.conn?.drain?.();
    attachment.sink?.drain?.();
    if (ctx) core.emit('connect', clientId, ctx);
    if (decision.aborted) return { reply: out };
    core.observers.delivered(result.messages);
    return { reply: out, deliveries: result.messages };
  }
  const advice = connectAdvice(options);
  if (decision.multipleClients) {
    advice['multiple-clients'] = true;
    advice.interval = Math.max(options.interval, 2000);
  }
  const out = reply(message, { clientId, successful: true, advice });
  if (result.batch !== undefined) out.ext = { ack: result.batch };
  if (ctx) core.emit('connect', clientId, ctx);
  if (decision.aborted) return { reply: out };
  core.observers.delivered(result.messages);
  return { reply: out, deliveries: result.messages };
}
