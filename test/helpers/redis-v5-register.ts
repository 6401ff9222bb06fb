/**
 * `node --import ./dist/test/helpers/redis-v5-register.js …`: run anything
 * on node-redis v5 (helpers/redis-v5-hooks.ts). helpers/redis-v5.ts puts
 * it in NODE_OPTIONS, so the node processes a test forks run on v5 too.
 */
import { register } from 'node:module';

register('./redis-v5-hooks.js', import.meta.url);
