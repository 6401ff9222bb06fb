/**
 * Child process for test/ops-latency-memory.test.ts (run with
 * `--expose-gc`): a server with `metrics()` on (or off with the argument
 * `off`) takes a burst of large publishes with no subscribers, then goes
 * idle. Prints one JSON line: the heap after GC before the burst, right
 * after it, and once it settled (polled a bounded number of times).
 */
import { bayeux } from '../../lib/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');
const collect = gc;

const MIB = 1024 * 1024;
const COUNT = 400;
const SIZE = 512 * 1024;
/** Settled: within this of the baseline. */
const SETTLED = 8 * MIB;

function heap(): number {
  collect();
  collect();
  return process.memoryUsage().heapUsed;
}

const withMetrics = process.argv[2] !== 'off';
const cometd = bayeux({ logLevel: 'error' });
const metrics = withMetrics ? cometd.metrics() : undefined;
await cometd.stats();
for (let i = 0; i < 50; i++) await cometd.publish('/burst/warm', { i });

const baseline = heap();
const filler = 'x'.repeat(SIZE - 32);
for (let i = 0; i < COUNT; i++) await cometd.publish('/burst/big', { i, blob: filler + i });
const afterBurst = heap();

// Idle: nothing is published any more. At most 40 polls of 250 ms.
let settled = heap();
let polls = 0;
for (; polls < 40 && settled - baseline > SETTLED; polls++) {
  await new Promise((resolve) => setTimeout(resolve, 250));
  settled = heap();
}

process.stdout.write(JSON.stringify({ withMetrics, baseline, afterBurst, settled, polls }) + '\n');
metrics?.close();
await cometd.close();
