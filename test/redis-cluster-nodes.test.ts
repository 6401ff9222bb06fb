/**
 * The multi-process tests (helpers/redis-multiprocess.ts) with two nodes
 * on a real Redis Cluster of three primaries (helpers/redis-cluster.ts),
 * started once for the file, and once more for the test that restarts it.
 */
import { multiProcessSuite } from './helpers/redis-multiprocess.js';
import { startRedisCluster } from './helpers/redis-cluster.js';

await multiProcessSuite(
  'Redis Cluster (3 primaries)',
  async () => {
    const cluster = await startRedisCluster();
    return { nodeOptions: { redisCluster: cluster.urls.join(',') }, stop: () => cluster.stop(), restart: () => cluster.restart() };
  },
  async () => {
    const cluster = await startRedisCluster();
    return { nodeOptions: { redisCluster: cluster.urls.join(',') }, stop: () => Promise.all(cluster.servers.map((s) => s.stop())).then(() => undefined), restart: () => cluster.restart() };
  },
);
