/**
 * `express-bayeux/client`: a Bayeux 1.0 client for browsers and Node.
 *
 * This is the browser entry: it imports nothing from Node and nothing
 * outside this folder but the wire vocabulary it shares with the server
 * (`lib/protocol`), and uses the global `fetch` and `WebSocket`. It loads
 * in a browser as an ES module straight from the build, with no bundler.
 *
 * ```ts
 * import { BayeuxClient } from 'express-bayeux/client';
 * const client = new BayeuxClient('http://127.0.0.1:8080/cometd');
 * const sub = await client.subscribe('/chat/demo', (data) => console.log(data));
 * await client.publish('/chat/demo', { user: 'me', chat: 'hi' });
 * await sub.unsubscribe();
 * await client.disconnect();
 * ```
 */

export { BayeuxClient } from './client.js';
export type { BayeuxClientEvents, ClientState, DisconnectReason } from './state.js';
export type {
  ChannelListener, HistoryPosition, MessageHandler, RecoverOption, RecoverOutcome, SubscribeOptions, Subscription,
} from './subscriptions.js';
export type { PresentUser } from './presence.js';
export { BayeuxError, BayeuxClientError } from './errors.js';
export type { BayeuxClientErrorType, BayeuxErrorReply } from './errors.js';
export type { Advice, BayeuxExtension, BayeuxMessage, ExtensionResult, TransportName } from './message.js';
export type { BayeuxClientOptions } from './options.js';
export type { ClientLogger } from './logger.js';
export type { FetchFunction } from './long-polling.js';
export type { WebSocketConstructor, WebSocketLike, WebSocketEventLike } from './websocket.js';
export { channelMatches, isValidChannel, isValidPattern } from '../protocol/channel.js';
