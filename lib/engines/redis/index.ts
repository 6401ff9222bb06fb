/**
 * `express-bayeux/redis`: the Redis engine. Publish once, fan out on the
 * nodes; any node serves any session; runs on one Redis or Redis Cluster.
 * `RedisPublisher` publishes from processes that run no server.
 */
export { RedisEngine } from './engine.js';
export { RedisPublisher, type RedisPublisherOptions, type RedisPublishOptions } from './redis-publisher.js';
export { redactUrl } from './redact.js';
export type { ChannelLogs, RedisClientLike, RedisClusterLike, RedisEngineOptions, RedisEngineSource } from './options.js';
export { EngineUnavailableError, EngineLimitError } from '../engine.js';
export type { EngineLogger } from '../engine.js';
