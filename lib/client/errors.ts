/**
 * Errors the client rejects with: `BayeuxError` (a refusal in the
 * protocol's `code:args:message` form, shared with the server) and
 * `BayeuxClientError` (the client gave up without a refusal); and the two
 * helpers every place that calls user code (handlers, listeners,
 * extensions, loggers, `onError`) uses to catch what it throws or rejects.
 */
export { BayeuxError, type BayeuxErrorReply } from '../protocol/error.js';

/**
 * Why the client gave up on something without a Bayeux error from the
 * server. `type` is stable and machine-readable:
 *
 * - `network`: a request or the WebSocket failed (connection refused, reset).
 * - `timeout`: no answer within `maxNetworkDelay` (beyond the connect timeout).
 * - `http`: the server answered a long-polling request with a non-2xx status.
 * - `protocol`: the server's answer was not Bayeux JSON.
 * - `too-large`: a response body or WebSocket frame was longer than `maxResponseBytes`.
 * - `no-transport`: the client and the server share no usable transport.
 * - `no-reply`: the server answered a request without a reply to this message.
 * - `queue-full`: `maxQueue` messages are already waiting to be sent.
 * - `disconnected`: `disconnect()` was called, or the server told the client
 *   not to reconnect, before this message was answered.
 * - `cancelled`: an outgoing extension dropped the message.
 */
export class BayeuxClientError extends Error {
  /** See the class documentation for the values. */
  readonly type: BayeuxClientErrorType;
  /** The HTTP status, for `type: 'http'`. */
  readonly status: number | undefined;

  constructor(type: BayeuxClientErrorType, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BayeuxClientError';
    this.type = type;
    this.status = options.status;
  }
}

/** The values of {@link BayeuxClientError.type}. */
export type BayeuxClientErrorType =
  | 'network'
  | 'timeout'
  | 'http'
  | 'protocol'
  | 'too-large'
  | 'no-transport'
  | 'no-reply'
  | 'queue-full'
  | 'disconnected'
  | 'cancelled';

/** An error from anything user code or a server can throw. */
export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Whether `value` is a promise or promise-like (what a user's callback may return). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null
    && typeof (value as { then?: unknown }).then === 'function';
}
