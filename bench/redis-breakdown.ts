/**
 * Where Redis CPU per publish goes on small channels (issue #23): one
 * RedisEngine, C channels with N sessions subscribed to each (held here;
 * N = 1: a channel per session); batches of 10 publishes to distinct
 * channels, round-robin, each batch awaited, every woken session taken as
 * a WebSocket push is (`takeMany`, lazy positions). Prints Redis CPU µs
 * per publish and the commands per publish by name (scripts' inner
 * commands included), and how Redis's time splits between the commands
 * and the scripts' own Lua (EVALSHA's time minus the commands it ran:
 * argument conversion, string building, `tonumber`, `string.format`,
 * tables).
 *
 * With `--cluster`, on a throw-away Redis Cluster of three primaries
 * (test/helpers/redis-cluster.ts): CPU and commands are summed over the
 * primaries, and each primary's CPU µs per publish is printed too (the
 * spread). Else on one Redis: `--url`, or without it a throw-away
 * `redis-server` (test/helpers/redis-server.ts).
 *
 * Then, on one Redis only (skipped on a Cluster), for the same shape, what
 * the tick log proposed in lib/engines/redis/DESIGN.md ("Next: the tick
 * log") would cost: one script per tick that appends the tick's publishes
 * as one entry of a shard's stream and announces it once (a prototype
 * script, not the engine's), for ticks of 1 and of 10 publishes, with one
 * node listening on the shard's channel; and, for ticks of 10, the same with
 * one stream entry per publish.
 *
 *   npx tsc -p . && node scripts/copy-lua.mjs && node dist/bench/redis-breakdown.js [--channels=2000] [--per-channel=1] [--publishes=20000] [--position-flush=100] [--channel-logs=pattern|shard] [--count] [--url=redis://… | --cluster]
 *
 * `--count`: each publish asks for its count of recipients, as a
 * server-side `publish` does (a client's publish does not: the default).
 *
 * 500 rooms of 4: `--channels=500 --per-channel=4`.
 */
import { createClient } from 'redis';
import { expand } from '../lib/server/expand.js';
import type { EngineHost } from '../lib/engines/engine.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { numberOption, option, runMain } from './common.js';
import { redisCounters } from './redis-publish-cost.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import { startRedisServer } from '../test/helpers/redis-server.js';

type Counters = Awaited<ReturnType<typeof redisCounters>> & {
  /** Each server's CPU seconds so far, in the order of the URLs. */
  perServer: number[];
};

/** `redisCounters` summed over the servers at `urls` (a Cluster's primaries; or one Redis). */
async function counters(urls: string | readonly string[]): Promise<Counters> {
  const each = await Promise.all((typeof urls === 'string' ? [urls] : urls).map((url) => redisCounters(url)));
  const byCommand = new Map<string, number>();
  const usecByCommand = new Map<string, number>();
  for (const c of each) {
    for (const [name, n] of c.byCommand) byCommand.set(name, (byCommand.get(name) ?? 0) + n);
    for (const [name, n] of c.usecByCommand) usecByCommand.set(name, (usecByCommand.get(name) ?? 0) + n);
  }
  return {
    cpu: each.reduce((sum, c) => sum + c.cpu, 0),
    commands: each.reduce((sum, c) => sum + c.commands, 0),
    byCommand,
    usecByCommand,
    perServer: each.map((c) => c.cpu),
  };
}

async function main(): Promise<void> {
  const channels = numberOption('channels', 2000, 1, 1_000_000);
  const perChannel = numberOption('per-channel', 1, 1, 10_000);
  const publishes = numberOption('publishes', 20_000, 10, 10_000_000);
  const positionFlush = numberOption('position-flush', 100, 1, 60_000);
  const onCluster = option('cluster') !== undefined;
  const channelLogs = option('channel-logs') ?? 'pattern';
  const count = option('count') !== undefined;
  if (channelLogs !== 'pattern' && channelLogs !== 'shard') throw new TypeError('--channel-logs: pattern or shard');
  const given = option('url');
  if (onCluster && given !== undefined) throw new TypeError('give --url or --cluster, not both');
  const cluster = onCluster ? await startRedisCluster() : undefined;
  const server = !onCluster && given === undefined ? await startRedisServer() : undefined;
  try {
    const urls = cluster ? cluster.urls : [given ?? (server as { url: string }).url];
    const url = urls[0] as string;
    const woken = new Set<string>();
    const host: EngineHost = { wake: (ids) => ids.forEach((id) => woken.add(id)), expired: () => undefined };
    const source = cluster ? { cluster: { rootNodes: cluster.rootNodes } } : { url };
    const engine = new RedisEngine(source, { prefix: `bd${Date.now()}:`, positionFlush, channelLogs });
    await engine.open(host, { maxQueue: 1000, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 1000 });
    for (let c = 0; c < channels; c++) {
      for (let s = 0; s < perChannel; s++) {
        const id = await engine.createSession({ ack: false, ttl: 60_000 });
        await engine.subscribe(id, `/c/${c}`);
      }
    }
    const payload = JSON.stringify({ data: 'x'.repeat(64) });
    const before = await counters(urls);
    let next = 0;
    for (let sent = 0; sent < publishes; sent += 10) {
      const batch: Array<Promise<number>> = [];
      for (let i = 0; i < 10; i++) batch.push(engine.publish(expand(`/c/${next++ % channels}`), payload, { count }));
      await Promise.all(batch);
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (woken.size > 0) {
        const take = [...woken];
        woken.clear();
        await engine.takeMany(take);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = await counters(urls);
    await engine.close();
    const where = cluster ? ` on a Cluster of ${urls.length} primaries (summed)` : '';
    console.log(`${channels} channels x ${perChannel}, ${publishes} publishes${where}, channelLogs '${channelLogs}'${count ? ', counted' : ''}: Redis ${(((after.cpu - before.cpu) * 1e6) / publishes).toFixed(1)} µs/publish`);
    if (cluster) {
      const each = after.perServer.map((cpu, i) => (((cpu - (before.perServer[i] as number)) * 1e6) / publishes).toFixed(1));
      console.log(`  per primary: ${each.join(', ')} µs/publish`);
    }
    const rows = [...after.byCommand].map(([name, calls]) => [name, (calls - (before.byCommand.get(name) ?? 0)) / publishes] as const).filter(([, n]) => n > 0.001).sort((a, b) => b[1] - a[1]);
    const usec = (name: string): number => ((after.usecByCommand.get(name) ?? 0) - (before.usecByCommand.get(name) ?? 0)) / publishes;
    for (const [name, n] of rows) console.log(`  ${name.padEnd(12)} ${n.toFixed(2)} per publish, ${usec(name).toFixed(2)} µs`);
    const scripts = usec('evalsha') + usec('eval');
    const commands = rows.filter(([name]) => name !== 'evalsha' && name !== 'eval').reduce((sum, [name]) => sum + usec(name), 0);
    console.log(`  in scripts ${scripts.toFixed(1)} µs per publish: their commands ${commands.toFixed(1)} µs, their own Lua ${(scripts - commands).toFixed(1)} µs`);
    if (cluster) console.log('tick log prototype: skipped on a Cluster (one Redis only)');
    else await tickPrototype(url, channels);
  } finally {
    await cluster?.stop();
    await server?.stop();
  }
}

/** The proposed tick log's publish, as a prototype script: see DESIGN.md "Next: the tick log". */
const TICK_PROTOTYPE = `
local prev = redis.call('GET', KEYS[1] .. ':last') or '0-0'
local id = redis.call('XADD', KEYS[1] .. ':log', 'MAXLEN', '~', ARGV[1], '*', 'p', ARGV[2])
redis.call('SET', KEYS[1] .. ':last', id)
redis.call('PUBLISH', KEYS[1], prev .. ' ' .. id .. ' ' .. ARGV[2])
return { prev, id }`;

/** The same with one stream entry per publish (exact positions without an index inside an entry), for comparison. */
const ENTRY_PER_PUBLISH_PROTOTYPE = `
local prev = redis.call('GET', KEYS[1] .. ':last') or '0-0'
local log = KEYS[1] .. ':log'
local parts = { prev }
local id
for i = 1, #ARGV, 4 do
  id = redis.call('XADD', log, '*', 'c', ARGV[i], 'u', ARGV[i + 1], 'x', ARGV[i + 2], 'm', ARGV[i + 3])
  parts[#parts + 1] = id .. ' ' .. ARGV[i] .. ' ' .. ARGV[i + 1] .. ' ' .. ARGV[i + 2] .. ' ' .. #ARGV[i + 3] .. ' ' .. ARGV[i + 3]
end
redis.call('SET', KEYS[1] .. ':last', id)
redis.call('PUBLISH', KEYS[1], table.concat(parts, ' '))
return id`;

async function tickPrototype(url: string, channels: number): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const sha = String(await client.sendCommand(['SCRIPT', 'LOAD', TICK_PROTOTYPE]));
    const perPublishSha = String(await client.sendCommand(['SCRIPT', 'LOAD', ENTRY_PER_PUBLISH_PROTOTYPE]));
    const base = `tick${Date.now()}:{t0}`;
    // A node on the shard's channel, as every node would be: Redis's cost of delivering each tick's message is counted.
    const listener = client.duplicate();
    listener.on('error', () => undefined);
    await listener.connect();
    await listener.subscribe(base, () => undefined);
    const message = JSON.stringify({ channel: '/c/0', data: { data: 'x'.repeat(64) }, id: '12' });
    for (const perTick of [1, 10]) {
      const ticks = 2000;
      const before = await counters(url);
      for (let t = 0; t < ticks; t++) {
        const packed = Array.from({ length: perTick }, (_, i) => `/c/${(t * perTick + i) % channels} p.${t}.${i} - ${message.length} ${message}`).join(' ');
        await client.sendCommand(['EVALSHA', sha, '1', base, '10000', packed]);
      }
      const after = await counters(url);
      const inScript = ((after.usecByCommand.get('evalsha') ?? 0) - (before.usecByCommand.get('evalsha') ?? 0)) / (ticks * perTick);
      console.log(
        `tick log prototype, ticks of ${perTick} (one script per tick, as the engine's): Redis ${(((after.cpu - before.cpu) * 1e6) / (ticks * perTick)).toFixed(1)} µs/publish, ` +
        `${inScript.toFixed(1)} of them in the script (one node on the shard's channel; no position writes)`,
      );
    }
    {
      const ticks = 2000;
      const before = await counters(url);
      for (let t = 0; t < ticks; t++) {
        const args = Array.from({ length: 10 }, (_, i) => [`/c/${(t * 10 + i) % channels}`, `p.${t}.${i}`, '-', message]).flat();
        await client.sendCommand(['EVALSHA', perPublishSha, '1', base, ...args]);
      }
      const after = await counters(url);
      console.log(
        `the same with one stream entry per publish, ticks of 10: Redis ${(((after.cpu - before.cpu) * 1e6) / (ticks * 10)).toFixed(1)} µs/publish`,
      );
    }
    await listener.close().catch(() => undefined);
    await client.sendCommand(['DEL', base, `${base}:log`, `${base}:last`]);
  } finally {
    await client.close().catch(() => undefined);
  }
}

runMain(main, 10 * 60_000);
