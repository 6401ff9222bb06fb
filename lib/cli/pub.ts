/**
 * `express-bayeux pub URL CHANNEL [JSON]`: publish one message, or one per
 * line of stdin, and exit non-zero if the server refuses one. With
 * `--redis URL` (and no server URL), publish straight into Redis with
 * `RedisPublisher`, as a node's `cometd.publish` would.
 */
import { createInterface } from 'node:readline';
import { BayeuxError, isValidChannel, type TransportName } from '../client/node.js';
import { isRedisMissing } from '../engines/redis/node-redis.js';
import { redactUrl } from '../engines/redis/redact.js';
import {
  CliFailure, type CliIo, clientCommand, connectedClient, deadline, describe, endpoint, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, waitingFor,
} from './common.js';

export const PUB_USAGE = `Usage: express-bayeux pub URL CHANNEL [JSON] [options]
       express-bayeux pub --redis REDIS_URL CHANNEL [JSON] [options]

Publish JSON to a channel. With JSON on the command line, publish it once;
without, publish each non-empty line of stdin (one JSON value per line) in
order. Stops at the first message the server refuses.

With --redis, no server is needed: the message is written into the Redis
the nodes share (RedisEngine), and every node delivers it to its
subscribers. Needs the 'redis' package (npm install redis).

Options:
  --transport NAME   websocket or long-polling (default: websocket, falling
                     back to long-polling)
  --timeout MS       how long to wait for the connection, and for the server
                     (or Redis) to accept each message (default 10000)
  --redis URL        publish through Redis (redis:// or rediss://) instead
                     of a server
  --prefix PREFIX    with --redis: the nodes' RedisEngine key prefix
                     (default bayeux:)
  -h, --help         show this help

Exit codes: 0 all published, 1 cannot connect, or a message was refused
(too large, say) or not accepted within --timeout, 2 bad usage or a line
that is not JSON.

Examples:
  express-bayeux pub http://127.0.0.1:8080/cometd /chat/demo '{"text":"hi"}'
  tail -F events.ndjson | express-bayeux pub http://127.0.0.1:8080/cometd /events
  express-bayeux pub --redis redis://127.0.0.1:6379 /jobs/done '{"id":42}'
`;

/** What publishes: a connected client, or a RedisPublisher. */
interface Sink {
  /** Publish one message; rejects with a {@link CliFailure} saying why it was not. */
  send(value: unknown, where: string): Promise<void>;
  close(): Promise<void>;
}

/** What `pub` says when the 'redis' package cannot be imported. */
const REDIS_MISSING = "--redis: the 'redis' package is not installed; install the redis package: npm install redis";

/** Parse one JSON value, or throw a {@link UsageError} saying where. */
function json(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${where} is not JSON: ${describe(err)}`);
  }
}

/** Run `pub`; resolves with the exit code. */
export async function pub(args: string[], io: CliIo): Promise<number> {
  const command = clientCommand(args, PUB_USAGE, io, false, true);
  if (!command) return EXIT_OK;
  const { positionals, redis, timeout } = command;
  if (redis === undefined && command.prefix !== undefined) throw new UsageError('--prefix goes with --redis');
  if (redis !== undefined && command.transports) throw new UsageError('--transport does not go with --redis (no server is involved)');
  const [rawUrl, channel, data, ...extra] = redis === undefined ? positionals : [undefined, ...positionals];
  const url = redis === undefined ? endpoint(rawUrl) : redisUrl(redis);
  if (channel === undefined) throw new UsageError('missing CHANNEL (for example /chat/demo)');
  if (!isValidChannel(channel) || channel.startsWith('/meta/') || (redis !== undefined && isServiceChannel(channel))) {
    throw new UsageError(`not a channel you can publish to: ${channel}`);
  }
  if (extra.length > 0) throw new UsageError(`one JSON argument at most (quote it): ${extra.join(' ')}`);
  const single = data === undefined ? undefined : { value: json(data, 'the JSON argument') };

  const sink = redis === undefined
    ? await clientSink(url, channel, command.transports, timeout)
    : await redisSink(url, channel, command.prefix, timeout);
  let close: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (close = resolve));
  const interrupted = new Promise<'interrupted'>((resolve) => {
    const stop = io.onSignal(() => {
      stop();
      resolve('interrupted');
    });
    void closed.then(stop);
  });

  try {
    if (single) {
      const done = await Promise.race([sink.send(single.value, 'the message'), interrupted]);
      if (done === 'interrupted') return EXIT_FAILED;
      return EXIT_OK;
    }
    const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
    let n = 0;
    const reading = (async () => {
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        await sink.send(json(line, `line ${n}`), `line ${n}`);
      }
    })();
    const done = await Promise.race([reading.then(() => 'read' as const), interrupted]);
    lines.close();
    return done === 'interrupted' ? EXIT_FAILED : EXIT_OK;
  } catch (err) {
    io.stderr.write(`pub: ${describe(err)}\n`);
    return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  } finally {
    close();
    await sink.close().catch(() => undefined);
  }
}

/** Publishing through a server: a connected client. */
async function clientSink(url: string, channel: string, transports: TransportName[] | undefined, timeout: number): Promise<Sink> {
  const client = await connectedClient(url, transports ? { transports } : {}, timeout);
  // Refusals are reported by publish() below; the last error says what a late publish waits for.
  let lastError: Error | undefined;
  client.on('error', (err) => (lastError = err));
  return {
    /** A server that has gone away fails it after `timeout` ms rather than never. */
    async send(value, where) {
      try {
        await deadline(client.publish(channel, value), timeout, `${where} not accepted`, () => waitingFor(client, url, lastError));
      } catch (err) {
        if (err instanceof CliFailure) throw err;
        const reason = err instanceof BayeuxError ? `${err.code}:${err.args.join(',')}:${err.message}` : describe(err);
        throw new CliFailure(`${where} refused: ${reason}`);
      }
    },
    close: () => client.disconnect(),
  };
}

/** Publishing straight into Redis: a RedisPublisher, with `timeout` for the connection and each command. */
async function redisSink(url: string, channel: string, prefix: string | undefined, timeout: number): Promise<Sink> {
  let RedisPublisher: typeof import('../engines/redis/redis-publisher.js').RedisPublisher;
  try {
    // RedisPublisher imports it only when it connects: say it now.
    await import('redis');
    ({ RedisPublisher } = await import('../engines/redis/redis-publisher.js'));
  } catch (err) {
    if (isRedisMissing(err)) throw new CliFailure(REDIS_MISSING);
    throw err;
  }
  let publisher: InstanceType<typeof RedisPublisher>;
  try {
    publisher = new RedisPublisher({ url }, { prefix, openTimeout: timeout, commandTimeout: timeout, logger: { warn: () => undefined } });
  } catch (err) {
    throw new UsageError(describe(err));
  }
  return {
    async send(value, where) {
      try {
        await deadline(publisher.publish(channel, value), timeout + 1000, `${where} not accepted`, () => `no answer from ${redactUrl(url)}`);
      } catch (err) {
        if (err instanceof CliFailure) throw err;
        if (err instanceof BayeuxError) throw new CliFailure(`${where} refused: ${err.code}:${err.args.join(',')}:${err.message}`);
        throw new CliFailure(`${where} not published: ${describe(err)}`);
      }
    },
    close: () => publisher.close(),
  };
}

/** Check a Redis URL given with --redis. */
function redisUrl(value: string): string {
  let protocol = '';
  try {
    protocol = new URL(value).protocol;
  } catch {
    // reported below
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new UsageError('--redis must be a redis:// or rediss:// URL');
  return value;
}

function isServiceChannel(channel: string): boolean {
  return channel === '/service' || channel.startsWith('/service/');
}
