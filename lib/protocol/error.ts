/**
 * The Bayeux error string, `code:args:message`, and the one error class both
 * the server and the client use for it. Imports nothing: the browser bundle
 * uses this file as it is.
 */

/** What {@link BayeuxError.reply} holds: the reply message a refusal came in. */
export interface BayeuxErrorReply {
  channel: string;
  [field: string]: unknown;
}

/**
 * A Bayeux refusal. On the server, throw one from middleware or a service
 * (`new BayeuxError(403, 'Forbidden', ['/chat'])` travels as
 * `"403:/chat:Forbidden"`); on the client, a refused operation rejects with
 * one parsed from the reply's `error`, or the client refused to send a
 * message the server would refuse (an invalid channel).
 */
export class BayeuxError extends Error {
  override name = 'BayeuxError';
  /** The three-digit code (0 when the error string carried none). */
  readonly code: number;
  /** The arguments, comma-separated on the wire (empty when there are none). */
  readonly args: readonly string[];
  /** Client side: the reply the refusal came in, when there is one. */
  readonly reply: BayeuxErrorReply | undefined;

  constructor(code: number, message: string, args: readonly unknown[] = [], reply?: BayeuxErrorReply) {
    super(message);
    this.code = code;
    this.args = args.map(String);
    this.reply = reply;
  }

  /** The error in wire form: `code:args:message`, args joined with commas. */
  override toString(): string {
    return `${this.code}:${this.args.join(',')}:${this.message}`;
  }

  /**
   * Parse a `code:args:message` string. Anything that does not start with a
   * three-digit code becomes code 0 with the whole text as the message.
   */
  static parse(error: unknown, reply?: BayeuxErrorReply): BayeuxError {
    const text = typeof error === 'string' ? error : '';
    const match = /^(\d{3}):([^:]*):([\s\S]*)$/.exec(text);
    if (!match) return new BayeuxError(0, text || 'Unknown error', [], reply);
    const args = match[2] ? (match[2]).split(',') : [];
    return new BayeuxError(Number(match[1]), match[3] ?? '', args, reply);
  }
}

/**
 * What went wrong, in one line for a log or an error reply: an `Error`'s
 * message (its stack with `stack: true`), anything else as `String()` gives
 * it (user code may throw or reject with anything, `undefined` included).
 */
export function describeError(err: unknown, { stack = false }: { stack?: boolean } = {}): string {
  if (err instanceof Error) return stack ? (err.stack ?? err.message) : err.message;
  return String(err);
}
