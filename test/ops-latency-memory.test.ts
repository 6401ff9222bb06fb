/**
 * What `metrics()` keeps of published messages to time their deliveries:
 * bounded in bytes during a burst, and let go by time once the server is
 * idle. Heap after GC, measured in a child process run with `--expose-gc`
 * (test/helpers/ops-burst.ts); the bounds are generous, the burst is
 * 400 × 512 KiB = 200 MiB.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CHILD = fileURLToPath(new URL('./helpers/ops-burst.js', import.meta.url));
const MIB = 1024 * 1024;

interface Burst {
  withMetrics: boolean;
  baseline: number;
  afterBurst: number;
  settled: number;
  polls: number;
}

function burst(mode: 'on' | 'off'): Promise<Burst> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', CHILD, mode], { timeout: 90_000, maxBuffer: MIB }, (err, stdout, stderr) => {
      if (err) reject(new Error(`burst child failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim()) as Burst);
    });
  });
}

const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`;

test('metrics(): a burst of large publishes is let go once the server is idle', async () => {
  const on = await burst('on');
  const off = await burst('off');
  console.error(`heap after GC over the baseline, metrics on: right after the burst ${mib(on.afterBurst - on.baseline)}, `
    + `settled ${mib(on.settled - on.baseline)} after ${on.polls} polls; metrics off: ${mib(off.afterBurst - off.baseline)}, ${mib(off.settled - off.baseline)}`);
  // Bounded in bytes: at most 16 Mi characters of messages are kept for timing (the burst is 200 MiB).
  assert.ok(on.afterBurst - on.baseline < 48 * MIB, `right after the burst: ${mib(on.afterBurst - on.baseline)} over the baseline`);
  // Released by time: nothing is published any more, and the heap comes back.
  assert.ok(on.settled - on.baseline < 16 * MIB, `idle: ${mib(on.settled - on.baseline)} over the baseline after ${on.polls} polls`);
  assert.ok(off.settled - off.baseline < 16 * MIB, `without metrics: ${mib(off.settled - off.baseline)}`);
});
