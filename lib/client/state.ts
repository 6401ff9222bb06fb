/**
 * The state machine's vocabulary: where the client is, why it left the
 * `connected` state, and the events that tell. Its own file so that the
 * parts the client is made of (dispatcher, subscriptions, connect loop) can
 * read the state without importing the client.
 */

import type { TransportName } from './message.js';
import type { PresentUser } from './presence.js';
import type { RecoverOutcome } from './subscriptions.js';

/**
 * Where the client is:
 * - `disconnected`: no session (before first use, after `disconnect()`, or
 *   after the server said `reconnect: 'none'`);
 * - `handshaking`: asking the server for a session;
 * - `connected`: a session and a working transport; messages flow;
 * - `reconnecting`: the network failed; retrying with backoff, messages wait;
 * - `disconnecting`: `disconnect()` is sending what was queued and `/meta/disconnect`.
 */
export type ClientState = 'disconnected' | 'handshaking' | 'connected' | 'reconnecting' | 'disconnecting';

/**
 * Why the client left the `connected` state: `client` (`disconnect()` or
 * `reconnect()`), `network` (a request or the socket failed), `session`
 * (the server forgot the session; the client handshakes again by itself),
 * `server` (the server said not to reconnect).
 */
export type DisconnectReason = 'client' | 'network' | 'session' | 'server';

/** The client's events and their listeners' arguments. */
export type BayeuxClientEvents = {
  /** The client has a session and a working transport (after each handshake and each recovery). */
  connected: [info: { clientId: string; transport: TransportName }];
  /** The client left the `connected` state. */
  disconnected: [info: { reason: DisconnectReason; error?: Error }];
  /** Something failed: a refused message, a network failure, a subscriber that threw. */
  error: [error: Error];
  /** The transport in use changed: the first one chosen, a fallback to long-polling, a return to WebSocket. */
  transport: [name: TransportName];
  /**
   * The server answered a subscription's recovery (`subscribe(channel, fn, { recover })`):
   * `recovered: false` means messages were lost and nothing was replayed
   * (reload the channel's state); else `missed` messages are replayed, in
   * order, before newer ones.
   */
  recover: [channel: string, outcome: RecoverOutcome];
  /** Someone joined a channel followed with `subscribe(channel, fn, { presence: true })`: a user's first session, or an anonymous session. */
  join: [channel: string, user: PresentUser];
  /** A user's last session (or an anonymous session) left a channel followed with presence. */
  leave: [channel: string, user: Pick<PresentUser, 'user' | 'session'>];
};
