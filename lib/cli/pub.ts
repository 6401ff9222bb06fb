/**
 * `express-bayeux pub URL CHANNEL [JSON]`: publish one message, or one per
 * line of stdin, and exit non-zero if the server refuses one.
 */
import { createInterface } from 'node:readline';
import { BayeuxError, isValidChannel } from '../client/node.js';
import { CliFailure, type CliIo, clientCommand, connectedClient, deadline, describe, endpoint, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, waitingFor } from './common.js';

export const PUB_USAGE = `Usage: express-bayeux pub URL CHANNEL [JSON] [options]

Publish JSON to a channel. With JSON on the command line, publish it once;
without, publish each non-empty line of stdin (one JSON value per line) in
order. Stops at the first message the server refuses.

Options:
  --transport NAME   websocket or long-polling (default: websocket, falling
                     back to long-polling)
  --timeout MS       how long to wait for the connection, and for the server
                     to accept each message (default 10000)
  -h, --help         show this help

Exit codes: 0 all published, 1 cannot connect, or a message was refused
(too large, say) or not accepted within --timeout, 2 bad usage or a line
that is not JSON.

Examples:
  express-bayeux pub http://127.0.0.1:8080/cometd /chat/demo '{"text":"hi"}'
  tail -F events.ndjson | express-bayeux pub http://127.0.0.1:8080/cometd /events
`;

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
  const command = clientCommand(args, PUB_USAGE, io);
  if (!command) return EXIT_OK;
  const { positionals } = command;
  const [rawUrl, channel, data, ...extra] = positionals;
  const url = endpoint(rawUrl);
  if (channel === undefined) throw new UsageError('missing CHANNEL (for example /chat/demo)');
  if (!isValidChannel(channel) || channel.startsWith('/meta/')) throw new UsageError(`not a channel you can publish to: ${channel}`);
  if (extra.length > 0) throw new UsageError(`one JSON argument at most (quote it): ${extra.join(' ')}`);
  const single = data === undefined ? undefined : { value: json(data, 'the JSON argument') };
  const { transports: selected, timeout } = command;

  const client = await connectedClient(url, selected ? { transports: selected } : {}, timeout);
  // Refusals are reported by publish() below; the last error says what a late publish waits for.
  let lastError: Error | undefined;
  client.on('error', (err) => (lastError = err));
  let close: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (close = resolve));
  const interrupted = new Promise<'interrupted'>((resolve) => {
    const stop = io.onSignal(() => {
      stop();
      resolve('interrupted');
    });
    void closed.then(stop);
  });

  /** Publish one message; a server that has gone away fails it after `timeout` ms rather than never. */
  async function send(value: unknown, where: string): Promise<void> {
    try {
      await deadline(client.publish(channel as string, value), timeout, `${where} not accepted`, () => waitingFor(client, url, lastError));
    } catch (err) {
      if (err instanceof CliFailure) throw err;
      const reason = err instanceof BayeuxError ? `${err.code}:${err.args.join(',')}:${err.message}` : describe(err);
      throw new CliFailure(`${where} refused: ${reason}`);
    }
  }

  try {
    if (single) {
      const done = await Promise.race([send(single.value, 'the message'), interrupted]);
      if (done === 'interrupted') return EXIT_FAILED;
      return EXIT_OK;
    }
    const lines = createInterface({ input: io.stdin, crlfDelay: Infinity });
    let n = 0;
    const reading = (async () => {
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        await send(json(line, `line ${n}`), `line ${n}`);
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
    await client.disconnect().catch(() => undefined);
  }
}
