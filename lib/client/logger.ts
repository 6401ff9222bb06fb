/**
 * The client's optional log: state changes at `info`, every message out and
 * in at `debug`. Nothing is logged unless the `debug` or `logger` option is
 * given. A trace names the channel, the first characters of the clientId
 * (a session id is a bearer secret), the transport and the start of the
 * data; it never shows `ext`, where credentials travel.
 */

import { TRACE_DATA_CHARS } from './constants.js';
import { isThenable } from './errors.js';
import type { BayeuxMessage } from './message.js';

/** Where the client logs: any object with these four methods (`console`, winston, pino). */
export interface ClientLogger {
  error(message: string): unknown;
  warn(message: string): unknown;
  info(message: string): unknown;
  debug(message: string): unknown;
}

type Level = keyof ClientLogger;

export class ClientLog {
  readonly #logger: ClientLogger | undefined;

  constructor(logger: ClientLogger | undefined) {
    this.#logger = logger;
  }

  info(text: string): void {
    this.#write('info', text);
  }

  warn(text: string): void {
    this.#write('warn', text);
  }

  error(text: string): void {
    this.#write('error', text);
  }

  /** Trace messages sent (`out`) or received (`in`) over `transport`. */
  messages(direction: 'out' | 'in', transport: string, messages: readonly BayeuxMessage[]): void {
    if (!this.#logger) return;
    for (const message of messages) this.#write('debug', `bayeux ${direction} ${transport} ${describeMessage(message)}`);
  }

  #write(level: Level, text: string): void {
    const logger = this.#logger;
    if (!logger) return;
    try {
      const result: unknown = logger[level](text);
      // An async logger that rejects must not become an unhandled rejection.
      if (isThenable(result)) result.then(undefined, function ignoreLoggerFailure() {});
    } catch {
      // A logger that throws must not break the client.
    }
  }
}

/** One line for a message: channel, id, short clientId, outcome, truncated data. */
export function describeMessage(message: BayeuxMessage): string {
  const parts = [String(message.channel)];
  if (message.id !== undefined) parts.push(`id=${String(message.id)}`);
  if (typeof message.clientId === 'string') parts.push(`client=${shortId(message.clientId)}`);
  if (typeof message.successful === 'boolean') parts.push(message.successful ? 'ok' : `failed ${String(message.error ?? '')}`);
  if (message.subscription !== undefined) parts.push(`subscription=${String(message.subscription)}`);
  if (message.advice !== undefined) parts.push(`advice=${truncate(safeJson(message.advice))}`);
  if (message.data !== undefined) parts.push(`data=${truncate(safeJson(message.data))}`);
  return parts.join(' ');
}

/** The first 6 characters of a clientId, enough to tell sessions apart in a log. */
export function shortId(clientId: string): string {
  return clientId.length <= 6 ? clientId : `${clientId.slice(0, 6)}…`;
}

function truncate(text: string): string {
  return text.length <= TRACE_DATA_CHARS ? text : `${text.slice(0, TRACE_DATA_CHARS)}… (${text.length} chars)`;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return '[unserializable]';
  }
}
