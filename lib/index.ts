export { bayeux, type BayeuxMiddleware, type NextFunction } from './middleware.js';
export { BayeuxError, HttpError } from './errors.js';
export { MemoryEngine } from './engines/memory.js';
export { EngineUnavailableError } from './engines/engine.js';
export type { Engine, EngineConfig, EngineHost, EngineLogger, EngineStats, SessionOptions, TakeResult } from './engines/engine.js';
export type { BayeuxOptions, CorsOptions, SlowConsumerPolicy } from './options.js';
export type { LocalListener, LocalSubscription } from './server/server.js';
export type {
  Advice, Context, Message, Middleware, Next, OutgoingHook, ServerEvents, ServiceHandler, Stats, TransportName,
} from './server/types.js';
export type { AttachOptions, UpgradeMiddleware } from './transports/websocket.js';
export { isValidChannel, matches } from './channel.js';
