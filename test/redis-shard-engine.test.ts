/** test/engine-redis.test.ts again, with channelLogs: 'shard' (helpers/channel-logs.ts). */
import { onShardLogs } from './helpers/channel-logs.js';

await onShardLogs('./engine-redis.test.js', import.meta.url);
