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
 * - `http`: the server answered a long-polling request with a non-2xx status
 *   (`status`, and `httpType` when its body said which error).
 * - `protocol`: the server's answer was not Bayeux JSON (`status` is the
 *   HTTP status it came with, on long-polling).
 * - `too-large`: either a response body or WebSocket frame was longer than
 *   `maxResponseBytes` (emitted as `error`; the messages in it are
 *   skipped), or the server refused a message the client sent as too large
 *   (HTTP 413 over long-polling, with `status` 413 and `httpType`
 *   `entity.too.large`; close code 1009 over WebSocket): `publish()` rejects
 *   with it and the session goes on.
 * - `no-transport`: the client and the server share no usable transport.
 * - `no-reply`: the server answered a request without a reply to this message.
 *
 * A handshake answered three times in a row by
 * something that is not a Bayeux server (a 4xx status other than 408 and
 * 429, a body that is not Bayeux JSON, no handshake reply, or no usable
 * transport) stops the client: `connect()`, `subscribe()` and `publish()`
 * reject with the last such error (type `http`, `protocol`, `no-reply` or
 * `no-transport`), its message naming the URL and the status.
 * - `queue-full`: `maxQueue` messages are already waiting to be sent.
 * - `disconnected`: `disconnect()` was called, or the server told the client
 *   not to reconnect, before this message was answered.
 * - `cancelled`: an outgoing extension dropped the message.
 */
export class BayeuxClientError extends Error {
  /** See the class documentation for the values. */
  readonly type: BayeuxClientErrorType;
  /**
   * The HTTP status of the long-polling response: for `type: 'http'`,
   * `'protocol'`, and `'too-large'` when the server refused the request (413).
   */
  readonly status: number | undefined;
  /**
   * The stable `type` of the server's HTTP error body, when it sent one
   * (`{ "error": { "type": … } }`, as this package's server and
   * body-parser do): `entity.too.large`, `batch.too.large`,
   * `entity.parse.failed`, ….
   */
  readonly httpType: string | undefined;

  constructor(type: BayeuxClientErrorType, message: string, options: { status?: number; httpType?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BayeuxClientError';
    this.type = type;
    this.status = options.status;
    this.httpType = options.httpType;
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
