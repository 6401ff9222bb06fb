/**
 * `express-bayeux/redis` for TypeScript setups that resolve types through
 * `typesVersions` (`moduleResolution: node`, which ignores `exports`):
 * package.json maps `redis` to this file's declarations. Keep it while
 * that mapping exists; the engine itself lives in `./redis/`.
 */
export * from './redis/index.js';
