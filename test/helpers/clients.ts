/**
 * BayeuxClients for tests: fast retries, and everything made is cleaned up
 * (in reverse order) when the test file ends.
 */
import { after } from 'node:test';
import { BayeuxClient, type BayeuxClientOptions } from '../../lib/client/node.js';

/** Retry quickly, so a test that cuts connections does not wait seconds. */
export const FAST: BayeuxClientOptions = { retryDelay: 20, maxRetryDelay: 200, maxNetworkDelay: 3000 };

/**
 * Call once at the top of a test file. `cleanup(fn)` runs `fn` when the
 * file ends; `client(url, options)` is a BayeuxClient with FAST retries
 * that is disconnected then.
 */
export function testClients(): {
  cleanup(...fns: Array<() => unknown>): void;
  client(url: string, options?: BayeuxClientOptions): BayeuxClient;
} {
  const cleanups: Array<() => unknown> = [];
  after(async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => undefined);
  });
  return {
    cleanup(...fns) {
      cleanups.push(...fns);
    },
    client(url, options = {}) {
      const c = new BayeuxClient(url, { ...FAST, ...options });
      cleanups.push(() => c.disconnect());
      return c;
    },
  };
}
