/**
 * Publishing (lib/engines/redis/publish.ts `Publisher`): how a tick's
 * publishes are batched into scripts, how the script's reply is read into
 * recipients and log entries, and that answers apply in call order. The
 * Runner is an in-memory stand-in that records each script call and lets
 * the test answer it with a reply in the publish script's format (what
 * the script itself does is test/engine-redis.test.ts's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Announcement, PatternLogs } from '../../lib/engines/redis/log.js';
import { Keys } from '../../lib/engines/redis/keys.js';
import type { EngineSettings } from '../../lib/engines/redis/settings.js';
import { CallOrder } from '../../lib/engines/redis/order.js';
import { MAX_EXCEPT, Publisher } from '../../lib/engines/redis/publish.js';
import { UnknownPublisherError } from '../../lib/engines/engine.js';
import type { Runner } from '../../lib/engines/redis/runner.js';

interface Call {
  readonly keys: readonly string[];
  readonly args: readonly string[];
  answer(reply: unknown[]): void;
  fail(err: Error): void;
}

function setup(options: { cluster?: boolean; subscribers?: Record<string, string[]>; shard?: boolean } = {}) {
  const calls: Call[] = [];
  const runner = {
    isCluster: options.cluster ?? false,
    sharded: false,
    run(_script: unknown, keys: string | readonly string[], args: readonly string[]): Promise<unknown> {
      return new Promise((resolve, reject) => {
        calls.push({ keys: typeof keys === 'string' ? [keys] : keys, args: [...args], answer: resolve, fail: reject });
      });
    },
    /** SSCAN of a pattern's subscriber set (`t:{p:<pattern>}:subs`), in one page. */
    command(key: string, args: readonly string[]): Promise<unknown> {
      assert.equal(args[0], 'SSCAN');
      const pattern = /^t:\{p:(.*)\}:subs$/.exec(key)?.[1] ?? '';
      return Promise.resolve(['0', options.subscribers?.[pattern] ?? []]);
    },
  } as unknown as Runner;
  const owned: Array<{ pattern: string; announcement: Announcement }> = [];
  /** Shard scripts sent and answered (`shardSent`, `shardAnswered`). */
  const shard = { sent: 0, answered: 0 };
  const logs = {
    own(pattern: string, announcement: Announcement): Promise<void> {
      owned.push({ pattern, announcement });
      return Promise.resolve();
    },
    ownShard(announcement: Announcement): Promise<void> {
      owned.push({ pattern: '{t0}', announcement });
      return Promise.resolve();
    },
    shardSent: () => shard.sent++,
    shardAnswered: () => shard.answered++,
  } as unknown as PatternLogs;
  const order = new CallOrder();
  const settings = { logLength: '1000', logBytes: '', historyBytes: '', retention: 60_000, shardLogBytes: '65536' } as unknown as EngineSettings;
  const keys = new Keys('t:');
  const publisher = new Publisher(runner, keys, logs, order, settings, 'n1-', options.shard ?? false);
  return { publisher, calls, owned, order, shard, keys };
}

/** Let process.nextTick and promise callbacks run. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

test('the publishes of one tick to the same patterns go in one script, in order, with the wire arguments', async () => {
  const { publisher, calls, owned } = setup();
  const a = publisher.publish(['/a', '/*'], 'A', { except: ['s1', 'not an id!', 's1'] });
  const b = publisher.publish(['/a', '/*'], 'BB');
  await tick();
  assert.equal(calls.length, 1);
  const call = calls[0] as Call;
  assert.deepEqual(call.keys, ['t:{p:/a}', 't:{p:/*}']);
  // No shard (''), both keys are logs; per publish: its number of patterns and their indexes in KEYS (from 1), then message,
  // publish id, except, length, history.
  assert.deepEqual(call.args, ['1000', '60000', 'P', '', '', '0', '', '2', '', '', '2', '1', '2', 'A', 'n1-1', 's1', '1', '-', '2', '1', '2', 'BB', 'n1-2', '-', '2', '-']);
  // Pattern /a has subscribers (prev 4-0), /* none: per publish on /a, recipients and id.
  call.answer([1, '4-0', '', 3, '5-0', 0, '']);
  assert.equal(await a, 3);
  assert.equal(await b, 0);
  assert.equal(owned.length, 1);
  assert.equal(owned[0]?.pattern, '/a');
  assert.equal(owned[0]?.announcement.prev, '4-0');
  assert.deepEqual(owned[0]?.announcement.entries.map((e) => ({ ...e })), [
    { src: '/a', id: '5-0', ms: 5, seq: 0, text: 'A', pub: 'n1-1', except: ['s1'] },
  ]);
});

test('one script per publisher in a tick, in call order, each naming its publisher\'s hash; a Refused reply rejects only that one\'s publishes', async () => {
  const { publisher, calls, owned, keys } = setup();
  const x1 = publisher.publish(['/a'], 'X1', { publisher: 'sessX' });
  const x2 = publisher.publish(['/a'], 'X2', { publisher: 'sessX' });
  const y = publisher.publish(['/a'], 'Y', { publisher: 'sessY' });
  const server = publisher.publish(['/a'], 'S');
  await tick();
  assert.deepEqual(calls.map((c) => c.args[9]), [`${keys.bucket('sessX')}:sessX`, `${keys.bucket('sessY')}:sessY`, '']);
  assert.deepEqual(calls.map((c) => c.args.filter((arg) => ['X1', 'X2', 'Y', 'S'].includes(arg))), [['X1', 'X2'], ['Y'], ['S']]);
  calls[0]?.answer([1, '4-0', 1, '5-0', 1, '5-1']);
  calls[1]?.answer([3]);
  calls[2]?.answer([1, '5-1', 1, '6-0']);
  assert.deepEqual(await Promise.all([x1, x2]), [1, 1]);
  await assert.rejects(y, UnknownPublisherError);
  assert.equal(await server, 1);
  assert.deepEqual(owned.flatMap((o) => o.announcement.entries.map((e) => e.text)), ['X1', 'X2', 'S'], 'nothing applied for the refused one');
});

test('a reply of {0} (no pattern has subscribers) resolves every publish with 0', async () => {
  const { publisher, calls, owned } = setup();
  const a = publisher.publish(['/a'], 'A');
  await tick();
  calls[0]?.answer([0]);
  assert.equal(await a, 0);
  assert.equal(owned.length, 0);
});

test('a tick\'s publishes to different channels share one script, each pattern once in KEYS; the 100th publish sends the batch', async () => {
  const { publisher, calls } = setup();
  void publisher.publish(['/a', '/**'], 'A');
  void publisher.publish(['/b', '/**'], 'B');
  assert.equal(calls.length, 0, 'nothing sent before the end of the tick');
  for (let i = 0; i < 98; i++) void publisher.publish(['/b', '/**'], 'x');
  assert.equal(calls.length, 1, 'sent at the 100th');
  assert.deepEqual(calls[0]?.keys, ['t:{p:/a}', 't:{p:/**}', 't:{p:/b}']);
  assert.deepEqual(calls[0]?.args.slice(10, 22), ['2', '1', '2', 'A', 'n1-1', '-', '1', '-', '2', '3', '2', 'B']);
  void publisher.publish(['/c'], 'C');
  await tick();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1]?.args.slice(10), ['1', '1', 'C', 'n1-2t', '-', '1', '-']);
});

test('own announcements are applied as the script sent them: cut before the publishes its reply names', async () => {
  const { publisher, calls, owned } = setup({ subscribers: { '/a': ['s1'], '/*': ['s2'] } });
  const a = publisher.publish(['/a', '/*'], 'A');
  const b = publisher.publish(['/a', '/*'], 'B');
  const c = publisher.publish(['/b', '/*'], 'C');
  const d = publisher.publish(['/a', '/*'], 'D');
  await tick();
  assert.deepEqual(calls[0]?.keys, ['t:{p:/a}', 't:{p:/*}', 't:{p:/b}']);
  // /a (prev 1-0) and /* (prev 2-0) have subscribers, /b none. Per publish, per key with subscribers: recipients, id;
  // then the cut: D reaches /a, and /* (after /a) holds C, which /a lacks.
  calls[0]?.answer([1, '1-0', '2-0', '', 1, '3-0', 1, '3-1', 1, '4-0', 1, '4-1', 1, '5-1', 1, '6-0', 1, '6-1', 4]);
  assert.deepEqual(await Promise.all([a, b, c, d]), [2, 2, 1, 2]);
  assert.deepEqual(owned.map((o) => [o.pattern, o.announcement.prev, o.announcement.entries.map((e) => e.text).join('')]), [
    ['/a', '1-0', 'AB'], ['/*', '2-0', 'ABC'],
    ['/a', '4-0', 'D'], ['/*', '5-1', 'D'],
  ]);
});

test('a publish whose count is not asked for resolves to the sum over patterns without reading who subscribed', async () => {
  const { publisher, calls } = setup({ subscribers: { '/a': ['s1'], '/*': ['s1'] } });
  const counted = publisher.publish(['/a', '/*'], 'A');
  const summed = publisher.publish(['/a', '/*'], 'B', { count: false });
  await tick();
  calls[0]?.answer([1, '1-0', '2-0', 1, '3-0', 1, '3-1', 1, '4-0', 1, '4-1']);
  assert.equal(await counted, 1);
  assert.equal(await summed, 2);
});

test('on a Cluster a batch is one script per pattern, with the publishes that reach it', async () => {
  const { publisher, calls } = setup({ cluster: true });
  void publisher.publish(['/a', '/*', '/a'], 'A');
  void publisher.publish(['/b', '/*'], 'B');
  await tick();
  assert.deepEqual(calls.map((c) => c.keys), [['t:{p:/a}'], ['t:{p:/*}'], ['t:{p:/b}']]);
  assert.deepEqual(calls.map((c) => c.args.slice(10).filter((_, i) => i % 7 === 2)), [['A'], ['A', 'B'], ['B']]);
});

test('on a Cluster a publish with history goes first to its channel\'s script, then, spliced, to its other patterns\'; later batches wait their turn', async () => {
  const { publisher, calls, owned } = setup({ cluster: true });
  const history = { channel: '/h/a', size: 10, ttl: 1000, tail: 2 };
  const first = publisher.publish(['/h/a', '/h/*'], '{"d":1,"ext":{"position":}}', { history });
  await tick();
  assert.deepEqual(calls.map((c) => c.keys), [['t:{p:/h/a}']], 'the channel\'s script alone first');
  // Its history argument: the channel's index in KEYS (from 1), size, ttl, tail; one publish with history.
  assert.deepEqual(calls[0]?.args.slice(4), ['', '1', '', '1', '', '', '1', '1', '{"d":1,"ext":{"position":}}', 'n1-1', '-', '27', '1 10 1000 2']);
  const later = publisher.publish(['/h/b', '/h/*'], 'plain');
  await tick();
  assert.equal(calls.length, 1, 'a later batch waits until the first sent its second scripts');
  const position = '{"epoch":"e","offset":1}';
  // No subscriber of /h/a: no results, then the position.
  calls[0]?.answer([1, '', position]);
  await tick();
  const spliced = '{"d":1,"ext":{"position":{"epoch":"e","offset":1}}}';
  assert.deepEqual(calls.slice(1).map((c) => c.keys), [['t:{p:/h/*}'], ['t:{p:/h/b}'], ['t:{p:/h/*}']]);
  assert.deepEqual(calls[1]?.args.slice(4), ['', '0', '', '1', '', '', '1', '1', spliced, 'n1-1', '-', String(spliced.length), '-'], 'the wildcard gets the spliced text');
  calls[1]?.answer([1, '1-0', 1, '2-0']);
  calls[2]?.answer([0]);
  calls[3]?.answer([1, '2-0', 1, '3-0']);
  assert.equal(await first, 1);
  assert.equal(await later, 1);
  assert.deepEqual(owned.map((o) => o.announcement.entries.map((e) => e.text)), [[spliced], ['plain']], 'this node applies the spliced text');
});

test('a failed script rejects every publish of the batch', async () => {
  const { publisher, calls } = setup({ cluster: true });
  const a = publisher.publish(['/a', '/*'], 'A');
  await tick();
  calls[0]?.answer([1, '1-0', 1, '2-0']);
  const err = new Error('down');
  calls[1]?.fail(err);
  await assert.rejects(a, (e) => e === err);
});

test('a publish reaching several patterns counts each subscriber once, except excluded', async () => {
  const { publisher, calls } = setup({ subscribers: { '/a': ['s1', 's2'], '/*': ['s2', 's3', 's4'] } });
  const a = publisher.publish(['/a', '/*'], 'A', { except: ['s4'] });
  await tick();
  calls[0]?.answer([1, '1-0', '7-0', 2, '2-0', 2, '8-0']);
  assert.equal(await a, 3);
});

test('answers apply in call order even when Redis answers a later batch first', async () => {
  const { publisher, calls, owned } = setup();
  const first = publisher.publish(['/a'], 'A');
  await tick();
  const second = publisher.publish(['/a'], 'B');
  await tick();
  assert.equal(calls.length, 2);
  const done: string[] = [];
  void first.then(() => done.push('A'));
  void second.then(() => done.push('B'));
  calls[1]?.answer([1, '1-0', 1, '2-0']);
  await tick();
  assert.equal(owned.length, 0);
  assert.deepEqual(done, []);
  calls[0]?.answer([1, '0-0', 1, '1-0']);
  await Promise.all([first, second]);
  assert.deepEqual(owned.map((o) => o.announcement.entries[0]?.text), ['A', 'B']);
  assert.deepEqual(done, ['A', 'B']);
});

test('more than MAX_EXCEPT excluded sessions is refused before anything is sent', async () => {
  const { publisher, calls } = setup();
  const except = Array.from({ length: MAX_EXCEPT + 1 }, (_, i) => `s${i}`);
  await assert.rejects(publisher.publish(['/a'], 'A', { except }), RangeError);
  assert.equal(await publisher.publish([], 'A'), 0);
  await tick();
  assert.equal(calls.length, 0);
});

test('with a shard, a tick is one entry the node builds; a Logged reply applies it whole, each publish at its position', async () => {
  const { publisher, calls, owned, shard } = setup({ shard: true });
  const a = publisher.publish(['/a', '/*'], 'A é', { count: false, except: ['s1'] });
  const b = publisher.publish(['/b', '/*'], 'B', { count: false });
  await tick();
  assert.equal(calls.length, 1);
  assert.deepEqual(calls[0]?.keys, ['t:{t0}', 't:{p:/*}']);
  // The shard's prefix and bytes; /* reached by both publishes; the entry as the node built it, its bytes (UTF-8) + 100,
  // its parts' bytes, no counts, no history.
  const entry = '2 /a n1-1 s1 3 A é /b n1-2 - 1 B';
  assert.deepEqual(calls[0]?.args, ['1000', '60000', 'P', '', '', '0', 't:', '2', '65536', '', '1,2', entry, String(Buffer.byteLength(entry) + 100), '17,13', '']);
  assert.equal(shard.sent, 1);
  calls[0]?.answer([2, '7-1', '9-3']);
  assert.deepEqual(await Promise.all([a, b]), [0, 0]);
  assert.equal(shard.answered, 1);
  assert.deepEqual(owned.map((o) => [o.pattern, o.announcement.prev, o.announcement.entries.map((e) => [e.src, e.id, e.text, e.except])]), [
    // The entry's publishes end at seq 3 x 1024 + 1023; the previous entry's end is its last publish's position.
    ['{t0}', '7-2047', [['/a', '9-4094', 'A é', ['s1']], ['/b', '9-4095', 'B', undefined]]],
  ]);
});

test('with a shard, counts and history go with the entry; the full reply gives the counts', async () => {
  const { publisher, calls } = setup({ shard: true });
  const a = publisher.publish(['/a'], 'A');
  const b = publisher.publish(['/b'], '{"x":1,}}', { count: false, history: { channel: '/b', size: 5, ttl: 1000, tail: 2 } });
  await tick();
  // KEYS: the shard, then /b's base for its history (no pattern log). The count of /a (ordinal 1); /b's history (ordinal 2:
  // its key 2, size, ttl, tail).
  assert.deepEqual(calls[0]?.keys, ['t:{t0}', 't:{p:/b}']);
  assert.deepEqual(calls[0]?.args.slice(5), ['1', 't:', '1', '65536', '', '2 /a n1-1 - 1 A /b n1-2 - 9 {"x":1,}}', '137', '13,21', '1', '2 2 5 1000 2']);
  calls[0]?.answer([1, '7-0', '', 2, '9-0', -1, '9-0', '{"epoch":"e","offset":1}']);
  assert.deepEqual(await Promise.all([a, b]), [2, 0]);
});

test('with a shard, a Logged reply carries the counts asked for, in call order', async () => {
  const { publisher, calls, owned } = setup({ shard: true });
  const a = publisher.publish(['/a'], 'A');
  const b = publisher.publish(['/b'], 'B', { count: false });
  const c = publisher.publish(['/c'], 'C', { except: ['s1'] });
  await tick();
  assert.deepEqual(calls[0]?.args.slice(12), ['13,13,14', '1,3']);
  calls[0]?.answer([2, '0-0', '9-0', 3, 1]);
  assert.deepEqual(await Promise.all([a, b, c]), [3, 0, 1]);
  assert.deepEqual(owned.map((o) => [o.announcement.prev, o.announcement.entries.map((e) => e.id)]), [['0-0', ['9-1021', '9-1022', '9-1023']]]);
});
