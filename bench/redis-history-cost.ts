/**
 * What channel history costs Redis per publish (issue #20): Redis CPU per
 * publish and one node's publish throughput with history on against off,
 * at 1 and 500 subscribers, on a
 * throw-away `redis-server` (redis-publish-cost.ts measures). Prints the
 * ratios docs/history.md quotes.
 *
 *   npm run build && node dist/bench/redis-history-cost.js [--publishes=N] [--rounds=N]
 */
import { findRedisServer, startRedisServer } from '../test/helpers/redis-server.js';
import { measurePublishCost } from './redis-publish-cost.js';

function flag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const n = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`--${name} must be a positive integer`);
  return n;
}

if (!findRedisServer()) {
  console.error('redis-history-cost: redis-server not found on PATH');
  process.exit(1);
}
const publishes = flag('publishes', 5000);
const rounds = flag('rounds', 3);
const redis = await startRedisServer();
try {
  let run = 0;
  for (const subscribers of [1, 500]) {
    // Alternate off and on, and keep each one's best round: the machine is shared.
    let off = Infinity;
    let on = Infinity;
    let commandsOff = 0;
    let commandsOn = 0;
    let rateOff = 0;
    let rateOn = 0;
    for (let round = 0; round < rounds; round++) {
      const a = await measurePublishCost(redis.url, subscribers, publishes, `hc-${++run}:`);
      const b = await measurePublishCost(redis.url, subscribers, publishes, `hc-${++run}:`, { size: 100, ttl: 300_000 });
      if (a.redisCpuUsPerPublish < off) [off, commandsOff] = [a.redisCpuUsPerPublish, a.commandsPerPublish];
      if (b.redisCpuUsPerPublish < on) [on, commandsOn] = [b.redisCpuUsPerPublish, b.commandsPerPublish];
      rateOff = Math.max(rateOff, a.publishesPerSec);
      rateOn = Math.max(rateOn, b.publishesPerSec);
    }
    console.log(`${subscribers} subscriber(s): Redis CPU per publish ${off.toFixed(1)} µs without history, ${on.toFixed(1)} µs with ` +
      `(${(on / off).toFixed(2)}×); commands per publish ${commandsOff.toFixed(1)} → ${commandsOn.toFixed(1)}; ` +
      `publishes/s ${rateOff.toFixed(0)} → ${rateOn.toFixed(0)} (${(rateOn / rateOff).toFixed(2)}×)`);
  }
} finally {
  await redis.stop();
}
