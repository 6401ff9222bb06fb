/**
 * A queue worker, in a process of its own, that publishes with
 * `RedisPublisher` and runs no server. Used by test/redis-publisher.test.ts
 * (through helpers/cli-run.ts `runNode`):
 *
 *   node dist/test/helpers/publisher-worker.js --redis=URL --prefix=P --channel=/c --count=N
 *
 * Flags (all `--name=value`): `--redis=URL` or `--cluster=URL,URL,...`,
 * `--prefix`, `--channel`, `--count` (publishes 1..N, issued one after the
 * other without waiting, then awaited together). Prints `PUBLISHED <json
 * array of recipient counts>` and exits 0, or prints the error and exits 1.
 * Its `channelLogs` is the test run's (helpers/channel-logs.ts, through the
 * environment), printed first as `CHANNEL_LOGS <layout>`.
 */
import { RedisPublisher } from '../../lib/engines/redis/index.js';
import { channelLogsMode, testChannelLogs } from './channel-logs.js';

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const url = flag('redis');
const cluster = flag('cluster');
const channel = flag('channel') ?? '/worker';
const count = Number(flag('count') ?? '1');
const publisher = new RedisPublisher(
  cluster ? { cluster: { rootNodes: cluster.split(',').map((u) => ({ url: u })) } } : { url: url ?? '' },
  { prefix: flag('prefix') ?? 'bayeux:', commandTimeout: 3000, ...testChannelLogs() },
);
console.log(`CHANNEL_LOGS ${channelLogsMode()}`);
// Never outlive the test.
setTimeout(() => process.exit(3), 30_000).unref();
try {
  const sent: Promise<number>[] = [];
  for (let i = 1; i <= count; i++) sent.push(publisher.publish(channel, i));
  const recipients = await Promise.all(sent);
  console.log(`PUBLISHED ${JSON.stringify(recipients)}`);
  await publisher.close();
} catch (err) {
  console.error(`worker failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  await publisher.close();
  process.exitCode = 1;
}
