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
  /** A WebSocket frame with more than `maxBatch` messages (over HTTP it is a 413 `batch.too.large`). */
  tooManyMessages: (max: number) => new BayeuxError(400, 'too_many_messages', [String(max)]),
  /** A subscribe beyond `maxSubscriptions`. */
  subscriptionLimit: (max: number) => new BayeuxError(403, 'subscription_limit', [String(max)]),
  /** A subscribe to a `/meta/*` channel. */
  metaChannel: (pattern: string) => new BayeuxError(403, 'meta_channel', [pattern]),
  /** Per-session data beyond `maxSessionDataBytes`. */
  sessionDataTooLarge: (max: number) => new BayeuxError(413, 'session_data_too_large', [String(max)]),
  /** A session ended by the `slowConsumer` policy. */
  slowConsumer: () => new BayeuxError(408, 'slow_consumer'),
  /** A session ended from the server side (`reason`: `server`, ...), told on its socket. */
  sessionEnded: (reason: string) => new BayeuxError(402, reason),
  /** A `/service/*` handler failed with something other than a `BayeuxError` (logged). */
  serviceFailed: (channel: string) => new BayeuxError(500, 'service_failed', [channel]),
  /** The server could not handle the message (logged); the client may retry. */
  serverError: () => new BayeuxError(500, 'server_error'),
  /** The engine's store is out of reach; the client is told to retry. */
  engineUnavailable: () => new BayeuxError(503, 'engine_unavailable'),
  /** A handshake over `maxHandshakeRate` (`node`) or `handshakeRatePerIp` (`address`); advised to handshake later. */
  handshakeRateLimited: (limit: 'node' | 'address') => new BayeuxError(429, 'handshake_rate_limited', [limit]),
  /** A message over the session's `rateLimit` (`messages` or `bytes`). */
  rateLimited: (limit: 'messages' | 'bytes') => new BayeuxError(429, 'rate_limited', [limit]),
  /** A handshake on a node that is draining (`close({ drain })`); advised to handshake again elsewhere. */
  draining: () => new BayeuxError(503, 'server_draining'),
  /** The server is closing; the client is told to retry. */
  serverClosing: () => new BayeuxError(503, 'server_closing'),
  /** A recovery (`ext.recover` on `/meta/subscribe`) whose `field` is not valid (`recover`, `epoch`, `offset`, `last`). */
  recoverInvalid: (field: string) => new BayeuxError(400, 'recover_invalid', [field]),
  /** A recovery asked for on a wildcard pattern or a list of subscriptions: positions are per channel. */
  recoverNeedsChannel: (subscription: string) => new BayeuxError(400, 'recover_needs_one_channel', [subscription]),
  /** A recovery or `history()` on a channel that matches no pattern of the `history` option. */
  noHistory: (channel: string) => new BayeuxError(404, 'no_history', [channel]),
  /** `ext.presence` on a wildcard pattern or a list of subscriptions: presence is per channel. */
  presenceNeedsChannel: (subscription: string) => new BayeuxError(400, 'presence_needs_one_channel', [subscription]),
  /** `ext.presence`, `presence()` or `presenceCount()` on a channel that matches no pattern of the `presence` option. */
  noPresence: (channel: string) => new BayeuxError(404, 'no_presence', [channel]),
  /** A handshake of a user who already has `maxSessionsPerUser` sessions; advised not to retry. */
  tooManySessions: (max: number) => new BayeuxError(403, 'too_many_sessions', [String(max)]),
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
