/**
 * Errors: protocol-level refusals (`BayeuxError`, sent back to the client as
 * `successful: false` with a `code:args:message` string) and transport-level
 * failures (`HttpError`, answered with an HTTP status and a stable `type`).
 */

/**
 * A refusal the client sees. `new BayeuxError(403, 'Forbidden', ['/chat'])`
 * travels as `"403:/chat:Forbidden"`.
 */
export class BayeuxError extends Error {
  override name = 'BayeuxError';
  readonly code: number;
  readonly args: readonly string[];

  constructor(code: number, message: string, args: readonly unknown[] = []) {
    super(message);
    this.code = code;
    this.args = args.map(String);
  }

  /** The Bayeux error string: `code:args:message`, args joined with commas. */
  override toString(): string {
    return `${this.code}:${this.args.join(',')}:${this.message}`;
  }

  /** Parse a `code:args:message` string; anything else becomes a 0-coded error. */
  static parse(text: string): BayeuxError {
    const match = /^(\d{3}):([^:]*):([\s\S]*)$/.exec(text);
    if (!match) return new BayeuxError(0, text);
    const args = match[2] ? (match[2] as string).split(',') : [];
    return new BayeuxError(Number(match[1]), match[3] as string, args);
  }
}

/** The protocol errors the Server sends, by name. */
export const ProtocolErrors = {
  badMessage: (why: string) => new BayeuxError(400, why),
  sessionUnknown: () => new BayeuxError(402, 'session_unknown'),
  denied: (why = 'denied') => new BayeuxError(403, why),
  channelInvalid: (channel: unknown) => new BayeuxError(405, 'invalid_channel', [String(channel)]),
  versionUnsupported: (version: unknown) => new BayeuxError(406, 'version_unsupported', [String(version)]),
  transportUnsupported: (types: unknown) => new BayeuxError(406, 'connection_type_unsupported', [String(types)]),
} as const;

/**
 * A transport-level failure: answered as an HTTP error, not a Bayeux reply.
 * `type` is stable and documented (`entity.parse.failed`, `entity.too.large`,
 * `unsupported.media.type`, `jsonp.callback.invalid`, ...).
 */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  readonly type: string;

  constructor(status: number, type: string, message: string) {
    super(message);
    this.status = status;
    this.type = type;
  }
}
