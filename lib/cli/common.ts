/**
 * What every command shares: its input and output streams, exit codes,
 * argument parsing on `node:util` `parseArgs`, and the client connection
 * used by `sub` and `pub`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import { BayeuxClient, type BayeuxClientOptions, type TransportName } from '../client/node.js';
import { withDeadline } from '../util/deadline.js';

/** Exit codes: 0 done, 1 failed (unreachable, refused), 2 bad usage or input. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Where a command reads and writes, and the signals it stops on (the process, in the bin). */
export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Call `handler` on SIGINT and SIGTERM; returns a function that removes it. */
  onSignal(handler: (signal: NodeJS.Signals) => void): () => void;
  env: NodeJS.ProcessEnv;
  /** End the process now (a second signal during shutdown). */
  exit(code: number): void;
}

/** A mistake in the command line or the input: printed with a hint, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A failure to report in one line, exit code 1. */
export class CliFailure extends Error {
  override name = 'CliFailure';
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** `parseArgs`, strict, with its errors turned into a {@link UsageError}. */
export function parse<T extends Options>(args: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: true }>> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** What `sub` and `pub` share on their command line. */
export interface ClientCommand {
  positionals: string[];
  transports: TransportName[] | undefined;
  /** ms to wait for the first connection, and for each message or subscription to be accepted. */
  timeout: number;
  /** `--max-response-bytes` (the client's `maxResponseBytes`), when the command takes it and it was given. */
  maxResponseBytes: number | undefined;
  /** `--redis URL` and `--prefix`, when the command takes them (`pub`) and they were given. */
  redis: string | undefined;
  prefix: string | undefined;
}

/**
 * Parse a client command (`--transport`, `--timeout`, `--help`, and
 * `--max-response-bytes` when `receives`, `--redis` and `--prefix` when
 * `publishes`). With `--help`, prints `usage` and returns undefined: the
 * command exits 0.
 */
export function clientCommand(args: string[], usage: string, io: CliIo, receives = false, publishes = false): ClientCommand | undefined {
  const { values, positionals } = parse(args, {
    transport: { type: 'string' },
    timeout: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
    ...(receives ? { 'max-response-bytes': { type: 'string' } } : {}),
    ...(publishes ? { redis: { type: 'string' }, prefix: { type: 'string' } } : {}),
  } as const);
  if (values.help) {
    io.stdout.write(usage);
    return undefined;
  }
  const maxResponseBytes = values['max-response-bytes'];
  return {
    positionals,
    transports: transports(values.transport),
    timeout: positive(values.timeout, 'timeout', 10_000),
    maxResponseBytes: typeof maxResponseBytes === 'string' ? atLeast(maxResponseBytes, 'max-response-bytes', 1024) : undefined,
    redis: typeof values.redis === 'string' ? values.redis : undefined,
    prefix: typeof values.prefix === 'string' ? values.prefix : undefined,
  };
}

/** An integer option of at least `min`. */
function atLeast(value: string, name: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > 2_147_483_647) throw new UsageError(`--${name} must be an integer from ${min} to 2147483647, got ${value}`);
  return n;
}

/** Check a Bayeux endpoint URL given on the command line. */
export function endpoint(value: string | undefined): string {
  if (value === undefined) throw new UsageError('missing URL (for example http://127.0.0.1:8080/cometd)');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`not a URL: ${value}`);
  }
  if (!['http:', 'https:'].includes(url.protocol)) throw new UsageError(`the URL must be http:// or https://, not ${url.protocol}//`);
  return url.href;
}

/** A positive integer option. */
export function positive(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${value}`);
  return n;
}

/** The `--transport` option of `sub` and `pub`. */
export function transports(value: string | undefined): TransportName[] | undefined {
  if (value === undefined) return undefined;
  if (value !== 'websocket' && value !== 'long-polling') throw new UsageError(`--transport must be websocket or long-polling, got ${value}`);
  return [value];
}

/** The message of an error, with its Bayeux error string when it has one. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * What `promise` gives, or a {@link CliFailure} after `ms` ms saying
 * `what` was not done in time and, from `why()`, what it was waiting for.
 * `promise` is left running; a rejection after the deadline is ignored.
 */
export function deadline<T>(promise: Promise<T>, ms: number, what: string, why: () => string): Promise<T> {
  return withDeadline(promise, ms, () => new CliFailure(`${what} within ${ms} ms: ${why()}`), { unref: false });
}

/**
 * What a client is waiting for, for a {@link deadline} message: the server's
 * answer, or a connection lost and not made again (with the last error).
 */
export function waitingFor(client: BayeuxClient, url: string, lastError: Error | undefined): string {
  const last = lastError ? `; last error: ${describe(lastError)}` : '';
  switch (client.state) {
    case 'connected':
      return `no answer from ${url}${last}`;
    case 'reconnecting':
      return `the connection to ${url} was lost and is not back${last}`;
    case 'handshaking':
      return `the session with ${url} was lost and no new one was made${last}`;
    default:
      return `the client is ${client.state}${last}`;
  }
}

/**
 * A client that is connected: resolves once the handshake succeeded, and
 * rejects with a {@link CliFailure} on the first failure before that (the
 * server cannot be reached, refuses the handshake) or after `timeout` ms,
 * rather than retrying for ever as a long-lived client would.
 */
export async function connectedClient(url: string, options: BayeuxClientOptions, timeout: number): Promise<BayeuxClient> {
  const client = new BayeuxClient(url, options);
  let failed: (err: Error) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (failed = reject));
  const onError = (err: Error): void => failed(new CliFailure(`cannot connect to ${url}: ${describe(err)}`));
  client.on('error', onError);
  const timer = setTimeout(() => failed(new CliFailure(`cannot connect to ${url}: no answer within ${timeout} ms`)), timeout);
  try {
    await Promise.race([client.connect(), failure]);
    return client;
  } catch (err) {
    await client.disconnect().catch(() => undefined);
    throw err instanceof CliFailure ? err : new CliFailure(`cannot connect to ${url}: ${describe(err)}`);
  } finally {
    clearTimeout(timer);
    client.off('error', onError);
  }
}
