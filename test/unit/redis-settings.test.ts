/**
 * What the Redis engine's parts read from the engine (lib/engines/redis/settings.ts):
 * log bounds derived from the Server's limits, retention raised by session
 * ttls, and a host whose throws never reach Redis callbacks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveOptions } from '../../lib/engines/redis/options.js';
import { EngineSettings, HostLink } from '../../lib/engines/redis/settings.js';
import type { EngineConfig } from '../../lib/engines/engine.js';

function config(over: Partial<EngineConfig>): EngineConfig {
  return { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 1000, ...over };
}

test('log bounds: the engine options, lowered to the Server\'s queue limits (at least 1 entry, 1 KiB)', () => {
  const settings = new EngineSettings(resolveOptions({ logLength: 5000, maxLogBytes: 1 << 20 }));
  assert.equal(settings.logLength, '5000');
  settings.configure(config({ maxQueue: 200, maxQueueBytes: 4096 }));
  assert.equal(settings.logLength, '200');
  assert.equal(settings.logBytes, '4096');
  assert.deepEqual(settings.queue, { maxQueue: 200, maxQueueBytes: 4096 });
  settings.configure(config({ maxQueue: 0.5, maxQueueBytes: 10 }));
  assert.equal(settings.logLength, '1');
  assert.equal(settings.logBytes, '1024');
  settings.configure(config({}));
  assert.equal(settings.logLength, '5000');
  assert.equal(settings.logBytes, String(1 << 20));
  assert.equal(settings.maxSubscriptions, '');
  settings.configure(config({ maxSubscriptions: 7.9, maxSessionDataBytes: -3 }));
  assert.equal(settings.maxSubscriptions, '7');
  assert.equal(settings.maxSessionDataBytes, '0');
});

test('retention starts at logRetention and only grows, to the longest session ttl', () => {
  const settings = new EngineSettings(resolveOptions({ logRetention: 60_000 }));
  assert.equal(settings.retention, 60_000);
  settings.retain(30_000);
  settings.retain(Infinity);
  settings.retain(Number.NaN);
  assert.equal(settings.retention, 60_000);
  settings.retain(90_000.2);
  assert.equal(settings.retention, 90_001);
});

test('HostLink: nothing before open, then the host; a throwing host is logged, not thrown', () => {
  const logged: string[] = [];
  const link = new HostLink((message) => logged.push(message));
  link.wake(['a']);
  link.expired('a');
  const calls: string[] = [];
  link.host = {
    wake: (ids) => {
      calls.push(`wake ${ids.join(',')}`);
      throw new Error('boom');
    },
    expired: (id) => calls.push(`expired ${id}`),
  };
  link.wake(['a', 'b']);
  link.expired('c');
  assert.deepEqual(calls, ['wake a,b', 'expired c']);
  assert.equal(logged.length, 1);
  assert.match(logged[0] as string, /EngineHost\.wake threw: boom/);
});
