/** test/redis-presence.test.ts again, with channelLogs: 'shard' (helpers/channel-logs.ts). */
import { onShardLogs } from './helpers/channel-logs.js';

await onShardLogs('./redis-presence.test.js', import.meta.url);
