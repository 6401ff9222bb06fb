/** Kept for imports of the old path: the engine lives in `./redis/`. */
export * from './redis/index.js';
