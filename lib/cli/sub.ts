/**
 * `express-bayeux sub URL CHANNEL…`: print each message as one JSON line
 * (`{"channel":…,"data":…}`) until interrupted.
 */
import { isValidPattern } from '../client/node.js';
import { CliFailure, type CliIo, clientCommand, connectedClient, deadline, describe, endpoint, EXIT_FAILED, EXIT_OK, UsageError, waitingFor } from './common.js';

export const SUB_USAGE = `Usage: express-bayeux sub URL CHANNEL... [options]

Subscribe to one or more channels or patterns (/chat/*, /chat/**) and
print each message as one JSON line, {"channel":...,"data":...}, until
interrupted (Ctrl-C or SIGTERM: exit 0).

Options:
  --transport NAME   websocket or long-polling (default: websocket, falling
                     back to long-polling)
  --timeout MS       how long to wait for the first connection, and for the
                     server to accept each subscription (default 10000)
  --max-response-bytes N
                     largest response or WebSocket frame read; a message
                     in a longer one is skipped and reported on stderr
                     (default 16777216, 16 MiB; at least 1024)
  -h, --help         show this help

Exit codes: 0 interrupted, 1 cannot connect or subscribe (refused, or not
accepted within --timeout), or the server ended the session for good,
2 bad usage.

Example:
  express-bayeux sub http://127.0.0.1:8080/cometd '/chat/**' | jq .data
`;

/** Run `sub`; resolves with the exit code. */
export async function sub(args: string[], io: CliIo): Promise<number> {
  const command = clientCommand(args, SUB_USAGE, io, true);
  if (!command) return EXIT_OK;
  const { positionals } = command;
  const [rawUrl, ...channels] = positionals;
  const url = endpoint(rawUrl);
  if (channels.length === 0) throw new UsageError('missing CHANNEL (for example /chat/demo or /chat/**)');
  for (const channel of channels) {
    if (!isValidPattern(channel) || channel.startsWith('/meta/')) throw new UsageError(`not a channel you can subscribe to: ${channel}`);
  }
  const { transports: selected, timeout, maxResponseBytes } = command;

  const client = await connectedClient(url, {
    ...(selected ? { transports: selected } : {}),
    ...(maxResponseBytes === undefined ? {} : { maxResponseBytes }),
  }, timeout);
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (finish = resolve));
  let lastError: Error | undefined;
  client.on('error', (err) => {
    lastError = err;
    io.stderr.write(`sub: ${describe(err)}\n`);
  });
  client.on('disconnected', ({ reason }) => {
    if (reason === 'server') {
      io.stderr.write('sub: the server ended the session and asked not to reconnect\n');
      finish(EXIT_FAILED);
    } else if (reason === 'network') {
      io.stderr.write('sub: connection lost, reconnecting\n');
    }
  });
  client.on('connected', () => io.stderr.write('sub: connected\n'));
  const stopSignals = io.onSignal(() => finish(EXIT_OK));
  try {
    for (const channel of channels) {
      const subscribed = client.subscribe(channel, (data, message) => {
        io.stdout.write(JSON.stringify({ channel: message.channel, data }) + '\n');
      });
      await deadline(subscribed, timeout, `subscription to ${channel} not accepted`, () => waitingFor(client, url, lastError));
    }
  } catch (err) {
    stopSignals();
    await client.disconnect().catch(() => undefined);
    io.stderr.write(err instanceof CliFailure ? `sub: ${err.message}\n` : `sub: subscribe refused: ${describe(err)}\n`);
    return EXIT_FAILED;
  }
  io.stderr.write(`sub: subscribed to ${channels.join(' ')}\n`);
  const code = await finished;
  stopSignals();
  await client.disconnect().catch(() => undefined);
  return code;
}
