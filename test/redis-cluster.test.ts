/** The multi-process tests (helpers/redis-multiprocess.ts) with two nodes on one `redis-server`. */
import { multiProcessSuite } from './helpers/redis-multiprocess.js';
import { startRedisServer } from './helpers/redis-server.js';

await multiProcessSuite(
  'Redis cluster',
  async () => {
    const server = await startRedisServer();
    return { nodeOptions: { redisUrl: server.url }, stop: () => server.stop(), restart: () => server.restart() };
  },
  async () => {
    const server = await startRedisServer();
    return { nodeOptions: { redisUrl: server.url }, stop: () => server.stop(), restart: () => server.restart() };
  },
);
