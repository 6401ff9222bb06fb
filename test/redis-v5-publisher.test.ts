/** test/redis-publisher.test.ts again, on node-redis v5 (helpers/redis-v5.ts). */
import { onRedis5 } from './helpers/redis-v5.js';

await onRedis5('./redis-publisher.test.js', import.meta.url);
