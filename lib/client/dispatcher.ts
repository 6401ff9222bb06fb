/**
 * The dispatcher: gets messages to the server and matches what comes back.
 *
 * Everything the caller sends (publishes, subscribes, unsubscribes, the
 * final disconnect) waits in one ordered queue, which flows while the
 * client is connected (or disconnecting), `maxBatch` messages per request
 * or frame, one batch at a time on long-polling. A message sent and not yet
 * answered is in flight, keyed by its id; after a network failure or a new
 * session it goes back into the queue in its place and is sent again,
 * except when the server refused the request itself as too large or
 * malformed (HTTP 400, 413, 415; WebSocket close 1009): a message sent
 * alone is then rejected with that error, and the messages of a larger
 * batch are sent again one per request, so only the culprit fails. A
 * re-subscription is a barrier: sent alone, and nothing else goes until it
 * is answered, so publishes never overtake the subscriptions of a new
 * session.
 *
 * Three lanes share the sending: `queue` (the above), `handshake` (always
 * long-polling; a failed request fails the handshake, not the transport)
 * and `connect` (the connect loop's one `/meta/connect`; no reply is a
 * network failure).
 *
 * On the way out each message gets its id and clientId, then the ack
 * extension, the user's extensions and last timesync; on the way in,
 * timesync, the user's extensions, then deliveries go to the subscribers
 * (after the ack extension drops copies) before replies settle what was in
 * flight.
 */

import type { AckTracker } from './ack.js';
import { isMeta } from '../protocol/channel.js';
import { timerDelay } from './constants.js';
import { BayeuxClientError, BayeuxError, toError } from './errors.js';
import type { Extensions } from './extensions.js';
import type { ClientLog } from './logger.js';
import type { BayeuxMessage, TransportName } from './message.js';
import type { ResolvedOptions } from './options.js';
import type { Reporter } from './report.js';
import type { ClientState } from './state.js';
import type { TimeSync } from './timesync.js';
import type { Transports } from './transports.js';

/** What a message is, which decides how its reply and failure are handled. */
export type Kind = 'handshake' | 'connect' | 'publish' | 'subscribe' | 'unsubscribe' | 'disconnect';
type Lane = 'handshake' | 'connect' | 'queue';

/** What the sender of a handshake or connect does with the outcome. */
export interface Outcome {
  /** The server answered. */
  reply(message: BayeuxMessage): void;
  /** It could not be answered: `final` means give up, otherwise it may be sent again. */
  fail(error: Error, final: boolean): void;
}

/** A message on its way: in the queue, or sent and waiting for its reply. */
interface Outgoing extends Outcome {
  /** Queue order. */
  seq: number;
  kind: Kind;
  /** The message without `id` and `clientId`, which are added when it is sent. */
  template: BayeuxMessage;
  /** Sent alone, and nothing else is sent until it is answered (re-subscriptions). */
  barrier: boolean;
  id?: string;
  /** The epoch it was last sent in. */
  epoch?: number;
  /** What `ext.ack` the connect carried. */
  sentAck?: number;
  timer?: ReturnType<typeof setTimeout>;
  /** Sent in a batch the server refused: sent alone from now on, to find which message it refused. */
  alone?: boolean;
  /** The WebSocket frame it went in, while it waits for its reply. */
  frame?: SentFrame;
}

/** A WebSocket frame of queued messages: which messages, and how long it was. */
interface SentFrame {
  length: number;
  items: Outgoing[];
}

/** HTTP statuses that refuse the request itself: sending it again would be refused again. */
const REFUSED_REQUEST = new Set([400, 413, 414, 415, 431]);

/** Whether `error` is the server refusing what was sent (not the network failing). */
function refusedRequest(error: unknown): error is BayeuxClientError {
  return error instanceof BayeuxClientError && error.status !== undefined && REFUSED_REQUEST.has(error.status);
}

/** How a queued message is placed: `front` and `barrier` for re-subscriptions, `force` past `maxQueue`. */
export interface EnqueueOptions {
  barrier?: boolean;
  front?: boolean;
  force?: boolean;
}

/** What the dispatcher needs from the client's state machine. */
export interface DispatcherHost {
  /** The queue flows while `connected` or `disconnecting`. */
  readonly state: ClientState;
  /** Bumped whenever what is in flight becomes stale. */
  readonly epoch: number;
  readonly clientId: string | undefined;
  /** The network failed while `epoch` was current. */
  transportFailed(error: Error, epoch: number): void;
  /** A reply said the server forgot the session. */
  rehandshake(error: Error): void;
  /** A message delivered on a channel: for the subscribers. */
  deliver(message: BayeuxMessage): void;
  /**
   * The answer to a connect sent in `epoch` was longer than
   * `maxResponseBytes` and was abandoned unread; the connection itself works.
   */
  responseTooLarge(error: BayeuxClientError, epoch: number): void;
}

/** The parts of the client the dispatcher works with. */
export interface DispatcherParts {
  options: Pick<ResolvedOptions, 'maxQueue' | 'maxBatch' | 'maxNetworkDelay'>;
  transports: Transports;
  extensions: Extensions;
  ack: AckTracker;
  timesync: TimeSync | undefined;
  log: ClientLog;
  report: Reporter;
}

export class Dispatcher {
  readonly #host: DispatcherHost;
  readonly #options: DispatcherParts['options'];
  readonly #transports: Transports;
  readonly #extensions: Extensions;
  readonly #ack: AckTracker;
  readonly #timesync: TimeSync | undefined;
  readonly #log: ClientLog;
  readonly #report: Reporter;

  #nextId = 0;
  #nextSeq = 0;
  #queue: Outgoing[] = [];
  #inflight = new Map<string, Outgoing>();
  /** A queue batch is being prepared or (long-polling) is waiting for its response. */
  #sending = false;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** Messages delivered to subscribers so far. */
  #delivered = 0;

  constructor(host: DispatcherHost, parts: DispatcherParts) {
    this.#host = host;
    this.#options = parts.options;
    this.#transports = parts.transports;
    this.#extensions = parts.extensions;
    this.#ack = parts.ack;
    this.#timesync = parts.timesync;
    this.#log = parts.log;
    this.#report = parts.report;
  }

  /** How many messages have been delivered to subscribers (the connect loop tells idle polls by it). */
  get delivered(): number {
    return this.#delivered;
  }

  /** Queue a message; resolves with its successful reply. */
  enqueue(kind: Kind, template: BayeuxMessage, options: EnqueueOptions = {}): Promise<BayeuxMessage> {
    if (!options.force && !options.front && this.#queue.length >= this.#options.maxQueue) {
      return Promise.reject(this.#report.refuse(
        new BayeuxClientError('queue-full', `${this.#queue.length} messages are already waiting to be sent (maxQueue)`), template));
    }
    return new Promise<BayeuxMessage>((resolve, reject) => {
      const item: Outgoing = this.#item(kind, template, {
        reply: (reply) => this.#itemReplied(item, reply, resolve, reject),
        fail: (error, final) => {
          if (final || kind === 'disconnect') reject(error);
          else this.#requeue(item);
        },
      }, options.barrier ?? false);
      if (options.front) {
        item.seq = (this.#queue[0]?.seq ?? this.#nextSeq) - 1;
        this.#queue.unshift(item);
      } else {
        item.seq = this.#nextSeq++;
        this.#queue.push(item);
      }
      this.scheduleFlush();
    });
  }

  /** Send a handshake (over long-polling) or a connect now, outside the queue. */
  send(kind: 'handshake' | 'connect', template: BayeuxMessage, outcome: Outcome, via: TransportName, timeout: number): void {
    this.#report.guard(this.#transmit([this.#item(kind, template, outcome)], via, timeout, kind));
  }

  /** Best effort, unanswered: let the server end an old session now rather than at its timeout. */
  abandon(clientId: string): void {
    // The request's failure is already handled by the transport; nobody waits for it.
    void this.#transports.post([{ channel: '/meta/disconnect', clientId, id: String(++this.#nextId) }], this.#options.maxNetworkDelay);
  }

  /** Send the head of the queue soon, if there is one. */
  scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#queue.length === 0) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, 0);
  }

  /**
   * What was in flight is stale (the epoch changed): fail it, `final` to
   * reject, otherwise queued messages go back into the queue.
   */
  reset(error: Error, final: boolean): void {
    this.#sending = false;
    const items = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const item of items) {
      clearTimeout(item.timer);
      item.fail(error, final);
    }
  }

  /**
   * The server closed the WebSocket because a frame was too large (1009).
   * The longest frame of queued messages still unanswered is the culprit:
   * a message sent alone is rejected with `error`; the messages of a batch
   * are sent again one per frame (once the socket is back), so that only the
   * one too large is rejected. Returns whether a culprit was found.
   */
  frameRefused(error: BayeuxClientError): boolean {
    let culprit: SentFrame | undefined;
    for (const item of this.#inflight.values()) {
      if (item.frame && (!culprit || item.frame.length > culprit.length)) culprit = item.frame;
    }
    if (!culprit) return false;
    this.#refused(culprit.items, error);
    return true;
  }

  /** The client stopped: reject everything still queued. */
  failQueued(error: Error): void {
    const queue = this.#queue;
    this.#queue = [];
    for (const item of queue) item.fail(error, true);
  }

  /** Handle what the server sent: deliveries first, then replies. */
  receive(raw: BayeuxMessage[]): void {
    const replies: BayeuxMessage[] = [];
    let deliveries: BayeuxMessage[] = [];
    this.#log.messages('in', this.#transports.current ?? 'long-polling', raw);
    for (const original of raw) {
      this.#timesync?.incoming(original);
      const message = this.#extensions.isEmpty ? original : this.#extensions.incoming(original);
      if (!message) continue;
      if (isMeta(message.channel) || typeof message.successful === 'boolean') replies.push(message);
      // A presence notice has no data: it goes to the subscriptions, which hand it to the channel's presence view.
      else if (message.data !== undefined || message.ext?.['presence'] !== undefined) deliveries.push(message);
    }
    for (const reply of replies) {
      if (reply.channel !== '/meta/connect') continue;
      // Ids are matched as strings: a server may echo the client's "7" as 7.
      const item = reply.id === undefined ? undefined : this.#inflight.get(String(reply.id));
      deliveries = this.#ack.incomingConnect(reply, item?.kind === 'connect' ? item.sentAck : undefined, deliveries);
    }
    this.#delivered += deliveries.length;
    for (const message of deliveries) this.#host.deliver(message);
    for (const reply of replies) {
      const id = reply.id === undefined ? undefined : String(reply.id);
      const item = id === undefined ? undefined : this.#inflight.get(id);
      if (!item) {
        // A reply to something no longer waiting (a session that just ended, say).
        if (reply.successful === false && reply.advice?.reconnect !== 'handshake') this.#report.failed(BayeuxError.parse(reply.error, reply), reply);
        continue;
      }
      this.#inflight.delete(id as string);
      clearTimeout(item.timer);
      item.reply(reply);
      // A re-subscription, or a message sent alone, holds the queue back until it is answered.
      if (item.barrier || item.alone) this.scheduleFlush();
    }
  }

  /**
   * The server refused a request or frame of queued messages as a whole: a
   * message sent alone is rejected with `error`; the messages of a batch go
   * back into the queue, to be sent one per request.
   */
  #refused(items: readonly Outgoing[], error: BayeuxClientError): void {
    const waiting = items.filter((item) => this.#inflight.get(item.id as string) === item);
    for (const item of waiting) {
      this.#inflight.delete(item.id as string);
      clearTimeout(item.timer);
      item.frame = undefined;
    }
    if (waiting.length === 1) {
      const item = waiting[0] as Outgoing;
      this.#report.failed(error, { ...item.template, successful: false, error: error.message });
      item.fail(error, true);
      return;
    }
    this.#log.info(`bayeux: the server refused a batch of ${waiting.length} messages (${error.message}); sending them one by one`);
    for (const item of waiting) {
      item.alone = true;
      this.#requeue(item);
    }
  }

  #item(kind: Kind, template: BayeuxMessage, outcome: Outcome, barrier = false): Outgoing {
    return { seq: -1, kind, template, barrier, ...outcome };
  }

  #itemReplied(item: Outgoing, reply: BayeuxMessage, resolve: (reply: BayeuxMessage) => void, reject: (error: Error) => void): void {
    if (reply.successful === true) {
      resolve(reply);
      return;
    }
    const error = BayeuxError.parse(reply.error, reply);
    const state = this.#host.state;
    if (reply.advice?.reconnect === 'handshake' && item.kind !== 'disconnect' && state !== 'disconnecting') {
      // The session is gone: send it again in the next one.
      this.#requeue(item);
      if (item.epoch === this.#host.epoch && state !== 'handshaking') this.#host.rehandshake(error);
      return;
    }
    this.#report.failed(error, reply);
    reject(error);
  }

  /** Put a message that was sent but not answered back in the queue, in its place. */
  #requeue(item: Outgoing): void {
    clearTimeout(item.timer);
    let index = this.#queue.length;
    while (index > 0 && (this.#queue[index - 1] as Outgoing).seq > item.seq) index--;
    this.#queue.splice(index, 0, item);
    this.scheduleFlush();
  }

  /** Send the head of the queue, if the transport is free. */
  #flush(): void {
    const state = this.#host.state;
    if (state !== 'connected' && state !== 'disconnecting') return;
    const via = this.#transports.current;
    if (this.#sending || !this.#host.clientId || !via || this.#queue.length === 0) return;
    // A re-subscription holds the queue back until answered; so does a message sent alone after a
    // refused batch (the next one would be lost with the socket, and sent twice, if it were the culprit).
    for (const item of this.#inflight.values()) if (item.barrier || item.alone) return;
    const head = this.#queue.shift() as Outgoing;
    const batch: Outgoing[] = [head];
    if (!head.alone) {
      while (batch.length < this.#options.maxBatch && this.#queue.length > 0
        && (this.#queue[0] as Outgoing).barrier === head.barrier && !(this.#queue[0] as Outgoing).alone) {
        batch.push(this.#queue.shift() as Outgoing);
      }
    }
    this.#sending = true;
    this.#report.guard(this.#transmit(batch, via, this.#options.maxNetworkDelay, 'queue'));
  }

  /** Run extensions, send, and handle the outcome. */
  async #transmit(items: Outgoing[], via: TransportName, timeout: number, lane: Lane): Promise<void> {
    const epoch = this.#host.epoch;
    const messages: BayeuxMessage[] = [];
    const sent: Outgoing[] = [];
    for (const item of items) {
      item.id ??= String(++this.#nextId);
      const message: BayeuxMessage = { ...item.template, id: item.id };
      if (item.template.ext) message.ext = { ...item.template.ext };
      const clientId = this.#host.clientId;
      if (item.kind !== 'handshake' && clientId) message.clientId = clientId;
      if (item.kind === 'connect') item.sentAck = this.#ack.outgoingConnect(message);
      let out: BayeuxMessage | null;
      try {
        // No extension, no await: the batch goes out in this tick.
        out = this.#extensions.isEmpty ? message : await this.#extensions.outgoing(message);
      } catch (error) {
        item.fail(toError(error), true);
        continue;
      }
      if (out === null) {
        item.fail(new BayeuxClientError('cancelled', 'An extension dropped the message'), true);
        continue;
      }
      // Last, so `tc` is as close to the send as it can be.
      this.#timesync?.outgoing(out);
      messages.push(out);
      sent.push(item);
    }
    if (epoch !== this.#host.epoch) {
      for (const item of sent) item.fail(new BayeuxClientError('cancelled', 'The session changed'), false);
      return;
    }
    for (const item of sent) {
      item.epoch = epoch;
      this.#inflight.set(item.id as string, item);
    }
    if (messages.length === 0) {
      this.#sent(lane);
      return;
    }
    this.#log.messages('out', via, messages);

    if (via === 'websocket') {
      let length: number;
      try {
        length = this.#transports.sendFrame(messages);
      } catch (error) {
        this.#host.transportFailed(error as Error, epoch);
        return;
      }
      const frame: SentFrame | undefined = lane === 'queue' ? { length, items: sent } : undefined;
      for (const item of sent) {
        item.frame = frame;
        item.timer = setTimeout(() => {
          this.#host.transportFailed(new BayeuxClientError('timeout', `No reply to ${item.template.channel} within ${timeout} ms`), epoch);
        }, timerDelay(timeout));
      }
      this.#sent(lane);
      return;
    }

    let replies: BayeuxMessage[];
    try {
      replies = await this.#transports.post(messages, timeout);
    } catch (error) {
      if (epoch !== this.#host.epoch || (error as BayeuxClientError).type === 'cancelled') return;
      if (lane === 'queue' && refusedRequest(error)) {
        // Not the network: the server will refuse these again, whenever they are sent.
        this.#refused(sent, error);
        this.#sent(lane);
        return;
      }
      if (lane === 'connect' && error instanceof BayeuxClientError && error.type === 'too-large' && error.status === undefined) {
        for (const item of sent) {
          if (this.#inflight.get(item.id as string) !== item) continue;
          this.#inflight.delete(item.id as string);
          item.fail(error, false);
        }
        this.#host.responseTooLarge(error, epoch);
        return;
      }
      if (lane === 'handshake') {
        for (const item of sent) {
          if (this.#inflight.get(item.id as string) !== item) continue;
          this.#inflight.delete(item.id as string);
          item.fail(error as Error, false);
        }
        return;
      }
      this.#host.transportFailed(error as Error, epoch);
      return;
    }
    if (epoch !== this.#host.epoch) return;
    this.receive(replies);
    if (epoch !== this.#host.epoch) return;
    for (const item of sent) {
      if (this.#inflight.get(item.id as string) !== item) continue;
      const error = new BayeuxClientError('no-reply', `The server sent no reply to ${item.template.channel}`);
      if (lane === 'connect') {
        this.#host.transportFailed(error, epoch);
        return;
      }
      this.#inflight.delete(item.id as string);
      item.fail(error, lane === 'queue');
    }
    this.#sent(lane);
  }

  #sent(lane: Lane): void {
    if (lane !== 'queue') return;
    this.#sending = false;
    this.scheduleFlush();
  }
}
