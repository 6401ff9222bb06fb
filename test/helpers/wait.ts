/**
 * Waiting in tests: a pause, and a poll until something holds. Every wait
 * here ends; a test never waits without a bound (`within.ts` gives a
 * promise a deadline).
 */

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** How {@link waitFor} polls. */
export interface WaitForOptions {
  /** Give up after this many ms. Default 5000. */
  timeout?: number;
  /** What is awaited, for the error: "timed out after 5000 ms waiting for <what>". Default `'a condition'`. */
  what?: string;
  /** Ms between two checks. Default 10. */
  every?: number;
}

/**
 * Check `predicate` (sync or async) until it is true, every `every` ms;
 * reject after `timeout` ms with an error that names `what`. The predicate
 * is checked once more after the deadline, so a slow check still counts.
 */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: WaitForOptions = {}): Promise<void> {
  const { timeout = 5000, what = 'a condition', every = 10 } = options;
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(every);
  }
}
