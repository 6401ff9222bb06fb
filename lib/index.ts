export { bayeux, type BayeuxMiddleware, type NextFunction } from './middleware.js';
export { BayeuxError, HttpError } from './errors.js';
export { MemoryEngine } from './engines/memory.js';
export { EngineLimitError, EngineUnavailableError } from './engines/engine.js';
export type { Engine, EngineConfig, EngineHost, EngineLogger, EngineNode, EngineStats, SessionOptions, TakeResult } from './engines/engine.js';
export type { BayeuxOptions, CorsOptions, Logger, SlowConsumerPolicy } from './options.js';
export type { LocalListener, LocalMessageInfo, LocalSubscription } from './server/local-client.js';
export type {
  Advice, Context, Message, Middleware, Next, OutgoingHook, PublishOptions, ServerEvents, ServiceHandler, SessionData, Stats, TransportName,
} from './server/types.js';
export type { AttachOptions, UpgradeMiddleware } from './transports/attach.js';
export { isValidChannel, matches } from './channel.js';
export type { AdminHandler, AdminOptions, HealthOptions, MetricsHandler, MetricsOptions, OpsHandler } from './ops/index.js';
