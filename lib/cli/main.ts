/**
 * The `express-bayeux` command: `serve`, `sub` and `pub`, each with
 * `--help`. {@link main} takes its arguments and streams so it can run in
 * the bin script or anywhere else; it resolves with the exit code.
 */
import { readFileSync } from 'node:fs';
import { CliFailure, type CliIo, describe, EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError } from './common.js';
import { pub, PUB_USAGE } from './pub.js';
import { serve, SERVE_USAGE } from './serve.js';
import { sub, SUB_USAGE } from './sub.js';

export type { CliIo } from './common.js';

export const USAGE = `Usage: express-bayeux <command> [options]

Commands:
  serve                        run a Bayeux server (Express + WebSocket)
  sub URL CHANNEL...           print each message as a JSON line until interrupted
  pub URL CHANNEL [JSON]       publish JSON (or one message per line of stdin)
  pub --redis URL CHANNEL [JSON]
                               the same, straight into Redis, without a server
  help [COMMAND]               show help for a command

Options:
  -h, --help                   show help (also after a command)
  -v, --version                print the version

Exit codes: 0 ok, 1 failed (cannot connect, refused, cannot start), 2 bad usage.
Run 'express-bayeux <command> --help' for a command's options.
`;

const COMMANDS: Record<string, { run: (args: string[], io: CliIo) => Promise<number>; usage: string }> = {
  serve: { run: serve, usage: SERVE_USAGE },
  sub: { run: sub, usage: SUB_USAGE },
  pub: { run: pub, usage: PUB_USAGE },
};

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Run the command line `args` (without `node` and the script); resolves with the exit code. */
export async function main(args: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = args;
  if (first === undefined || first === '-h' || first === '--help') {
    (first === undefined ? io.stderr : io.stdout).write(USAGE);
    return first === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (first === '-v' || first === '--version') {
    io.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  if (first === 'help') {
    const topic = rest[0];
    const command = topic === undefined ? undefined : Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
    if (topic !== undefined && !command) {
      io.stderr.write(`express-bayeux: unknown command '${topic}'\n\n${USAGE}`);
      return EXIT_USAGE;
    }
    io.stdout.write(command ? command.usage : USAGE);
    return EXIT_OK;
  }
  const command = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!command) {
    io.stderr.write(`express-bayeux: unknown command '${first}'\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`express-bayeux ${first}: ${err.message}\nRun 'express-bayeux ${first} --help' for usage.\n`);
      return EXIT_USAGE;
    }
    if (err instanceof CliFailure) {
      io.stderr.write(`express-bayeux ${first}: ${err.message}\n`);
      return EXIT_FAILED;
    }
    io.stderr.write(`express-bayeux ${first}: ${err instanceof Error ? (err.stack ?? err.message) : describe(err)}\n`);
    return EXIT_FAILED;
  }
}
