#!/usr/bin/env node
/**
 * The `express-bayeux` executable: runs {@link main} on this process's
 * arguments, streams and signals, and exits with its code.
 */
import { main } from './main.js';
import { describeError } from '../protocol/error.js';

const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

main(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  exit: (code) => process.exit(code),
  onSignal(handler) {
    for (const signal of signals) process.on(signal, handler);
    return () => {
      for (const signal of signals) process.off(signal, handler);
    };
  },
}).then(
  (code) => {
    process.exitCode = code;
    // Whatever is left (a socket closing, a timer) must not keep a finished command alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`express-bayeux: ${describeError(err, { stack: true })}\n`);
    process.exit(1);
  },
);
