/**
 * Gap filling (lib/engines/redis/log.ts `PatternLogs`): which
 * announcements are applied at once, which wait, and when the log is read.
 * The Runner is an in-memory stand-in that records XRANGE reads and lets
 * the test answer them: what is checked is the order of decisions, not
 * what Redis does (that is test/engine-redis.test.ts's).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry, LocalSession } from '../../lib/engines/redis/local-session.js';
import { Keys } from '../../lib/engines/redis/keys.js';
import { PatternLogs } from '../../lib/engines/redis/log.js';
import type { Runner } from '../../lib/engines/redis/runner.js';

interface Read {
  readonly args: readonly string[];
  answer(ids: string[]): void;
  fail(err: Error): void;
}

function setup() {
  const keys = new Keys('t:');
  const listeners = new Map<string, (message: string, channel: string) => void>();
  const reads: Read[] = [];
  const unsubscribed: string[] = [];
  const failures: unknown[] = [];
  const runner = {
    subscribePattern(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
      listeners.set(channel, listener);
      return Promise.resolve();
    },
    unsubscribePattern(channel: string): Promise<void> {
      unsubscribed.push(channel);
      return Promise.resolve();
    },
    failed(_what: string, err: unknown): void {
      failures.push(err);
    },
    command(_key: string, args: readonly string[]): Promise<unknown> {
      return new Promise((resolve, reject) => {
        reads.push({
          args,
          answer: (ids) => resolve(ids.map((id) => [id, ['m', `m${id}`, 'u', `other-${id}`, 'x', '-']])),
          fail: reject,
        });
      });
    },
  } as unknown as Runner;
  const applied: string[] = [];
  const logs = new PatternLogs(runner, keys, {
    fanOut: (_sessions: LocalSession | ReadonlySet<LocalSession>, _pattern: string, entries: readonly Entry[]) => {
      for (const e of entries) applied.push(e.id);
    },
  }, 'own-');
  /** Announce on the pattern's channel, as another node's publish does. */
  const announce = (pattern: string, prev: string, ids: string[]) => {
    let message = `${prev} ${ids.length}`;
    for (const id of ids) message += ` ${id} other-${id} - ${`m${id}`.length} m${id}`;
    const channel = keys.patternBase(pattern);
    listeners.get(channel)?.(message, channel);
  };
  /** This node's own announcement, as it comes back on the channel. */
  const ownAnnounce = (pattern: string, prev: string, id: string) => {
    const channel = keys.patternBase(pattern);
    listeners.get(channel)?.(`${prev} 1 ${id} own-1 - 1 x`, channel);
  };
  const session = {} as LocalSession;
  return { logs, reads, applied, failures, announce, ownAnnounce, session, unsubscribed };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('a chained announcement is applied at once; one already applied is dropped', async () => {
  const { logs, reads, applied, announce, session } = setup();
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']); // first one: nothing to compare with
  announce('/a', '1-0', ['2-0', '2-1']);
  announce('/a', '1-0', ['2-0', '2-1']); // a duplicate
  assert.deepEqual(applied, ['1-0', '2-0', '2-1']);
  assert.equal(reads.length, 0);
});

test('a gap (prev newer than the last applied) reads (last, prev] first; announcements meanwhile wait, then apply in order', async () => {
  const { logs, reads, applied, announce, session } = setup();
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']);
  announce('/a', '3-0', ['4-0']); // 2-0 and 3-0 were missed
  assert.equal(reads.length, 1);
  assert.deepEqual(reads[0]?.args, ['XRANGE', 't:{p:/a}:log', '(1-0', '3-0']);
  assert.equal(logs.busy(['/a']), true);
  assert.equal(logs.busy(['/b']), false);
  announce('/a', '4-0', ['5-0']);
  assert.deepEqual(applied, ['1-0'], 'nothing applied while the gap is read');
  const settled = logs.settled(['/a']);
  reads[0]?.answer(['2-0', '3-0']);
  await settled;
  assert.deepEqual(applied, ['1-0', '2-0', '3-0', '4-0', '5-0']);
  assert.equal(logs.busy(['/a']), false);
});

test('a failed gap read is reported and the backlog applied anyway (the chain restarts there)', async () => {
  const { logs, reads, applied, failures, announce, session } = setup();
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']);
  announce('/a', '3-0', ['4-0']);
  const err = new Error('read failed');
  reads[0]?.fail(err);
  await logs.settled(['/a']);
  assert.deepEqual(failures, [err]);
  assert.deepEqual(applied, ['1-0', '4-0']);
});

test('this node\'s own publish goes through own(); a gap before it is read first, and own() settles after', async () => {
  const { logs, reads, applied, announce, ownAnnounce, session } = setup();
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']);
  // Its own announcement on the channel is ignored: own() applies it.
  ownAnnounce('/a', '1-0', '2-0');
  assert.deepEqual(applied, ['1-0']);
  const own = { prev: '2-0', entries: [{ src: '/a', id: '3-0', ms: 3, seq: 0, text: 'x', pub: 'own-1', except: undefined }] };
  const done = logs.own('/a', own);
  assert.equal(reads.length, 1, '2-0 is read first');
  let settled = false;
  void done.then(() => (settled = true));
  await flush();
  assert.equal(settled, false);
  reads[0]?.answer(['2-0']);
  await done;
  assert.deepEqual(applied, ['1-0', '2-0', '3-0']);
});

test('resync reads every followed log from its last entry to the end', async () => {
  const { logs, reads, applied, announce, session } = setup();
  await logs.follow(session, '/a');
  await logs.follow(session, '/b');
  announce('/a', '0-0', ['1-0']);
  logs.resync();
  assert.deepEqual(reads.map((r) => r.args), [['XRANGE', 't:{p:/a}:log', '(1-0', '+']], '/b has applied nothing yet');
  reads[0]?.answer(['1-0', '2-0']);
  await logs.settled(['/a']);
  assert.deepEqual(applied, ['1-0', '2-0']);
});

test('caughtUp moves the last applied entry forward, never back, and not during a fill', async () => {
  const { logs, reads, applied, announce, session } = setup();
  await logs.follow(session, '/a');
  logs.caughtUp('/a', { id: '5-0', ms: 5, seq: 0 }, session);
  announce('/a', '5-0', ['6-0']);
  logs.caughtUp('/a', { id: '1-0', ms: 1, seq: 0 }, session);
  announce('/a', '6-0', ['7-0']);
  announce('/a', '4-0', ['5-0']); // old: dropped
  assert.deepEqual(applied, ['6-0', '7-0']);
  assert.equal(reads.length, 0);
});

test('caughtUp of a session taken over does not skip what other followers still wait for (an announcement in flight)', async () => {
  const { logs, reads, applied, announce, session } = setup();
  const other = {} as LocalSession;
  await logs.follow(other, '/a');
  announce('/a', '0-0', ['1-0']);
  // A session taken over here read the log up to 2-0, whose announcement has not arrived yet.
  await logs.follow(session, '/a');
  logs.caughtUp('/a', { id: '2-0', ms: 2, seq: 0 }, session);
  announce('/a', '1-0', ['2-0']);
  assert.deepEqual(applied, ['1-0', '2-0'], 'the other follower gets 2-0');
  assert.equal(reads.length, 0);
});

test('the last unfollow unsubscribes, after a fill in progress ends', async () => {
  const { logs, reads, announce, session, unsubscribed } = setup();
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']);
  announce('/a', '3-0', ['4-0']);
  logs.unfollow(session, '/a');
  assert.deepEqual(unsubscribed, []);
  reads[0]?.answer(['2-0', '3-0']);
  await logs.settled(['/a']);
  assert.deepEqual(unsubscribed, ['t:{p:/a}']);
  assert.equal(logs.size, 0);
});

test('a gap behind a backlog announcement is read too: this node\'s own entries, answered after a later announcement, are not dropped', async () => {
  // As on a Cluster: another node's announcements come on the channel at once, this node's own publishes are
  // applied when every script of their tick answered, so the chain arrives out of log order (seen in
  // test/redis-cluster-engine.test.ts, "a node publishing while another does").
  const { logs, reads, applied, announce, session } = setup();
  const own = (prev: string, ids: string[]) => logs.own('/a', {
    prev,
    entries: ids.map((id) => ({ src: '/a', id, ms: Number(id.split('-')[0]), seq: 0, text: `m${id}`, pub: `own-${id}`, except: undefined })),
  });
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']);
  announce('/a', '3-0', ['4-0']); // 2-0 and 3-0 are this node's, not answered yet
  assert.equal(reads.length, 1);
  announce('/a', '6-0', ['7-0']); // 5-0 and 6-0 are this node's too: waits in the backlog
  const first = own('1-0', ['2-0', '3-0']);
  reads[0]?.answer(['2-0', '3-0']);
  await flush();
  assert.deepEqual(applied, ['1-0', '2-0', '3-0', '4-0'], '7-0 waits: 5-0 and 6-0 come before it');
  assert.deepEqual(reads[1]?.args, ['XRANGE', 't:{p:/a}:log', '(4-0', '6-0']);
  let settled = false;
  void first.then(() => (settled = true));
  const second = own('4-0', ['5-0', '6-0']);
  await flush();
  assert.equal(settled, false, 'own() settles when the backlog is applied');
  reads[1]?.answer(['5-0', '6-0']);
  await Promise.all([first, second]);
  assert.deepEqual(applied, ['1-0', '2-0', '3-0', '4-0', '5-0', '6-0', '7-0']);
  assert.equal(reads.length, 2);
  assert.equal(logs.busy(['/a']), false);
});

test('a backlog announcement after an empty read to the end is checked against where the log ended', async () => {
  const { logs, reads, applied, announce, session } = setup();
  await logs.follow(session, '/a');
  announce('/a', '0-0', ['1-0']);
  logs.resync();
  announce('/a', '2-0', ['3-0']); // 2-0 was appended after the read below
  reads[0]?.answer([]);
  await flush();
  assert.deepEqual(reads[1]?.args, ['XRANGE', 't:{p:/a}:log', '(1-0', '2-0']);
  reads[1]?.answer(['2-0']);
  await logs.settled(['/a']);
  assert.deepEqual(applied, ['1-0', '2-0', '3-0']);
});

/** Shard logs: the shard's announcements and this node's own answers (log.ts `#hold`). */
function shardSetup(subscribed: Promise<void> = Promise.resolve()) {
  const keys = new Keys('t:');
  const listeners = new Map<string, (message: string, channel: string) => void>();
  const reads: Read[] = [];
  const runner = {
    subscribePattern(channel: string, listener: (message: string, channel: string) => void): Promise<void> {
      listeners.set(channel, listener);
      return subscribed;
    },
    unsubscribePattern: () => Promise.resolve(),
    failed: () => undefined,
    command(_key: string, args: readonly string[]): Promise<unknown> {
      return new Promise((resolve, reject) => {
        reads.push({ args, answer: () => resolve([]), fail: reject });
      });
    },
  } as unknown as Runner;
  /** What reached sessions, as `<channel or pattern>:<text>`, in order. */
  const applied: string[] = [];
  const logs = new PatternLogs(runner, keys, {
    fanOut: (_sessions: LocalSession | ReadonlySet<LocalSession>, pattern: string, entries: readonly Entry[]) => {
      for (const e of entries) applied.push(`${pattern}:${e.text}`);
    },
  }, 'own-', true);
  /** Another node's shard entry `id` after `prev`, with one publish per text to `channel`. */
  const shardEntry = (prev: string, id: string, channel: string, texts: string[]) => {
    let message = `${prev} ${id} ${texts.length}`;
    texts.forEach((text, i) => { message += ` ${channel} other-${id}-${i} - ${text.length} ${text}`; });
    listeners.get(keys.shardBase())?.(message, keys.shardBase());
  };
  const wildcard = (pattern: string, prev: string, id: string, text: string) => {
    listeners.get(keys.patternBase(pattern))?.(`${prev} 1 ${id} other-w${id} - ${text.length} ${text}`, keys.patternBase(pattern));
  };
  return { logs, reads, applied, shardEntry, wildcard, session: {} as LocalSession };
}

test('shard logs: a gap while this node\'s own answer is on its way waits for it, holding every log\'s announcements in arrival order; nothing is read', async () => {
  const { logs, reads, applied, shardEntry, wildcard, session } = shardSetup();
  await logs.follow(session, '/a');
  await logs.follow(session, '/b/*');
  shardEntry('0-0', '1-0', '/a', ['a1']);
  assert.deepEqual(applied, ['/a:a1']);
  // This node sends a shard script (its entry will be 2-0); another node's entry 3-0 chains after it and comes first.
  logs.shardSent();
  shardEntry('2-0', '3-0', '/a', ['a3']);
  wildcard('/b/*', '0-0', '5-0', 'b3');
  assert.deepEqual(applied, ['/a:a1'], 'held: the shard\'s gap, and the wildcard behind it');
  // The answer: applied in call order, then what was held, in arrival order.
  const { shardPosition, shardEnd } = await import('../../lib/engines/redis/keys.js');
  const { makeEntry } = await import('../../lib/engines/redis/local-session.js');
  await logs.ownShard({ prev: shardEnd('1-0'), entries: [makeEntry('/a', shardPosition('2-0', 0, 1), 'a2', 'own-1', undefined)] });
  logs.shardAnswered();
  assert.deepEqual(applied, ['/a:a1', '/a:a2', '/a:a3', '/b/*:b3']);
  assert.equal(reads.length, 0, 'no read');
});

test('shard logs: a gap with no own answer on its way is read after a moment; meanwhile other logs\' announcements wait, and come after what the read brought', async () => {
  const { logs, reads, applied, shardEntry, wildcard, session } = shardSetup();
  await logs.follow(session, '/a');
  await logs.follow(session, '/b/*');
  shardEntry('0-0', '1-0', '/a', ['a1']);
  shardEntry('2-0', '3-0', '/a', ['a3']);
  assert.equal(reads.length, 0, 'a moment for an announcement on its way');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(reads.length, 1, 'then read the gap');
  assert.deepEqual(reads[0]?.args, ['XRANGE', 't:{t0}:log', '(1-0', '2-0']);
  wildcard('/b/*', '0-0', '5-0', 'b3');
  assert.deepEqual(applied, ['/a:a1'], 'the wildcard waits for the read');
  reads[0]?.answer([]);
  await flush();
  await flush();
  assert.deepEqual(applied, ['/a:a1', '/a:a3', '/b/*:b3']);
});

test('shard logs: this node\'s own answers are applied while the shard\'s channel subscription is on its way (else the next would find a gap, and be read)', async () => {
  let subscribe = () => {};
  const { logs, reads, applied, session } = shardSetup(new Promise<void>((resolve) => { subscribe = resolve; }));
  const following = logs.follow(session, '/a');
  const { shardPosition, shardEnd } = await import('../../lib/engines/redis/keys.js');
  const { makeEntry } = await import('../../lib/engines/redis/local-session.js');
  const own = (prev: string, id: string, text: string) =>
    logs.ownShard({ prev: shardEnd(prev), entries: [makeEntry('/a', shardPosition(id, 0, 1), text, 'own-1', undefined)] });
  await own('0-0', '1-0', 'a1');
  subscribe();
  await following;
  await own('1-0', '2-0', 'a2');
  assert.deepEqual(applied, ['/a:a1', '/a:a2']);
  assert.equal(reads.length, 0, 'no gap read');
});

test('shard logs: a gap another node\'s announcement closes within a moment is not read; what came meanwhile follows in arrival order', async () => {
  const { logs, reads, applied, shardEntry, wildcard, session } = shardSetup();
  await logs.follow(session, '/a');
  await logs.follow(session, '/b/*');
  shardEntry('0-0', '1-0', '/a', ['a1']);
  shardEntry('2-0', '3-0', '/a', ['a3']);
  wildcard('/b/*', '0-0', '5-0', 'b3');
  shardEntry('1-0', '2-0', '/a', ['a2']);
  assert.deepEqual(applied, ['/a:a1'], 'held for the moment');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(applied, ['/a:a1', '/a:a2', '/a:a3', '/b/*:b3']);
  assert.equal(reads.length, 0);
});
