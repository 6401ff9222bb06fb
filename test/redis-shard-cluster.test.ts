/** test/redis-cluster.test.ts again, with channelLogs: 'shard' (helpers/channel-logs.ts). */
import { onShardLogs } from './helpers/channel-logs.js';

await onShardLogs('./redis-cluster.test.js', import.meta.url);
