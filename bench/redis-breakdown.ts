/**
 * Where Redis CPU per publish goes on small channels (issue #23): one
 * RedisEngine, C sessions each subscribed to a channel of its own, held
 * here; batches of 10 publishes to distinct channels, round-robin, each
 * batch awaited, every woken session taken as a WebSocket push is
 * (`takeMany`, lazy positions). Prints Redis CPU µs per publish and the
 * commands per publish by name (scripts' inner commands included).
 *
 *   npx tsc -p . && node scripts/copy-lua.mjs && node dist/bench/redis-breakdown.js [--channels=2000] [--publishes=20000] [--position-flush=100] [--url=redis://127.0.0.1:6379]
 */
import { expand } from '../lib/server/expand.js';
import type { EngineHost } from '../lib/engines/engine.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { numberOption, option, runMain } from './common.js';
import { redisCounters as counters } from './redis-publish-cost.js';

async function main(): Promise<void> {
  const url = option('url') ?? 'redis://127.0.0.1:6379';
  const channels = numberOption('channels', 2000, 1, 1_000_000);
  const publishes = numberOption('publishes', 20_000, 10, 10_000_000);
  const positionFlush = numberOption('position-flush', 100, 1, 60_000);
  const woken = new Set<string>();
  const host: EngineHost = { wake: (ids) => ids.forEach((id) => woken.add(id)), expired: () => undefined };
  const engine = new RedisEngine({ url }, { prefix: `bd${Date.now()}:`, positionFlush });
  await engine.open(host, { maxQueue: 1000, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 1000 });
  const ids: string[] = [];
  for (let c = 0; c < channels; c++) {
    const id = await engine.createSession({ ack: false, ttl: 60_000 });
    await engine.subscribe(id, `/c/${c}`);
    ids.push(id);
  }
  const payload = JSON.stringify({ data: 'x'.repeat(64) });
  const before = await counters(url);
  let next = 0;
  for (let sent = 0; sent < publishes; sent += 10) {
    const batch: Array<Promise<number>> = [];
    for (let i = 0; i < 10; i++) batch.push(engine.publish(expand(`/c/${next++ % channels}`), payload, { count: false }));
    await Promise.all(batch);
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (woken.size > 0) {
      const take = [...woken];
      woken.clear();
      await engine.takeMany(take);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await counters(url);
  await engine.close();
  console.log(`${channels} channels x 1, ${publishes} publishes: Redis ${(((after.cpu - before.cpu) * 1e6) / publishes).toFixed(1)} µs/publish`);
  const rows = [...after.byCommand].map(([name, calls]) => [name, (calls - (before.byCommand.get(name) ?? 0)) / publishes] as const).filter(([, n]) => n > 0.001).sort((a, b) => b[1] - a[1]);
  for (const [name, n] of rows) console.log(`  ${name.padEnd(12)} ${n.toFixed(2)} per publish`);
}

runMain(main, 10 * 60_000);
