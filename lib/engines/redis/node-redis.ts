/**
 * node-redis, imported the first time the engine makes a client, not when
 * `express-bayeux/redis` is imported: an app that imports the engine
 * without the optional `redis` peer gets a sentence saying what to install
 * when it opens the engine, not Node's `ERR_MODULE_NOT_FOUND` at start-up.
 */
type NodeRedis = typeof import('redis');

/** What opening the engine says when the 'redis' package cannot be imported. */
export const REDIS_MISSING = "RedisEngine needs the 'redis' package, which is not installed: install the redis package: npm install redis";

let loading: Promise<NodeRedis> | undefined;

/** True when `err` is Node's failure to find the 'redis' package (or one of its own '@redis/*' packages). */
export function isRedisMissing(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return /Cannot find (?:package|module) '(?:redis|@redis\/[^']+)'/.test(err instanceof Error ? err.message : String(err));
}

/** node-redis; rejects with {@link REDIS_MISSING} when it is not installed. */
export function nodeRedis(): Promise<NodeRedis> {
  loading ??= import('redis').catch((err: unknown) => {
    loading = undefined;
    throw isRedisMissing(err) ? new Error(REDIS_MISSING, { cause: err }) : err;
  });
  return loading;
}
