/**
 * Errors the client rejects with. Self-contained: the browser entry imports
 * nothing outside `lib/client`.
 */

/**
 * A Bayeux error: the server refused a message (`successful: false`), or the
 * client refused to send a message the server would refuse (an invalid
 * channel). Built from the protocol's `"code:args:message"` string, where
 * `args` is comma-separated: `"403:/chat/x:Forbidden"` has code 403, args
 * `['/chat/x']` and message `'Forbidden'`.
 */
export class BayeuxError extends Error {
  /** The three-digit code (0 when the error string carried none). */
  readonly code: number;
  /** The arguments from the error string (empty when there were none). */
  readonly args: string[];
  /** The failed message as the server answered it, when there is one. */
  readonly reply: BayeuxErrorReply | undefined;

  constructor(code: number, message: string, args: readonly string[] = [], reply?: BayeuxErrorReply) {
    super(message);
    this.name = 'BayeuxError';
    this.code = code;
    this.args = [...args];
    this.reply = reply;
  }

  /** The error in wire form, `"code:args:message"`. */
  override toString(): string {
    return `${this.code}:${this.args.join(',')}:${this.message}`;
  }

  /**
   * Parse a `"code:args:message"` string. Anything that does not start with
   * a three-digit code becomes code 0 with the whole string as the message.
   */
  static parse(error: unknown, reply?: BayeuxErrorReply): BayeuxError {
    const text = typeof error === 'string' ? error : '';
    const match = /^(\d{3}):([^:]*):([\s\S]*)$/.exec(text);
    if (!match) return new BayeuxError(0, text || 'Unknown error', [], reply);
    const args = match[2] ? match[2].split(',') : [];
    return new BayeuxError(Number(match[1]), match[3] ?? '', args, reply);
  }
}

/** What {@link BayeuxError.reply} holds: the server's reply message. */
export interface BayeuxErrorReply {
  channel: string;
  [field: string]: unknown;
}

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
