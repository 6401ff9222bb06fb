/** test/redis-rooms.test.ts again, with channelLogs: 'shard' (helpers/channel-logs.ts). */
import { onShardLogs } from './helpers/channel-logs.js';

await onShardLogs('./redis-rooms.test.js', import.meta.url);
