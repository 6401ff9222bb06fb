/** test/redis-positions.test.ts again, with channelLogs: 'shard' (helpers/channel-logs.ts). */
import { onShardLogs } from './helpers/channel-logs.js';

await onShardLogs('./redis-positions.test.js', import.meta.url);
