export { bayeux, type BayeuxMiddleware, type NextFunction } from './middleware.js';
export { HttpError } from './errors.js';
export { BayeuxError, type BayeuxErrorReply } from './protocol/error.js';
export { MemoryEngine } from './engines/memory.js';
export { EngineLimitError, EngineUnavailableError, UnknownPublisherError } from './engines/engine.js';
export type {
  Engine, EngineConfig, EngineHost, EngineLogger, EngineNode, EngineStats, PresenceChange, PresenceCount, PresenceEntry, PresenceMember, SessionOptions, SubscribeOptions, TakeResult,
} from './engines/engine.js';
export type {
  HistoryPosition, HistoryPublish, HistoryQuery, HistoryRead, HistorySettings, PublishOptions as EnginePublishOptions, RecoverFrom, RecoverResult,
} from './engines/engine.js';
export type { HistoryMessage, HistoryOptions, HistoryPatternOptions, HistoryResult } from './server/history.js';
export type { Identity, IdentifyFunction, PresenceNoticeEntry, PresenceSnapshot, PresenceUser } from './server/users.js';
export type { MemoryHistoryStats } from './engines/memory-history.js';
export type { BayeuxOptions, CorsOptions, Logger, RateBucket, RateLimitOptions, RateLimitPolicy, SlowConsumerPolicy } from './options.js';
export type {
  BayeuxSocket, CloseOptions, Context, LocalListener, LocalMessageInfo, LocalSubscription, Middleware, Next, OutgoingHook, PublishOptions, ServerEvents, ServiceHandler, SessionData, Stats, TransportName,
} from './server/types.js';
export type { Advice, Message } from './protocol/message.js';
export type { AttachOptions, UpgradeMiddleware } from './transports/attach.js';
export { channelMatches, channelMatches as matches, isValidChannel, isValidPattern } from './protocol/channel.js';
export type { AdminHandler, AdminOptions, HealthOptions, MetricsHandler, MetricsOptions, OpsHandler, PublishHandlerOptions } from './ops/index.js';
