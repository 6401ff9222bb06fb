/**
 * What a node does with the messages scripts send it about the sessions
 * it keeps locally (lib/engines/redis/local-sessions.ts `nodeMessage`,
 * the `NodeMessage` letters of lua/contract.ts). The context is an
 * in-memory stand-in recording what the node asks of the logs, the wakes
 * and Redis; what the scripts send is test/engine-redis.test.ts's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keys } from '../../lib/engines/redis/keys.js';
import { makeEntry, type Entry, type LocalSession } from '../../lib/engines/redis/local-session.js';
import { LocalSessions, type LocalSessionsParts } from '../../lib/engines/redis/local-sessions.js';
import { NodeMessage } from '../../lib/engines/redis/lua/contract.js';
import { CallOrder } from '../../lib/engines/redis/order.js';

function setup() {
  const events: string[] = [];
  const boxReads: Array<readonly string[]> = [];
  const logReads = new Map<string, Entry[]>();
  const context = {
    keys: new Keys('t:'),
    order: new CallOrder(),
    nodeId: 'n1',
    settings: { queue: { maxQueue: 100, maxQueueBytes: 1 << 20 }, retention: 60_000 },
    runner: {
      failed: (what: string) => events.push(`failed ${what}`),
      command: (_key: string, args: readonly string[]) => {
        boxReads.push(args);
        return Promise.resolve([['4-0', ['m', 'missed']], ['5-0', ['m', 'late']]]);
      },
    },
    logs: {
      follow: (_s: LocalSession, pattern: string) => {
        events.push(`follow ${pattern}`);
        return Promise.resolve();
      },
      unfollow: (s: LocalSession, pattern: string) => events.push(`unfollow ${s.id} ${pattern}`),
      read: (pattern: string, from: string) => {
        events.push(`read ${pattern} ${from}`);
        return Promise.resolve(logReads.get(pattern) ?? []);
      },
      caughtUp: () => undefined,
    },
    wakes: {
      session: (s: LocalSession) => events.push(`wake ${s.id}`),
      id: (id: string) => events.push(`wake id ${id}`),
    },
    positions: { subscribed: () => undefined },
  } as unknown as LocalSessionsParts;
  const sessions = new LocalSessions(context);
  sessions.created('s1', false, Date.now() + 60_000);
  const s1 = sessions.get('s1') as LocalSession;
  s1.follow('/a', '1-0');
  return { sessions, s1, events, boxReads, logReads };
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

test('Gone: the copy is forgotten, its patterns unfollowed, the id woken (its connect learns it is gone)', () => {
  const { sessions, s1, events } = setup();
  sessions.nodeMessage(`${NodeMessage.Gone} s1`);
  assert.equal(sessions.get('s1'), undefined);
  assert.equal(s1.gone, true);
  assert.deepEqual(events, ['unfollow s1 /a', 'wake id s1']);
});

test('Moved: forgotten only when the new generation is newer than the copy\'s', () => {
  const { sessions, events } = setup();
  sessions.nodeMessage(`${NodeMessage.Moved} s1 1`);
  assert.ok(sessions.get('s1'), 'same generation: kept');
  sessions.nodeMessage(`${NodeMessage.Moved} s1 2`);
  assert.equal(sessions.get('s1'), undefined);
  assert.deepEqual(events, ['unfollow s1 /a']);
});

test('Boxed: the message (spaces and all) is applied and the session woken', () => {
  const { sessions, s1, events } = setup();
  sessions.nodeMessage(`${NodeMessage.Boxed} s1 0-0 3-0 {"data":"a b c"}`);
  assert.deepEqual(s1.queue.map((e) => [e.src, e.id, e.text]), [['', '3-0', '{"data":"a b c"}']]);
  assert.deepEqual(events, ['wake s1']);
});

test('Boxed after a gap: the box is read from the last applied entry up to this one', async () => {
  const { sessions, s1, boxReads } = setup();
  sessions.nodeMessage(`${NodeMessage.Boxed} s1 4-0 5-0 late`);
  await flush();
  assert.deepEqual(boxReads, [['XRANGE', 't:{s' + boxBucket('s1') + '}:s1:box', '(0-0', '5-0']]);
  assert.deepEqual(s1.queue.map((e) => e.text), ['missed', 'late']);
});

test('Unsubscribed: only for the copy\'s generation', () => {
  const { sessions, s1, events } = setup();
  sessions.nodeMessage(`${NodeMessage.Unsubscribed} s1 2 /a`);
  assert.ok(s1.follows('/a'));
  sessions.nodeMessage(`${NodeMessage.Unsubscribed} s1 1 /a`);
  assert.equal(s1.follows('/a'), false);
  assert.deepEqual(events, ['unfollow s1 /a']);
});

test('Subscribed: follows the pattern from the position, reads what the log got since, in call order', async () => {
  const { sessions, s1, events, logReads } = setup();
  logReads.set('/b', [makeEntry('/b', '4-0', 'b4', '', undefined)]);
  sessions.nodeMessage(`${NodeMessage.Subscribed} s1 2 3-0 /b`);
  assert.equal(s1.follows('/b'), false, 'another generation: ignored');
  sessions.nodeMessage(`${NodeMessage.Subscribed} s1 1 3-0 /b`);
  assert.equal(s1.cursorOf('/b')?.id, '3-0');
  await s1.ready;
  assert.deepEqual(events, ['follow /b', 'read /b 3-0', 'wake s1']);
  assert.deepEqual(s1.queue.map((e) => e.text), ['b4']);
  // Already followed: nothing again.
  sessions.nodeMessage(`${NodeMessage.Subscribed} s1 1 3-0 /b`);
  assert.equal(events.length, 3);
});

test('unknown sessions and malformed messages change nothing', () => {
  const { sessions, s1, events } = setup();
  sessions.nodeMessage(`${NodeMessage.Moved} other 9`);
  sessions.nodeMessage(`${NodeMessage.Boxed} s1 nospace`);
  sessions.nodeMessage(`${NodeMessage.Subscribed} s1 1`);
  sessions.nodeMessage('z s1');
  sessions.nodeMessage('');
  assert.ok(sessions.get('s1'));
  assert.equal(s1.queue.length, 0);
  assert.deepEqual(events, []);
});

/** The bucket `Keys` puts an id in (the test's key must match the engine's). */
function boxBucket(id: string): number {
  return Number(/\{s(\d+)\}/.exec(new Keys('t:').bucket(id))?.[1]);
}
