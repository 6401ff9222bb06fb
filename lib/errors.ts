/**
 * The server's errors: the protocol refusals it sends, by name (each a
 * `BayeuxError`, from `protocol/error.ts`, which the client shares), and
 * transport-level failures (`HttpError`, answered with an HTTP status and a
 * stable `type`).
 */
import { BayeuxError } from './protocol/error.js';

/** The protocol errors the Server sends, by name. */
export const ProtocolErrors = {
  badMessage: (why: string) => new BayeuxError(400, why),
  sessionUnknown: () => new BayeuxError(402, 'session_unknown'),
  denied: (why = 'denied') => new BayeuxError(403, why),
  channelInvalid: (channel: unknown) => new BayeuxError(405, 'invalid_channel', [String(channel)]),
  versionUnsupported: (version: unknown) => new BayeuxError(406, 'version_unsupported', [String(version)]),
  transportUnsupported: (types: unknown) => new BayeuxError(406, 'connection_type_unsupported', [String(types)]),
  /** A message over `maxMessageBytes`: queued for no one. */
  messageTooLarge: (max: number) => new BayeuxError(413, 'message_too_large', [String(max)]),
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
