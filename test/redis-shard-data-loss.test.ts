/** test/redis-data-loss.test.ts again, with channelLogs: 'shard' (helpers/channel-logs.ts). */
import { onShardLogs } from './helpers/channel-logs.js';

await onShardLogs('./redis-data-loss.test.js', import.meta.url);
