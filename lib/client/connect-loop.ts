/**
 * The connect loop: one `/meta/connect` outstanding while the client has a
 * session, sent again `advice.interval` after each answer. The server holds
 * it until it has messages for the client or `advice.timeout` passes.
 *
 * The first connect of a session (or after a failure) asks for an
 * immediate answer (`advice: { timeout: 0 }`), so the client knows at once
 * that the transport works. Connects that keep coming back at once with
 * nothing (a server that does not hold them, or asks for polling with no
 * interval) are idle polls: after a few in a row, the next connects wait
 * on the retry schedule until one is held or brings a message.
 *
 * What an answer means for the session (advice to handshake again or stop,
 * a refusal) is the client's state machine's to decide.
 */

import { IDLE_POLLS_ALLOWED, MIN_IDLE_POLL_MS, timerDelay } from './constants.js';
import type { Backoff } from './backoff.js';
import type { Dispatcher } from './dispatcher.js';
import type { ClientLog } from './logger.js';
import type { BayeuxMessage, TransportName } from './message.js';
import type { ClientState } from './state.js';

/** What the connect loop needs from the client's state machine. */
export interface ConnectLoopHost {
  readonly state: ClientState;
  readonly epoch: number;
  readonly clientId: string | undefined;
  /** The transport in use: the connect's `connectionType`. */
  readonly transport: TransportName | undefined;
  /** The server's last advice, clamped. */
  readonly advice: { readonly interval: number; readonly timeout: number };
  /**
   * The server answered a connect sent in `epoch`: act on it. Returns
   * whether the loop goes on (the session is connected and nothing else was
   * advised).
   */
  connectAnswered(reply: BayeuxMessage, epoch: number): boolean;
}

export class ConnectLoop {
  readonly #host: ConnectLoopHost;
  readonly #dispatcher: Dispatcher;
  readonly #backoff: Backoff;
  readonly #maxNetworkDelay: number;
  readonly #log: ClientLog;
  /** A connect is outstanding. */
  #pending = false;
  /** The next connect is the first of a session or after a failure. */
  #first = true;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The dispatcher's delivered count and the time when the outstanding connect was sent. */
  #mark = { delivered: 0, at: 0 };
  /** Connects in a row that came back quickly with nothing. */
  #idlePolls = 0;

  constructor(host: ConnectLoopHost, dispatcher: Dispatcher, backoff: Backoff, maxNetworkDelay: number, log: ClientLog) {
    this.#host = host;
    this.#dispatcher = dispatcher;
    this.#backoff = backoff;
    this.#maxNetworkDelay = maxNetworkDelay;
    this.#log = log;
  }

  /** A new session: the first connect goes at once and asks for an immediate answer. */
  start(): void {
    this.#first = true;
    this.schedule(0);
  }

  /** The transport failed: the next connect asks for an immediate answer. */
  restart(): void {
    this.#first = true;
  }

  /** What was in flight is stale: forget the outstanding connect and the timer. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = false;
  }

  /** Send a connect after `delay` ms, in the current epoch. */
  schedule(delay: number): void {
    clearTimeout(this.#timer);
    const epoch = this.#host.epoch;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.send(epoch);
    }, timerDelay(delay));
  }

  /** Send a connect now, unless one is outstanding or `epoch` is stale. */
  send(epoch: number): void {
    const host = this.#host;
    const transport = host.transport;
    if (epoch !== host.epoch || this.#pending || !host.clientId || !transport) return;
    if (host.state !== 'connected' && host.state !== 'reconnecting') return;
    this.#pending = true;
    const template: BayeuxMessage = { channel: '/meta/connect', connectionType: transport };
    if (this.#first) template.advice = { timeout: 0 };
    const timeout = (this.#first ? 0 : host.advice.timeout) + this.#maxNetworkDelay;
    const first = this.#first;
    this.#mark = { delivered: this.#dispatcher.delivered, at: Date.now() };
    this.#dispatcher.send('connect', template, {
      reply: (reply) => this.#replied(reply, epoch, first),
      fail: (_error, final) => {
        if (epoch !== this.#host.epoch) return;
        this.#pending = false;
        // An extension threw or dropped it: try again later rather than stop the loop.
        if (final) this.#backoff.retry(() => this.send(epoch));
      },
    }, transport, timeout);
  }

  #replied(reply: BayeuxMessage, epoch: number, first: boolean): void {
    if (epoch !== this.#host.epoch) return;
    this.#pending = false;
    // Disconnecting: the server answers the held connect, often with 402; nothing more to do.
    if (this.#host.state === 'disconnecting') return;
    if (reply.successful === true) this.#first = false;
    if (this.#host.connectAnswered(reply, epoch)) this.schedule(this.#nextDelay(first));
  }

  /**
   * The server's interval, unless connects keep coming back at once with
   * nothing: after a few such idle polls in a row, the retry schedule.
   */
  #nextDelay(first: boolean): number {
    const interval = this.#host.advice.interval;
    const idle = !first && this.#dispatcher.delivered === this.#mark.delivered
      && Date.now() - this.#mark.at + interval < MIN_IDLE_POLL_MS;
    this.#idlePolls = idle ? this.#idlePolls + 1 : 0;
    if (this.#idlePolls <= IDLE_POLLS_ALLOWED) return interval;
    const delay = Math.max(interval, this.#backoff.delay(this.#idlePolls - IDLE_POLLS_ALLOWED - 1));
    this.#log.info(`bayeux backoff: ${this.#idlePolls} connects in a row answered at once with nothing, waiting ${Math.round(delay)} ms`);
    return delay;
  }
}
