import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Pipeline } from '../lib/server/pipeline.js';
import { BayeuxError } from '../lib/protocol/error.js';
import { NO_SESSION } from '../lib/server/session-data.js';
import type { Context } from '../lib/server/types.js';
import { sleep } from './helpers/wait.js';

const ctx: Context = { client: 'c', transport: 'local', req: undefined, socket: undefined, ip: undefined, session: NO_SESSION };

test('runs layers in order; scoped layers only for matching channels', async () => {
  const p = new Pipeline();
  const seen: string[] = [];
  p.use(undefined, (m, _c, next) => { seen.push('all:' + m.channel); next(); });
  p.use('/chat/**', (m, _c, next) => { seen.push('chat:' + m.channel); next(); });
  await p.run({ channel: '/chat/a/b' }, ctx);
  await p.run({ channel: '/news' }, ctx);
  assert.deepEqual(seen, ['all:/chat/a/b', 'chat:/chat/a/b', 'all:/news']);
});

test('subscribe messages are matched on their subscription', async () => {
  const p = new Pipeline();
  let hits = 0;
  p.use('/private/*', () => { hits++; });
  await p.run({ channel: '/meta/subscribe', subscription: '/private/x' }, ctx);
  await p.run({ channel: '/meta/subscribe', subscription: ['/public/x', '/private/y'] }, ctx);
  await p.run({ channel: '/meta/subscribe', subscription: '/public/x' }, ctx);
  assert.equal(hits, 2);
});

test('a wildcard subscription cannot slip past a layer on a narrower pattern', async () => {
  const p = new Pipeline();
  p.use('/chat/private/**', () => {
    throw new BayeuxError(403, 'private');
  });
  for (const subscription of ['/chat/private/x', '/chat/**', '/**', '/chat/private/*']) {
    await assert.rejects(p.run({ channel: '/meta/subscribe', subscription }, ctx), { code: 403 }, subscription);
  }
  await p.run({ channel: '/meta/subscribe', subscription: '/chat/public/*' }, ctx);
  await p.run({ channel: '/meta/subscribe', subscription: '/chat/*' }, ctx);
});

test('next(err), throw and rejection refuse', async () => {
  for (const fn of [
    (_m: unknown, _c: unknown, next: (e?: unknown) => void) => next(new BayeuxError(403, 'no')),
    () => { throw new BayeuxError(403, 'no'); },
    async () => { throw new BayeuxError(403, 'no'); },
    (_m: unknown, _c: unknown, _next: unknown) => Promise.reject(new BayeuxError(403, 'no')),
  ]) {
    const p = new Pipeline();
    p.use(undefined, fn);
    await assert.rejects(p.run({ channel: '/a' }, ctx), { code: 403 });
  }
});

test('async two-argument middleware is awaited; later layers do not run after a refusal', async () => {
  const p = new Pipeline();
  const order: number[] = [];
  p.use(undefined, async () => { await sleep(5); order.push(1); });
  p.use(undefined, () => { order.push(2); throw new BayeuxError(403, 'stop'); });
  p.use(undefined, () => { order.push(3); });
  await assert.rejects(p.run({ channel: '/a' }, ctx));
  assert.deepEqual(order, [1, 2]);
});

test('middleware may change the message', async () => {
  const p = new Pipeline();
  p.use(undefined, (m) => { m.data = 'changed'; });
  const m = { channel: '/a', data: 'x' };
  await p.run(m, ctx);
  assert.equal(m.data, 'changed');
});

test('bad arguments', () => {
  const p = new Pipeline();
  assert.throws(() => p.use('not a channel', () => undefined), TypeError);
  assert.throws(() => p.use(undefined, 5 as never), TypeError);
});
