import { test } from 'node:test';
import assert from 'node:assert/strict';
import winston from 'winston';
import { resolveOptions } from '../lib/options.js';
import { MemoryEngine } from '../lib/engines/memory.js';
import { bayeux } from '../lib/index.js';

test('defaults match the documentation', () => {
  const o = resolveOptions({});
  assert.equal(o.timeout, 30_000);
  assert.equal(o.interval, 0);
  assert.equal(o.maxInterval, 10_000);
  assert.ok(o.engine instanceof MemoryEngine);
  assert.equal(o.anonymousPublish, false);
  assert.equal(o.maxConnectionsPerIp, 0);
  assert.equal(o.maxBodyBytes, 1_048_576);
  assert.equal(o.maxBatch, 1000);
  assert.equal(o.maxQueue, 10_000);
  assert.equal(o.slowConsumer, 'drop-oldest');
  assert.equal(o.cors, false);
  assert.equal(o.ack, true);
  assert.equal(o.jsonp, true);
  assert.equal((o.logger as winston.Logger).level, 'warn');
  assert.equal(o.wsPerMessageDeflate, false);
  assert.equal(o.maxMessageBytes, 1_048_576);
  assert.equal(o.upgradeTimeout, 10_000);
  assert.equal(o.maxHandshakeRate, 2000);
  assert.equal(o.handshakeRatePerIp, 0);
  assert.equal(o.rateLimit, undefined);
  assert.equal(o.rateLimitPolicy, 'refuse');
});

test('maxMessageBytes follows maxBodyBytes unless set', () => {
  assert.equal(resolveOptions({ maxBodyBytes: 4096 }).maxMessageBytes, 4096);
  assert.equal(resolveOptions({ maxBodyBytes: 4096, maxMessageBytes: 65_536 }).maxMessageBytes, 65_536);
  assert.equal(resolveOptions({ maxMessageBytes: 100 }).maxBodyBytes, 1_048_576);
});

test('an unknown option throws a TypeError naming it', () => {
  assert.throws(() => bayeux({ timeuot: 5 } as never), { name: 'TypeError', message: /timeuot/ });
});

test('bad values throw TypeErrors naming the option', () => {
  assert.throws(() => resolveOptions({ timeout: -1 }), /timeout/);
  assert.throws(() => resolveOptions({ maxQueue: 1.5 }), /maxQueue/);
  assert.throws(() => resolveOptions({ anonymousPublish: 'yes' as never }), /anonymousPublish/);
  assert.throws(() => resolveOptions({ slowConsumer: 'explode' as never }), /slowConsumer/);
  assert.throws(() => resolveOptions({ cors: { origins: '*' } as never }), /cors\.origins/);
  assert.throws(() => resolveOptions({ engine: {} as never }), /engine/);
  assert.throws(() => resolveOptions({ services: { echo: 5 } as never }), /services\.echo/);
  assert.throws(() => resolveOptions({ logLevel: 'loud' }), /logLevel/);
  assert.throws(() => resolveOptions(null as never), TypeError);
  // Node clamps longer timers to 1 ms: a huge timeout would turn held connects into a busy loop.
  assert.throws(() => resolveOptions({ timeout: 3e9 }), /timeout/);
  assert.throws(() => resolveOptions({ maxInterval: 2 ** 31 }), /maxInterval/);
  assert.throws(() => resolveOptions({ cors: { credentials: true } }), /cors\.credentials/);
  assert.throws(() => resolveOptions({ cors: { origin: 'https://a.example', maxAge: -1 } }), /cors\.maxAge/);
  assert.throws(() => resolveOptions({ jsonp: 1 as never }), /jsonp/);
  assert.throws(() => resolveOptions({ maxMessageBytes: 10 }), { name: 'TypeError', message: /maxMessageBytes/ });
  assert.throws(() => resolveOptions({ maxMessageBytes: '1mb' as never }), /maxMessageBytes/);
  assert.throws(() => resolveOptions({ upgradeTimeout: -1 }), { name: 'TypeError', message: /upgradeTimeout/ });
  assert.throws(() => resolveOptions({ upgradeTimeout: 3e9 }), /upgradeTimeout/);
});

test('logging options', () => {
  assert.equal((resolveOptions({ debug: true }).logger as winston.Logger).level, 'debug');
  assert.equal((resolveOptions({ logLevel: 'error' }).logger as winston.Logger).level, 'error');
  const logger = winston.createLogger({ silent: true });
  assert.equal(resolveOptions({ logger }).logger, logger);
  assert.deepEqual(resolveOptions({ cors: true }).cors, { origin: '*', credentials: false, maxAge: 86400 });
});
