/**
 * The engine test suite: every engine runs it (`engine-memory.test.ts`,
 * `engine-redis.test.ts`). It exercises each operation of the `Engine`
 * interface and the semantics written in its TSDoc, through the interface
 * only.
 */
import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { expand } from '../lib/server/expand.js';
import {
  EngineLimitError, UnknownPublisherError, type Engine, type EngineConfig, type EngineHost, type PresenceChange, type HistoryPosition, type HistoryQuery, type RecoverFrom, type TakeResult,
} from '../lib/engines/engine.js';
import { sleep, waitFor } from './helpers/wait.js';

export interface EngineSuiteOptions {
  /** Shown in the test names. */
  name: string;
  /** A new, unopened engine; the suite opens and closes it. Engines from separate calls must not share state. */
  create: () => Promise<Engine>;
  /** Run once after the suite's tests. */
  cleanup?: () => Promise<void>;
  /**
   * The engine keeps channel history (`recover` and `history`, the
   * `history` publish option): run the history cases. Without it they are
   * skipped, and say so.
   */
  history?: boolean;
  /** The engine keeps presence (`presence`, `presenceCount`, `userSessions`): run the presence cases. */
  presence?: boolean;
  /** `Engine.checksPublisher` as this engine promises it: true runs the publisher cases, false asserts it is not set. */
  checksPublisher: boolean;
}

/** An `EngineHost` that records what the engine tells it. */
export class RecordingHost implements EngineHost {
  /** Every `wake` call, in order. */
  readonly wakes: string[][] = [];
  /** Every `expired` call, in order. */
  readonly expiredIds: string[] = [];
  /** Every `presence` call, in order, as `<type> <channel> <user or -> <clientId>`. */
  readonly presences: string[] = [];
  /** The `version` of each `presence` call, in order. */
  readonly versions: number[] = [];

  wake(clientIds: readonly string[]): void {
    this.wakes.push([...clientIds]);
  }

  expired(clientId: string): void {
    this.expiredIds.push(clientId);
  }

  presence(change: PresenceChange): void {
    this.presences.push(`${change.type} ${change.channel} ${change.user ?? '-'} ${change.clientId}`);
    this.versions.push(change.version);
  }

  /** The ids passed to `wake` since the last `clear`. */
  woken(): Set<string> {
    return new Set(this.wakes.flat());
  }

  clear(): void {
    this.wakes.length = 0;
    this.expiredIds.length = 0;
    this.presences.length = 0;
    this.versions.length = 0;
  }
}

/** Count occurrences of each value. */
function counts(values: readonly string[]): Map<string, number> {
  const map = new Map<string, number>();
  for (const value of values) map.set(value, (map.get(value) ?? 0) + 1);
  return map;
}

const msg = (channel: string, data: unknown) => JSON.stringify({ channel, data });
const sorted = (values: Iterable<string>) => [...values].sort();

/** Register the suite's tests for one engine. */
export function engineSuite(options: EngineSuiteOptions): void {
  const { name, create, cleanup, history, presence } = options;

  describe(`engine suite: ${name}`, () => {
    if (cleanup) after(cleanup);

    async function setup(t: TestContext, config: Partial<EngineConfig> = {}) {
      const engine = await create();
      const host = new RecordingHost();
      await engine.open(host, { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 20, ...config });
      t.after(() => engine.close());
      return { engine, host };
    }

    const session = (engine: Engine, ack = false, ttl = 60_000) => engine.createSession({ ack, ttl });

    describe('sessions', () => {
      it('createSession returns distinct, URL-safe ids of at least 128 bits that exist', async (t) => {
        const { engine } = await setup(t);
        const ids = await Promise.all(Array.from({ length: 20 }, () => session(engine)));
        assert.equal(new Set(ids).size, ids.length);
        for (const id of ids) {
          assert.match(id, /^[A-Za-z0-9_-]+$/);
          // base64url: 6 bits a character
          assert.ok(id.length * 6 >= 128, `id ${id} too short`);
          assert.equal(await engine.exists(id), true);
        }
        assert.equal(await engine.exists('no-such-session'), false);
      });

      it('touch keeps a session alive past its first ttl', async (t) => {
        const { engine, host } = await setup(t);
        const id = await session(engine, false, 200);
        assert.equal(await engine.touch(id, 5000), true);
        await sleep(350);
        assert.equal(await engine.exists(id), true);
        assert.equal(await engine.touch(id, 5000), true);
        assert.deepEqual(host.expiredIds, []);
      });

      it('a session not touched in time expires: expired() is called once and the session is gone', async (t) => {
        const { engine, host } = await setup(t);
        const id = await session(engine, false, 100);
        const keep = await session(engine, false, 60_000);
        await engine.subscribe(id, '/a/b');
        await engine.subscribe(keep, '/a/b');
        await engine.deliver(id, msg('/a/b', 1));
        await waitFor(() => host.expiredIds.includes(id), { timeout: 3000, what: 'expired(id)' });
        assert.equal(await engine.exists(id), false);
        assert.equal(await engine.touch(id, 5000), false);
        assert.deepEqual(await engine.subscriptions(id), []);
        assert.equal(await engine.take(id), null);
        assert.equal(await engine.deliver(id, msg('/a/b', 2)), false);
        assert.equal(await engine.publish(expand('/a/b'), msg('/a/b', 3)), 1);
        assert.equal(await engine.destroy(id), false);
        // Sweeps keep running: still exactly one call.
        await sleep(150);
        assert.deepEqual(host.expiredIds, [id]);
        assert.equal(await engine.exists(keep), true);
        assert.deepEqual((await engine.stats()).sessions, 1);
      });

      it('a session past its deadline is expired once when next used, even before a sweep', async (t) => {
        // A sweep interval longer than the test: the expiry is found on access.
        const { engine, host } = await setup(t, { sweepInterval: 60_000 });
        const touched = await session(engine, false, 50);
        const destroyed = await session(engine, false, 50);
        await sleep(120);
        assert.equal(await engine.touch(touched, 5000), false);
        assert.equal(await engine.exists(touched), false);
        assert.equal(await engine.destroy(touched), false);
        assert.deepEqual(host.expiredIds, [touched]);
        // Disconnecting a session that already timed out: it expired, it was not destroyed.
        assert.equal(await engine.destroy(destroyed), false);
        assert.deepEqual(host.expiredIds, [touched, destroyed]);
        assert.deepEqual(await engine.stats(), { sessions: 0, subscriptions: 0 });
      });

      it('expired() is called exactly once per session when accesses race the sweeper', async (t) => {
        const { engine, host } = await setup(t, { sweepInterval: 5 });
        const ids = await Promise.all(Array.from({ length: 20 }, () => session(engine, false, 60)));
        for (const id of ids) await engine.subscribe(id, '/x');
        const deadline = Date.now() + 3000;
        while (host.expiredIds.length < ids.length && Date.now() < deadline) {
          await Promise.all(ids.flatMap((id) => [engine.exists(id), engine.take(id), engine.touch(id, 1)]));
        }
        await sleep(50);
        assert.deepEqual(sorted(host.expiredIds), sorted(ids));
        for (const [, n] of counts(host.expiredIds)) assert.equal(n, 1);
        assert.deepEqual(await engine.stats(), { sessions: 0, subscriptions: 0 });
      });

      it('destroy ends a session with its subscriptions and queue, and does not call expired()', async (t) => {
        const { engine, host } = await setup(t);
        const id = await session(engine);
        const other = await session(engine);
        await engine.subscribe(id, '/a/b');
        await engine.subscribe(id, '/a/**');
        await engine.subscribe(other, '/a/b');
        await engine.deliver(id, msg('/a/b', 1));
        // A deadline that passes during the wait below, set only now: made with ttl 200, a loaded machine expired it before the destroy.
        assert.equal(await engine.touch(id, 200), true);
        assert.equal(await engine.destroy(id), true);
        assert.equal(await engine.destroy(id), false);
        assert.equal(await engine.exists(id), false);
        assert.deepEqual(await engine.subscriptions(id), []);
        assert.equal(await engine.take(id), null);
        assert.equal(await engine.publish(expand('/a/b'), msg('/a/b', 2)), 1);
        assert.deepEqual(await engine.stats(), { sessions: 1, subscriptions: 1 });
        await sleep(300);
        assert.deepEqual(host.expiredIds, []);
      });
    });

    describe('subscriptions', () => {
      it('subscribe, unsubscribe and subscriptions', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        assert.deepEqual(await engine.subscriptions(id), []);
        assert.equal(await engine.subscribe(id, '/a/b'), true);
        assert.equal(await engine.subscribe(id, '/a/*'), true);
        assert.equal(await engine.subscribe(id, '/a/b'), true);
        assert.deepEqual(sorted(await engine.subscriptions(id)), ['/a/*', '/a/b']);
        assert.equal(await engine.unsubscribe(id, '/a/b'), true);
        assert.deepEqual(await engine.subscriptions(id), ['/a/*']);
        // Unsubscribing from something not subscribed is not an error.
        assert.equal(await engine.unsubscribe(id, '/not/subscribed'), true);
        assert.equal(await engine.unsubscribe(id, '/a/*'), true);
        assert.deepEqual(await engine.subscriptions(id), []);
        assert.equal(await engine.publish(expand('/a/b'), msg('/a/b', 1)), 0);
      });

      it('a session with many patterns, then few: each publish reaches it once while it has a matching one', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        const many = Array.from({ length: 20 }, (_, i) => `/m/${i}`);
        for (const pattern of many) assert.equal(await engine.subscribe(id, pattern), true);
        assert.equal(await engine.subscribe(id, '/m/*'), true);
        assert.deepEqual(sorted(await engine.subscriptions(id)), sorted([...many, '/m/*']));
        for (const pattern of many.slice(1)) assert.equal(await engine.unsubscribe(id, pattern), true);
        assert.deepEqual(sorted(await engine.subscriptions(id)), sorted(['/m/0', '/m/*']));
        assert.equal(await engine.publish(expand('/m/0'), msg('/m/0', 1)), 1);
        assert.equal(await engine.publish(expand('/m/5'), msg('/m/5', 2)), 1);
        await engine.unsubscribe(id, '/m/*');
        assert.equal(await engine.publish(expand('/m/5'), msg('/m/5', 3)), 0);
        assert.deepEqual((await engine.take(id))?.messages, [msg('/m/0', 1), msg('/m/5', 2)]);
        assert.deepEqual((await engine.stats()).subscriptions, 1);
      });

      it('a channel\'s subscribers come and go (one, two, one, none, one): each publish reaches exactly those there', async (t) => {
        const { engine } = await setup(t);
        const [a, b] = [await session(engine), await session(engine)];
        const round = async (n: number, expected: string[]): Promise<void> => {
          assert.equal(await engine.publish(expand('/c/x'), msg('/c/x', n)), expected.length, `publish ${n}`);
          assert.deepEqual(sorted(await engine.subscribers('/c/x')), sorted(expected), `subscribers at ${n}`);
        };
        await engine.subscribe(a, '/c/x');
        await round(1, [a]);
        await engine.subscribe(b, '/c/x');
        await round(2, [a, b]);
        await engine.unsubscribe(a, '/c/x');
        await round(3, [b]);
        assert.deepEqual((await engine.take(b))?.messages, [msg('/c/x', 2), msg('/c/x', 3)]);
        await engine.destroy(b);
        await round(4, []);
        await engine.subscribe(a, '/c/x');
        await engine.subscribe(a, '/c/x');
        await round(5, [a]);
        assert.deepEqual((await engine.take(a))?.messages, [msg('/c/x', 1), msg('/c/x', 2), msg('/c/x', 5)]);
      });

      it('subscriptions of one session do not leak into another', async (t) => {
        const { engine } = await setup(t);
        const a = await session(engine);
        const b = await session(engine);
        await engine.subscribe(a, '/a');
        await engine.subscribe(b, '/b');
        assert.deepEqual(await engine.subscriptions(a), ['/a']);
        assert.deepEqual(await engine.subscriptions(b), ['/b']);
        await engine.unsubscribe(b, '/a');
        assert.equal(await engine.publish(expand('/a'), msg('/a', 1)), 1);
        assert.deepEqual((await engine.take(a))?.messages, [msg('/a', 1)]);
        assert.deepEqual((await engine.take(b))?.messages, []);
      });
    });

    describe('publish and deliver', () => {
      it('publish reaches the sessions subscribed to any pattern of the expansion, and no others', async (t) => {
        const { engine } = await setup(t);
        const patterns = ['/a/b', '/a/*', '/a/**', '/**', '/a/c', '/a/b/c', '/a/b/*', '/a/b/**', '/b/**', '/a'];
        const byPattern = new Map<string, string>();
        for (const pattern of patterns) {
          const id = await session(engine);
          assert.equal(await engine.subscribe(id, pattern), true);
          byPattern.set(pattern, id);
        }
        assert.deepEqual([...expand('/a/b')], ['/a/b', '/a/*', '/a/**', '/**']);
        const message = msg('/a/b', { n: 1 });
        assert.equal(await engine.publish(expand('/a/b'), message), 4);
        for (const [pattern, id] of byPattern) {
          const result = await engine.take(id);
          const expected = ['/a/b', '/a/*', '/a/**', '/**'].includes(pattern) ? [message] : [];
          assert.deepEqual(result?.messages, expected, `subscriber of ${pattern}`);
        }
      });

      it('a deeper channel reaches /** patterns but not one-segment wildcards above it', async (t) => {
        const { engine } = await setup(t);
        const star = await session(engine);
        const deep = await session(engine);
        await engine.subscribe(star, '/a/*');
        await engine.subscribe(deep, '/a/**');
        assert.equal(await engine.publish(expand('/a/b/c'), msg('/a/b/c', 1)), 1);
        assert.deepEqual((await engine.take(star))?.messages, []);
        assert.deepEqual((await engine.take(deep))?.messages, [msg('/a/b/c', 1)]);
      });

      it('one copy per session, however many of its patterns match', async (t) => {
        const { engine } = await setup(t);
        const all = await session(engine);
        const one = await session(engine);
        for (const pattern of ['/**', '/a/**', '/a/*', '/a/b']) await engine.subscribe(all, pattern);
        await engine.subscribe(one, '/a/**');
        const message = msg('/a/b', 'x');
        assert.equal(await engine.publish(expand('/a/b'), message), 2);
        assert.deepEqual((await engine.take(all))?.messages, [message]);
        assert.deepEqual((await engine.take(one))?.messages, [message]);
      });

      it('publish with no subscribers queues nothing and wakes nobody', async (t) => {
        const { engine, host } = await setup(t);
        const id = await session(engine);
        await engine.subscribe(id, '/other');
        assert.equal(await engine.publish(expand('/a/b'), msg('/a/b', 1)), 0);
        assert.equal(await engine.publish([], msg('/a/b', 1)), 0);
        await sleep(50);
        assert.deepEqual(host.wakes, []);
        assert.deepEqual((await engine.take(id))?.messages, []);
      });

      it('publish with a publisher: published while it lives, else nothing and UnknownPublisherError', async (t) => {
        const { engine } = await setup(t);
        assert.equal(engine.checksPublisher === true, options.checksPublisher);
        // RedisEngine on a Cluster: the session's keys are in another slot; the Server calls exists() first.
        if (!options.checksPublisher) return;
        const publisher = await session(engine);
        const reader = await session(engine);
        await engine.subscribe(reader, '/p');
        assert.equal(await engine.publish(expand('/p'), msg('/p', 1), { publisher }), 1);
        assert.equal(await engine.destroy(publisher), true);
        await assert.rejects(engine.publish(expand('/p'), msg('/p', 2), { publisher }), UnknownPublisherError);
        await assert.rejects(engine.publish(expand('/p'), msg('/p', 3), { publisher: 'no-such-session' }), UnknownPublisherError);
        // Issued together with a live publisher's: only that one is published, in order.
        const other = await session(engine);
        const both = await Promise.allSettled([
          engine.publish(expand('/p'), msg('/p', 4), { publisher }),
          engine.publish(expand('/p'), msg('/p', 5), { publisher: other }),
        ]);
        assert.deepEqual(both.map((r) => r.status), ['rejected', 'fulfilled']);
        assert.deepEqual((await engine.take(reader))?.messages, [msg('/p', 1), msg('/p', 5)]);
      });

      it('publish wakes exactly the recipients; deliver wakes its session', async (t) => {
        const { engine, host } = await setup(t);
        const a = await session(engine);
        const b = await session(engine, true);
        const c = await session(engine);
        await engine.touch(a, 60_000);
        await engine.touch(b, 60_000);
        await engine.touch(c, 60_000);
        await engine.subscribe(a, '/a/*');
        await engine.subscribe(b, '/**');
        await engine.subscribe(c, '/c');
        assert.equal(await engine.publish(expand('/a/b'), msg('/a/b', 1)), 2);
        await waitFor(() => host.woken().size >= 2, { timeout: 2000, what: 'wake(a, b)' });
        await sleep(30);
        assert.deepEqual(sorted(host.woken()), sorted([a, b]));
        host.clear();
        assert.equal(await engine.deliver(c, msg('/c', 1)), true);
        await waitFor(() => host.woken().size >= 1, { timeout: 2000, what: 'wake(c)' });
        await sleep(30);
        assert.deepEqual([...host.woken()], [c]);
      });

      it('deliver queues for one session; publish and deliver keep their order', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        const other = await session(engine);
        await engine.subscribe(id, '/a/b');
        await engine.subscribe(other, '/a/b');
        assert.equal(await engine.deliver(id, msg('/d', 1)), true);
        await engine.publish(expand('/a/b'), msg('/a/b', 2));
        assert.equal(await engine.deliver(id, msg('/d', 3)), true);
        assert.deepEqual((await engine.take(id))?.messages, [msg('/d', 1), msg('/a/b', 2), msg('/d', 3)]);
        assert.deepEqual((await engine.take(other))?.messages, [msg('/a/b', 2)]);
      });

      it('concurrent operations keep the order in which they were called', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        await engine.subscribe(id, '/n');
        const expected: string[] = [];
        const pending: Promise<unknown>[] = [];
        for (let i = 0; i < 100; i++) {
          const message = msg('/n', i);
          expected.push(message);
          pending.push(i % 2 ? engine.deliver(id, message) : engine.publish(expand('/n'), message));
        }
        await Promise.all(pending);
        assert.deepEqual((await engine.take(id))?.messages, expected);
      });

      it('messages are opaque: any JSON text comes back exactly', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        const texts = [
          msg('/u', 'héllo wörld ✓ 😀 \u2028 \u0000 "quoted" \\ back,slash'),
          msg('/u', { nested: [1, 2, { x: null }], comma: 'a,b,c' }),
          JSON.stringify('x'.repeat(512 * 1024)),
          '[]',
          '0',
        ];
        for (const text of texts) await engine.deliver(id, text);
        assert.deepEqual((await engine.take(id))?.messages, texts);
      });
    });

    describe('take', () => {
      it('without acks: returns the waiting messages in order and removes them', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        const empty = await engine.take(id);
        assert.deepEqual(empty, { messages: [], dropped: 0 });
        for (let i = 0; i < 3; i++) await engine.deliver(id, msg('/q', i));
        const first = await engine.take(id);
        assert.deepEqual(first?.messages, [msg('/q', 0), msg('/q', 1), msg('/q', 2)]);
        assert.equal(first?.batch, undefined);
        assert.equal(first?.dropped, 0);
        assert.deepEqual((await engine.take(id))?.messages, []);
        // An ack sent for a session without acks is ignored.
        await engine.deliver(id, msg('/q', 3));
        assert.deepEqual((await engine.take(id, 5))?.messages, [msg('/q', 3)]);
        assert.deepEqual((await engine.take(id, 5))?.messages, []);
      });

      it('with acks: unacknowledged messages come again, in order, until a take acknowledges their batch', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine, true);
        await engine.deliver(id, msg('/q', 1));
        await engine.deliver(id, msg('/q', 2));
        const r1 = await engine.take(id);
        assert.deepEqual(r1?.messages, [msg('/q', 1), msg('/q', 2)]);
        assert.equal(typeof r1?.batch, 'number');
        const b1 = r1?.batch as number;

        // Reply r1 was lost: the client still acknowledges an older batch.
        await engine.deliver(id, msg('/q', 3));
        const r2 = await engine.take(id, b1 - 1);
        assert.deepEqual(r2?.messages, [msg('/q', 1), msg('/q', 2), msg('/q', 3)]);
        const b2 = r2?.batch as number;
        assert.ok(b2 > b1, 'batch numbers grow');

        // The client got r1 but not r2: it acknowledges b1, which is older
        // than the batch every unacknowledged message now belongs to.
        const r3 = await engine.take(id, b1);
        assert.deepEqual(r3?.messages, [msg('/q', 1), msg('/q', 2), msg('/q', 3)]);
        const b3 = r3?.batch as number;
        assert.ok(b3 > b2);

        // No ack at all: everything again.
        const r4 = await engine.take(id);
        assert.deepEqual(r4?.messages, [msg('/q', 1), msg('/q', 2), msg('/q', 3)]);
        const b4 = r4?.batch as number;
        assert.ok(b4 > b3);

        // Acknowledged: dropped, only new messages follow.
        await engine.deliver(id, msg('/q', 4));
        const r5 = await engine.take(id, b4);
        assert.deepEqual(r5?.messages, [msg('/q', 4)]);
        const b5 = r5?.batch as number;
        assert.ok(b5 > b4);
        const r6 = await engine.take(id, b5);
        assert.deepEqual(r6?.messages, []);
        assert.ok((r6?.batch as number) > b5, 'an empty take has a batch too');
        assert.equal(r6?.dropped, 0);
      });

      it('with acks: published messages are kept the same way', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine, true);
        await engine.subscribe(id, '/p/**');
        await engine.publish(expand('/p/1'), msg('/p/1', 1));
        const r1 = await engine.take(id, 0);
        assert.deepEqual(r1?.messages, [msg('/p/1', 1)]);
        await engine.publish(expand('/p/2'), msg('/p/2', 2));
        const r2 = await engine.take(id, r1?.batch);
        assert.deepEqual(r2?.messages, [msg('/p/2', 2)]);
        const r3 = await engine.take(id, (r2?.batch as number) - 1);
        assert.deepEqual(r3?.messages, [msg('/p/2', 2)]);
      });

      it('with acks: many messages, unacknowledged and new, come back whole and in order', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine, true);
        await engine.deliver(id, msg('/m', 'first'));
        await engine.take(id);
        const expected = [msg('/m', 'first')];
        const pending: Promise<boolean>[] = [];
        for (let i = 0; i < 2500; i++) {
          const message = msg('/m', i);
          expected.push(message);
          pending.push(engine.deliver(id, message));
        }
        await Promise.all(pending);
        const result = await engine.take(id);
        assert.equal(result?.messages.length, expected.length);
        assert.deepEqual(result?.messages, expected);
      });

      it('maxQueue without acks: the oldest waiting messages are dropped and counted once', async (t) => {
        const { engine } = await setup(t, { maxQueue: 3 });
        const id = await session(engine);
        await engine.subscribe(id, '/q');
        for (let i = 1; i <= 5; i++) await engine.publish(expand('/q'), msg('/q', i));
        const r1 = await engine.take(id);
        assert.deepEqual(r1?.messages, [msg('/q', 3), msg('/q', 4), msg('/q', 5)]);
        assert.equal(r1?.dropped, 2);
        await engine.deliver(id, msg('/q', 6));
        const r2 = await engine.take(id);
        assert.deepEqual(r2, { messages: [msg('/q', 6)], dropped: 0 });
      });

      it('maxQueue with acks: unacknowledged messages count, and the oldest of them go first', async (t) => {
        const { engine } = await setup(t, { maxQueue: 3 });
        const id = await session(engine, true);
        await engine.deliver(id, msg('/q', 1));
        await engine.deliver(id, msg('/q', 2));
        const r1 = await engine.take(id);
        assert.deepEqual(r1?.messages, [msg('/q', 1), msg('/q', 2)]);
        assert.equal(r1?.dropped, 0);
        await engine.deliver(id, msg('/q', 3));
        await engine.deliver(id, msg('/q', 4));
        // Not acknowledged: 2 unacked + 2 new > 3, so message 1 went.
        const r2 = await engine.take(id);
        assert.deepEqual(r2?.messages, [msg('/q', 2), msg('/q', 3), msg('/q', 4)]);
        assert.equal(r2?.dropped, 1);
        // More than maxQueue new ones: every unacked one goes, then the oldest new ones.
        for (let i = 5; i <= 9; i++) await engine.deliver(id, msg('/q', i));
        const r3 = await engine.take(id, r2?.batch);
        assert.deepEqual(r3?.messages, [msg('/q', 7), msg('/q', 8), msg('/q', 9)]);
        assert.equal(r3?.dropped, 5);
        const r4 = await engine.take(id, r3?.batch);
        assert.deepEqual(r4?.messages, []);
        assert.equal(r4?.dropped, 0);
      });

      it('a session that never acknowledges stays within maxQueue', async (t) => {
        const { engine } = await setup(t, { maxQueue: 10 });
        const id = await session(engine, true);
        let dropped = 0;
        let last: string[] = [];
        for (let round = 0; round < 10; round++) {
          for (let i = 0; i < 7; i++) await engine.deliver(id, msg('/q', round * 7 + i));
          const result = await engine.take(id);
          assert.ok((result?.messages.length ?? 0) <= 10);
          dropped += result?.dropped ?? 0;
          last = result?.messages ?? [];
        }
        assert.equal(dropped, 70 - 10);
        assert.deepEqual(last, Array.from({ length: 10 }, (_, i) => msg('/q', 60 + i)));
      });
    });

    describe('takeMany', () => {
      /** The engine's takeMany, which every engine in this suite implements. */
      function takeManyOf(engine: Engine): (ids: readonly string[]) => Promise<Array<TakeResult | null>> {
        assert.equal(typeof engine.takeMany, 'function', 'the engine implements takeMany');
        return (ids) => (engine.takeMany as NonNullable<Engine['takeMany']>).call(engine, ids);
      }

      it('is implemented', async (t) => {
        const { engine } = await setup(t);
        takeManyOf(engine);
      });

      it('returns what take(id) would for each id, in order, for sessions with and without acks', async (t) => {
        const { engine } = await setup(t);
        // Twins: the same history; one is taken with take, the other with takeMany.
        const kinds = [
          { ack: false, before: 0, after: 3 },
          { ack: false, before: 0, after: 0 },
          { ack: true, before: 2, after: 1 },
          { ack: true, before: 0, after: 0 },
          { ack: true, before: 3, after: 0 },
        ];
        const viaTake: string[] = [];
        const viaMany: string[] = [];
        for (const [k, kind] of kinds.entries()) {
          for (const ids of [viaTake, viaMany]) {
            const id = await session(engine, kind.ack);
            for (let i = 0; i < kind.before; i++) await engine.deliver(id, msg('/k', `${k}.${i}`));
            // An acked session with an unacknowledged batch.
            if (kind.before > 0) await engine.take(id);
            for (let i = 0; i < kind.after; i++) await engine.deliver(id, msg('/k', `${k}.after.${i}`));
            ids.push(id);
          }
        }
        const expected = [];
        for (const id of viaTake) expected.push(await engine.take(id));
        const results = await takeManyOf(engine)(viaMany);
        assert.deepEqual(results, expected);
        assert.ok(expected.every((r) => r !== null));
        // Acked sessions came back with a batch, as take without an ack gives: unacknowledged messages again.
        assert.deepEqual(results[2]?.messages, [msg('/k', '2.0'), msg('/k', '2.1'), msg('/k', '2.after.0')]);
        assert.equal(typeof results[2]?.batch, 'number');
        assert.equal(results[0]?.batch, undefined);
        // And again: the queues without acks are empty, the acked ones come once more in a new batch.
        const again = await takeManyOf(engine)(viaMany);
        const expectedAgain = [];
        for (const id of viaTake) expectedAgain.push(await engine.take(id));
        assert.deepEqual(again, expectedAgain);
        assert.deepEqual(again[0], { messages: [], dropped: 0 });
        assert.ok((again[2]?.batch as number) > (results[2]?.batch as number));
      });

      it('keeps each session\'s order and the order of the ids; an id given twice is taken twice', async (t) => {
        const { engine } = await setup(t);
        const a = await session(engine);
        const b = await session(engine);
        const c = await session(engine);
        await engine.subscribe(a, '/o/**');
        await engine.subscribe(b, '/o/*');
        await engine.subscribe(c, '/o/x');
        const pending: Promise<unknown>[] = [];
        const all: string[] = [];
        for (let i = 0; i < 50; i++) {
          const message = msg('/o/x', i);
          all.push(message);
          pending.push(i % 5 === 4 ? engine.deliver(b, msg('/o/b', i)) : engine.publish(expand('/o/x'), message));
        }
        await Promise.all(pending);
        const published = all.filter((_, i) => i % 5 !== 4);
        const toB = all.map((_, i) => (i % 5 === 4 ? msg('/o/b', i) : all[i] as string));
        const results = await takeManyOf(engine)([c, a, b, a]);
        assert.deepEqual(results.map((r) => r?.messages), [published, published, toB, []]);
        assert.ok(results.every((r) => r?.dropped === 0));
      });

      it('unknown ids give null among known ones, without wakes or expiries', async (t) => {
        const { engine, host } = await setup(t);
        const a = await session(engine);
        const b = await session(engine, true);
        const destroyed = await session(engine);
        await engine.deliver(a, msg('/a', 1));
        await engine.deliver(b, msg('/b', 1));
        await engine.destroy(destroyed);
        // Their wakes (the destroy's through Pub/Sub on Redis) come before the ones this test looks for.
        await waitFor(() => [a, b, destroyed].every((id) => host.woken().has(id)), { timeout: 3000, what: 'the wakes of the delivers and the destroy' });
        host.clear();
        const ids = ['unknown', a, destroyed, '', b, 'x'.repeat(200), 'a:b{c}'];
        const results = await takeManyOf(engine)(ids);
        assert.equal(results.length, ids.length);
        assert.deepEqual(results[0], null);
        assert.deepEqual(results[1], { messages: [msg('/a', 1)], dropped: 0 });
        assert.deepEqual(results[2], null);
        assert.deepEqual(results[3], null);
        assert.deepEqual(results[4]?.messages, [msg('/b', 1)]);
        assert.deepEqual(results.slice(5), [null, null]);
        assert.deepEqual(await takeManyOf(engine)([]), []);
        assert.deepEqual(await takeManyOf(engine)(['unknown']), [null]);
        await sleep(30);
        assert.deepEqual(host.wakes, []);
        assert.deepEqual(host.expiredIds, []);
      });

      it('reports messages dropped by maxQueue per session, once', async (t) => {
        const { engine } = await setup(t, { maxQueue: 3 });
        const a = await session(engine);
        const b = await session(engine);
        const c = await session(engine, true);
        for (const id of [a, b, c]) await engine.subscribe(id, '/q');
        await engine.deliver(c, msg('/c', 0));
        await engine.take(c);
        for (let i = 1; i <= 5; i++) await engine.publish(expand('/q'), msg('/q', i));
        await engine.deliver(b, msg('/q', 6));
        const results = await takeManyOf(engine)([a, b, c]);
        assert.deepEqual(results[0], { messages: [msg('/q', 3), msg('/q', 4), msg('/q', 5)], dropped: 2 });
        assert.deepEqual(results[1], { messages: [msg('/q', 4), msg('/q', 5), msg('/q', 6)], dropped: 3 });
        // The acked session: its unacknowledged message went first.
        assert.deepEqual(results[2]?.messages, [msg('/q', 3), msg('/q', 4), msg('/q', 5)]);
        assert.equal(results[2]?.dropped, 3);
        const again = await takeManyOf(engine)([a, b, c]);
        assert.deepEqual(again.map((r) => r?.dropped), [0, 0, 0]);
        assert.deepEqual(again.slice(0, 2), [{ messages: [], dropped: 0 }, { messages: [], dropped: 0 }]);
      });

      it('a session past its deadline gives null and is reported expired once', async (t) => {
        // A sweep interval longer than the test: the expiry is found by takeMany.
        const { engine, host } = await setup(t, { sweepInterval: 60_000 });
        const gone = await session(engine, false, 50);
        const goneAcked = await session(engine, true, 50);
        const live = await session(engine);
        await engine.deliver(gone, msg('/g', 1));
        await engine.deliver(live, msg('/l', 1));
        await sleep(120);
        const results = await takeManyOf(engine)([gone, live, goneAcked, gone]);
        assert.deepEqual(results, [null, { messages: [msg('/l', 1)], dropped: 0 }, null, null]);
        assert.deepEqual(sorted(host.expiredIds), sorted([gone, goneAcked]));
        assert.deepEqual(await takeManyOf(engine)([gone, goneAcked]), [null, null]);
        assert.equal(await engine.take(gone), null);
        assert.deepEqual(sorted(host.expiredIds), sorted([gone, goneAcked]));
        assert.deepEqual(await engine.stats(), { sessions: 1, subscriptions: 0 });
      });

      it('thousands of ids and large queues come back whole, in order', async (t) => {
        const { engine } = await setup(t);
        const light = await Promise.all(Array.from({ length: 1000 }, () => session(engine)));
        await Promise.all(light.map((id) => engine.subscribe(id, '/light')));
        const heavy = await Promise.all(Array.from({ length: 3 }, () => session(engine)));
        await Promise.all(heavy.map((id) => engine.subscribe(id, '/heavy')));
        const lightMessages = [msg('/light', 1), msg('/light', 2), msg('/light', 3)];
        for (const message of lightMessages) assert.equal(await engine.publish(expand('/light'), message), 1000);
        const heavyMessages = Array.from({ length: 2500 }, (_, i) => msg('/heavy', i));
        await Promise.all(heavyMessages.map((message) => engine.publish(expand('/heavy'), message)));
        const ids = [
          ...light.slice(0, 100), heavy[0] as string, heavy[1] as string, ...light.slice(100, 200),
          heavy[2] as string, 'unknown', ...light.slice(200),
        ];
        const results = await takeManyOf(engine)(ids);
        assert.equal(results.length, ids.length);
        for (const [i, id] of ids.entries()) {
          const result = results[i];
          if (id === 'unknown') assert.equal(result, null);
          else if (heavy.includes(id)) assert.deepEqual(result, { messages: heavyMessages, dropped: 0 }, `heavy ${i}`);
          else assert.deepEqual(result, { messages: lightMessages, dropped: 0 }, `light ${i}`);
        }
        const again = await takeManyOf(engine)(ids);
        assert.ok(again.every((r, i) => (ids[i] === 'unknown' ? r === null : r?.messages.length === 0)));
      });
    });

    describe('limits', () => {
      it('maxQueueBytes: the oldest waiting messages go, counted in dropped; one long message alone stays', async (t) => {
        const { engine } = await setup(t, { maxQueueBytes: 100 });
        const id = await session(engine);
        await engine.subscribe(id, '/q');
        const m = (i: number) => msg('/q', `${i}`.padStart(20, '0'));
        // Each message is 44 characters: two fit in 100, three do not.
        for (let i = 1; i <= 5; i++) await engine.publish(expand('/q'), m(i));
        const r1 = await engine.take(id);
        assert.deepEqual(r1?.messages, [m(4), m(5)]);
        assert.equal(r1?.dropped, 3);
        const long = msg('/q', 'x'.repeat(500));
        await engine.deliver(id, m(6));
        await engine.deliver(id, long);
        assert.deepEqual(await engine.take(id), { messages: [long], dropped: 1 });
      });

      it('maxQueueBytes with acks: unacknowledged messages count', async (t) => {
        const { engine } = await setup(t, { maxQueueBytes: 100 });
        const id = await session(engine, true);
        const m = (i: number) => msg('/q', `${i}`.padStart(20, '0'));
        await engine.deliver(id, m(1));
        await engine.deliver(id, m(2));
        const r1 = await engine.take(id);
        assert.deepEqual(r1?.messages, [m(1), m(2)]);
        await engine.deliver(id, m(3));
        const r2 = await engine.take(id);
        assert.deepEqual(r2?.messages, [m(2), m(3)]);
        assert.equal(r2?.dropped, 1);
      });

      it('maxSubscriptions: a new pattern beyond it is refused with EngineLimitError, nothing changes', async (t) => {
        const { engine } = await setup(t, { maxSubscriptions: 2 });
        const id = await session(engine);
        assert.equal(await engine.subscribe(id, '/a'), true);
        assert.equal(await engine.subscribe(id, '/b'), true);
        // Again: not counted.
        assert.equal(await engine.subscribe(id, '/a'), true);
        await assert.rejects(engine.subscribe(id, '/c'), (err: unknown) => {
          assert.ok(err instanceof EngineLimitError);
          assert.equal(err.limit, 'maxSubscriptions');
          assert.equal(err.type, 'engine.limit');
          return true;
        });
        assert.deepEqual(sorted(await engine.subscriptions(id)), ['/a', '/b']);
        assert.deepEqual(await engine.subscribers('/c'), []);
        assert.equal(await engine.publish(expand('/c'), msg('/c', 1)), 0);
        await engine.unsubscribe(id, '/a');
        assert.equal(await engine.subscribe(id, '/c'), true);
        assert.deepEqual(await engine.stats(), { sessions: 1, subscriptions: 2 });
      });
    });

    describe('publish options and subscribers', () => {
      it('publish with except: those sessions get nothing and are not counted', async (t) => {
        const { engine, host } = await setup(t);
        const a = await session(engine);
        const b = await session(engine);
        const c = await session(engine);
        for (const id of [a, b, c]) {
          await engine.touch(id, 60_000);
          await engine.subscribe(id, '/e/**');
        }
        await engine.subscribe(a, '/e/x');
        await sleep(20);
        host.clear();
        assert.equal(await engine.publish(expand('/e/x'), msg('/e/x', 1), { except: [a, 'unknown'] }), 2);
        assert.equal(await engine.publish(expand('/e/x'), msg('/e/x', 2), { except: [a, b, c] }), 0);
        assert.equal(await engine.publish(expand('/e/x'), msg('/e/x', 3), { except: [] }), 3);
        await waitFor(() => host.woken().size >= 2, { timeout: 2000, what: 'wakes' });
        assert.deepEqual((await engine.take(a))?.messages, [msg('/e/x', 3)]);
        assert.deepEqual((await engine.take(b))?.messages, [msg('/e/x', 1), msg('/e/x', 3)]);
        assert.deepEqual((await engine.take(c))?.messages, [msg('/e/x', 1), msg('/e/x', 3)]);
      });

      it('subscribers lists the live sessions subscribed to exactly that pattern', async (t) => {
        const { engine } = await setup(t);
        const a = await session(engine);
        const b = await session(engine);
        const c = await session(engine);
        await engine.subscribe(a, '/s/x');
        await engine.subscribe(b, '/s/x');
        await engine.subscribe(c, '/s/*');
        assert.deepEqual(sorted(await engine.subscribers('/s/x')), sorted([a, b]));
        assert.deepEqual(await engine.subscribers('/s/*'), [c]);
        assert.deepEqual(await engine.subscribers('/s/y'), []);
        await engine.unsubscribe(a, '/s/x');
        await engine.destroy(b);
        assert.deepEqual(await engine.subscribers('/s/x'), []);
        assert.deepEqual(await engine.subscribers('/s/*'), [c]);
      });

      it('an expired session leaves the subscriber lists', async (t) => {
        const { engine, host } = await setup(t);
        const gone = await session(engine, false, 80);
        await engine.subscribe(gone, '/s/e');
        await waitFor(() => host.expiredIds.includes(gone), { timeout: 3000, what: 'expiry' });
        assert.deepEqual(await engine.subscribers('/s/e'), []);
      });
    });

    describe('session data', () => {
      it('get, set, delete and all; unknown sessions give null or false', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        assert.equal(await engine.getSessionData(id, 'k'), undefined);
        assert.deepEqual(await engine.allSessionData(id), new Map());
        assert.equal(await engine.setSessionData(id, 'k', '{"a":1}'), true);
        assert.equal(await engine.setSessionData(id, 'ü ✓', '"ö"'), true);
        assert.equal(await engine.getSessionData(id, 'k'), '{"a":1}');
        assert.deepEqual(await engine.allSessionData(id), new Map([['k', '{"a":1}'], ['ü ✓', '"ö"']]));
        assert.equal(await engine.setSessionData(id, 'k', undefined), true);
        assert.equal(await engine.setSessionData(id, 'never', undefined), true);
        assert.equal(await engine.getSessionData(id, 'k'), undefined);
        assert.deepEqual(await engine.allSessionData(id), new Map([['ü ✓', '"ö"']]));
        for (const unknown of ['unknown', '', 'a:b{c}']) {
          assert.equal(await engine.getSessionData(unknown, 'k'), null);
          assert.equal(await engine.setSessionData(unknown, 'k', '1'), false);
          assert.equal(await engine.allSessionData(unknown), null);
        }
        await engine.destroy(id);
        assert.equal(await engine.getSessionData(id, 'ü ✓'), null);
        assert.equal(await engine.allSessionData(id), null);
      });

      it('SessionOptions.data seeds it; maxSessionDataBytes counts keys plus values and refuses without changing anything', async (t) => {
        const { engine } = await setup(t, { maxSessionDataBytes: 20 });
        const id = await engine.createSession({ ack: false, ttl: 60_000, data: new Map([['user', '"ann"']]) });
        assert.equal(await engine.getSessionData(id, 'user'), '"ann"');
        // 'user' + '"ann"' = 9; 'n' + '1234567890' = 11: 20 in all, allowed.
        assert.equal(await engine.setSessionData(id, 'n', '1234567890'), true);
        await assert.rejects(engine.setSessionData(id, 'm', '1'), (err: unknown) => {
          assert.ok(err instanceof EngineLimitError);
          assert.equal(err.limit, 'maxSessionDataBytes');
          return true;
        });
        // Replacing a value counts the new size only.
        assert.equal(await engine.setSessionData(id, 'n', '123456789'), true);
        await assert.rejects(engine.setSessionData(id, 'n', '12345678901'), EngineLimitError);
        assert.equal(await engine.getSessionData(id, 'n'), '123456789');
        assert.equal(await engine.setSessionData(id, 'user', undefined), true);
        assert.equal(await engine.setSessionData(id, 'm', '"12345"'), true);
        assert.deepEqual(await engine.allSessionData(id), new Map([['n', '123456789'], ['m', '"12345"']]));
      });

      it('data goes with an expired session', async (t) => {
        const { engine, host } = await setup(t);
        const id = await engine.createSession({ ack: false, ttl: 80, data: new Map([['k', '1']]) });
        await waitFor(() => host.expiredIds.includes(id), { timeout: 3000, what: 'expiry' });
        assert.equal(await engine.getSessionData(id, 'k'), null);
      });
    });

    describe('destroy wakes the holder', () => {
      it('a destroyed session\'s holder is woken and its take gives null', async (t) => {
        const { engine, host } = await setup(t);
        const id = await session(engine);
        await engine.touch(id, 60_000);
        await engine.subscribe(id, '/w');
        await sleep(20);
        host.clear();
        assert.equal(await engine.destroy(id), true);
        await waitFor(() => host.woken().has(id), { timeout: 2000, what: 'wake on destroy' });
        assert.equal(await engine.take(id), null);
        assert.deepEqual(await engine.takeMany?.([id]), [null]);
        assert.equal(await engine.publish(expand('/w'), msg('/w', 1)), 0);
      });
    });

    describe('history', { skip: history ? false : `${name} keeps no channel history yet: the history cases are skipped` }, () => {
      const settings = { size: 5, ttl: 60_000 };
      /** A copy as the Server hands it to the engine for a history channel: the position goes before the final `}}`. */
      const marked = (channel: string, data: unknown) => JSON.stringify({ channel, data }).slice(0, -1) + ',"ext":{"position":}}';
      const kept = (channel: string) => ({ channel, ...settings, tail: 2 });
      const publishKept = (engine: Engine, channel: string, data: unknown) => engine.publish(expand(channel), marked(channel, data), { history: kept(channel) });
      const parse = (texts: readonly string[] | undefined) => (texts ?? []).map((t) => JSON.parse(t) as { data: unknown; ext: { position: { epoch: string; offset: number } } });
      const recover = (engine: Engine, id: string, channel: string, from: RecoverFrom) => (engine.recover as NonNullable<Engine['recover']>).call(engine, id, channel, from, settings);
      const read = (engine: Engine, channel: string, query: HistoryQuery = {}) => (engine.history as NonNullable<Engine['history']>).call(engine, channel, settings, query);

      it('a publish with history gets the next position spliced in before the tail, delivered and kept as one text', async (t) => {
        const { engine } = await setup(t);
        const id = await session(engine);
        await engine.subscribe(id, '/h/**');
        for (let i = 1; i <= 3; i++) assert.equal(await publishKept(engine, '/h/a', i), 1);
        await publishKept(engine, '/h/b', 'b');
        await engine.publish(expand('/h/a'), msg('/h/a', 'plain'));
        const texts = (await engine.take(id))?.messages ?? [];
        const [first, second, third, other, plain] = parse(texts);
        const epoch = first?.ext.position.epoch as string;
        assert.match(epoch, /^[A-Za-z0-9._~-]{1,64}$/);
        assert.deepEqual([first, second, third].map((m) => m?.ext.position), [1, 2, 3].map((offset) => ({ epoch, offset })));
        assert.equal(texts[0], JSON.stringify({ channel: '/h/a', data: 1 }).slice(0, -1) + `,"ext":{"position":{"epoch":"${epoch}","offset":1}}}`);
        assert.equal(other?.ext.position.offset, 1, 'offsets are per channel');
        assert.equal(texts[4], msg('/h/a', 'plain'), 'a publish without history is left as it is');
        assert.equal(plain?.data, 'plain');
        const history = await read(engine, '/h/a');
        assert.deepEqual({ epoch: history.epoch, offset: history.offset }, { epoch, offset: 3 });
        assert.deepEqual(history.messages, texts.slice(0, 3));
      });

      it('recover from a position queues what came after it, in order, before later publishes, and subscribes', async (t) => {
        const { engine, host } = await setup(t);
        const before = await session(engine);
        await engine.subscribe(before, '/h/a');
        for (let i = 1; i <= 4; i++) await publishKept(engine, '/h/a', i);
        const [, second] = parse((await engine.take(before))?.messages);
        const id = await session(engine);
        host.clear();
        const result = await recover(engine, id, '/h/a', second?.ext.position as HistoryPosition);
        assert.deepEqual(result, { recovered: true, epoch: second?.ext.position.epoch, offset: 4, missed: 2 });
        await waitFor(() => host.woken().has(id), { timeout: 3000, what: 'a wake for the recovered session' });
        await publishKept(engine, '/h/a', 5);
        assert.deepEqual(parse((await engine.take(id))?.messages).map((m) => m.data), [3, 4, 5]);
        assert.deepEqual(await engine.subscriptions(id), ['/h/a']);
      });

      it('recover and publishes issued together: each message once, in order', async (t) => {
        const { engine } = await setup(t);
        const listener = await session(engine);
        await engine.subscribe(listener, '/h/a');
        await publishKept(engine, '/h/a', 0);
        const [zero] = parse((await engine.take(listener))?.messages);
        const id = await session(engine);
        const publishes: Array<Promise<number>> = [];
        // At most size (5) before the recovery, so the position stays within what is kept.
        for (let i = 1; i <= 4; i++) publishes.push(publishKept(engine, '/h/a', i));
        const recovering = recover(engine, id, '/h/a', zero?.ext.position as HistoryPosition);
        for (let i = 5; i <= 20; i++) publishes.push(publishKept(engine, '/h/a', i));
        await Promise.all(publishes);
        assert.equal((await recovering)?.recovered, true);
        const data: unknown[] = [];
        for (let round = 0; round < 50 && data.length < 20; round++) {
          data.push(...parse((await engine.take(id))?.messages).map((m) => m.data));
          if (data.length < 20) await sleep(20);
        }
        assert.deepEqual(data, Array.from({ length: 20 }, (_, i) => i + 1));
      });

      it('recover { last } queues the newest kept; { last: 0 } none; a channel without history gets one at offset 0', async (t) => {
        const { engine } = await setup(t);
        for (let i = 1; i <= 7; i++) await publishKept(engine, '/h/a', i);
        const id = await session(engine);
        const result = await recover(engine, id, '/h/a', { last: 3 });
        assert.equal(result?.recovered, true);
        assert.equal(result?.missed, 3);
        assert.equal(result?.offset, 7);
        assert.deepEqual(parse((await engine.take(id))?.messages).map((m) => m.data), [5, 6, 7]);
        const all = await session(engine);
        assert.equal((await recover(engine, all, '/h/a', { last: 100 }))?.missed, settings.size, 'at most size are kept');
        const fresh = await session(engine);
        const empty = await recover(engine, fresh, '/h/new', { last: 0 });
        assert.equal(empty?.recovered, true);
        assert.equal(empty?.offset, 0);
        assert.equal(empty?.missed, 0);
        await publishKept(engine, '/h/new', 'first');
        const [first] = parse((await engine.take(fresh))?.messages);
        assert.deepEqual(first?.ext.position, { epoch: empty?.epoch, offset: 1 }, 'the position recover answered is where the channel goes on');
      });

      it('recover from another epoch, or from before what is kept, queues nothing: recovered false, still subscribed', async (t) => {
        const { engine } = await setup(t);
        for (let i = 1; i <= 8; i++) await publishKept(engine, '/h/a', i);
        const { epoch } = await read(engine, '/h/a');
        const cases: Array<[string, RecoverFrom]> = [
          ['another epoch', { epoch: 'not-this-one', offset: 7 }],
          ['trimmed by size', { epoch, offset: 1 }],
          ['from the future', { epoch, offset: 9 }],
        ];
        for (const [what, from] of cases) {
          const id = await session(engine);
          assert.deepEqual(await recover(engine, id, '/h/a', from), { recovered: false, epoch, offset: 8, missed: 0 }, what);
          assert.deepEqual((await engine.take(id))?.messages, [], what);
          assert.deepEqual(await engine.subscriptions(id), ['/h/a'], what);
        }
        const edge = await session(engine);
        assert.deepEqual(await recover(engine, edge, '/h/a', { epoch, offset: 3 }), { recovered: true, epoch, offset: 8, missed: 5 }, 'the oldest kept is 4');
      });

      it('recover: null for an unknown session, EngineLimitError at maxSubscriptions', async (t) => {
        const { engine } = await setup(t, { maxSubscriptions: 1 });
        assert.equal(await recover(engine, 'no-such-session', '/h/a', { last: 1 }), null);
        const id = await session(engine);
        await engine.subscribe(id, '/other');
        await assert.rejects(recover(engine, id, '/h/a', { last: 1 }), EngineLimitError);
        assert.deepEqual(await engine.subscriptions(id), ['/other']);
      });

      it('history: since and limit', async (t) => {
        const { engine } = await setup(t);
        for (let i = 1; i <= 5; i++) await publishKept(engine, '/h/a', i);
        const all = await read(engine, '/h/a');
        const data = async (query: HistoryQuery) => parse((await read(engine, '/h/a', query)).messages).map((m) => m.data);
        assert.deepEqual(await data({}), [1, 2, 3, 4, 5]);
        assert.deepEqual(await data({ limit: 2 }), [4, 5], 'without since: the newest');
        assert.deepEqual(await data({ since: { epoch: all.epoch, offset: 1 } }), [2, 3, 4, 5]);
        assert.deepEqual(await data({ since: { epoch: all.epoch, offset: 1 }, limit: 2 }), [2, 3], 'with since: the oldest after it');
        assert.deepEqual(await data({ since: { epoch: all.epoch, offset: 5 } }), []);
        assert.deepEqual(await data({ since: { epoch: 'other', offset: 4 } }), [1, 2, 3, 4, 5], 'another epoch: everything kept');
        assert.deepEqual(await data({ limit: 0 }), []);
        const none = await read(engine, '/h/none');
        assert.equal(none.offset, 0);
        assert.deepEqual(none.messages, []);
      });

      it('a message older than ttl is no longer kept, and a channel idle past it keeps nothing', async (t) => {
        const { engine } = await setup(t);
        const short = { size: 5, ttl: 100 };
        await engine.publish(expand('/h/t'), marked('/h/t', 1), { history: { channel: '/h/t', ...short, tail: 2 } });
        await sleep(300);
        const later = await (engine.history as NonNullable<Engine['history']>).call(engine, '/h/t', short, {});
        assert.deepEqual(later.messages, []);
        const id = await session(engine);
        const result = await (engine.recover as NonNullable<Engine['recover']>).call(engine, id, '/h/t', { last: 5 }, short);
        assert.equal(result?.missed, 0);
      });
    });

    describe('presence', { skip: presence ? false : `${name} keeps no presence: the presence cases are skipped` }, () => {
      const present = (engine: Engine, channel: string) => (engine.presence as NonNullable<Engine['presence']>).call(engine, channel, 1000);
      const count = (engine: Engine, channel: string) => (engine.presenceCount as NonNullable<Engine['presenceCount']>).call(engine, channel);
      const sessionsOf = (engine: Engine, user: string) => (engine.userSessions as NonNullable<Engine['userSessions']>).call(engine, user);

      it('a user\'s first session joins, its last leaves (unsubscribe, destroy); anonymous sessions each join and leave', async (t) => {
        const { engine, host } = await setup(t);
        const ids = [];
        for (let i = 0; i < 3; i++) ids.push(await engine.createSession({ ack: false, ttl: 10_000, user: 'alice' }));
        const [a1, a2, a3] = ids as [string, string, string];
        const anon = await session(engine);
        const info = JSON.stringify({ name: 'Alice' });
        for (const id of ids) assert.equal(await engine.subscribe(id, '/p/room', { presence: { user: 'alice', info } }), true);
        assert.equal(await engine.subscribe(anon, '/p/room', { presence: {} }), true);
        assert.equal(await engine.subscribe(a1, '/p/room', { presence: { user: 'alice', info } }), true, 'again: no second join');
        await engine.subscribe(a1, '/p/other');
        assert.deepEqual(host.presences, [`join /p/room alice ${a1}`, `join /p/room - ${anon}`]);
        assert.deepEqual(host.versions, [1, 2], 'each join or leave raises the channel\'s version');
        const entries = await present(engine, '/p/room');
        assert.deepEqual(sorted(entries.map((e) => `${e.clientId} ${e.user ?? '-'} ${e.info ?? '-'}`)), sorted([...ids.map((id) => `${id} alice ${info}`), `${anon} - -`]));
        assert.deepEqual(await count(engine, '/p/room'), { users: 2, clients: 4, version: 2 });
        assert.deepEqual(await present(engine, '/p/other'), [], 'a subscription without presence is not present');
        assert.equal((await present(engine, '/p/room')).length, 4);
        assert.equal((await (engine.presence as NonNullable<Engine['presence']>).call(engine, '/p/room', 2)).length, 2, 'limit');
        assert.deepEqual(sorted(await sessionsOf(engine, 'alice')), sorted(ids));
        assert.deepEqual(await sessionsOf(engine, 'nobody'), []);
        host.presences.length = 0;
        host.versions.length = 0;
        await engine.unsubscribe(a1, '/p/room');
        await engine.destroy(a2);
        assert.deepEqual(host.presences, [], 'two of three sessions gone: no leave');
        assert.deepEqual(await count(engine, '/p/room'), { users: 2, clients: 2, version: 2 });
        await engine.destroy(a3);
        await engine.unsubscribe(anon, '/p/room');
        await waitFor(() => host.presences.length === 2, { timeout: 3000, what: 'two leaves' });
        assert.deepEqual(host.presences, [`leave /p/room alice ${a3}`, `leave /p/room - ${anon}`]);
        assert.deepEqual(host.versions, [3, 4]);
        assert.deepEqual(await count(engine, '/p/room'), { users: 0, clients: 0, version: 0 }, 'no one present: the version starts again');
        assert.deepEqual(await present(engine, '/p/room'), []);
        assert.deepEqual(await sessionsOf(engine, 'alice'), [a1]);
      });

      it('an expired session leaves once and leaves the user\'s sessions', async (t) => {
        const { engine, host } = await setup(t);
        // A short ttl set once subscribed: made with ttl 100, a loaded machine expired it before its subscriptions.
        const id = await engine.createSession({ ack: false, ttl: 60_000, user: 'bob' });
        assert.equal(await engine.subscribe(id, '/p/x', { presence: { user: 'bob' } }), true);
        assert.equal(await engine.subscribe(id, '/p/y', { presence: { user: 'bob' } }), true);
        assert.equal(await engine.touch(id, 100), true);
        await waitFor(() => host.expiredIds.includes(id), { timeout: 5000, what: 'the expiry' });
        await waitFor(() => host.presences.length === 4, { timeout: 3000, what: 'the leaves' });
        await sleep(100);
        assert.deepEqual(sorted(host.presences), sorted([`join /p/x bob ${id}`, `join /p/y bob ${id}`, `leave /p/x bob ${id}`, `leave /p/y bob ${id}`]));
        assert.deepEqual(await sessionsOf(engine, 'bob'), []);
        assert.deepEqual(await count(engine, '/p/x'), { users: 0, clients: 0, version: 0 });
      });

      it('recover with presence joins as subscribe does', { skip: history ? false : 'no history' }, async (t) => {
        const { engine, host } = await setup(t);
        const id = await engine.createSession({ ack: false, ttl: 10_000, user: 'cy' });
        const recover = engine.recover as NonNullable<Engine['recover']>;
        const result = await recover.call(engine, id, '/p/h', { last: 0 }, { size: 10, ttl: 60_000 }, { presence: { user: 'cy' } });
        assert.equal(result?.recovered, true);
        assert.deepEqual(host.presences, [`join /p/h cy ${id}`]);
        assert.deepEqual(await count(engine, '/p/h'), { users: 1, clients: 1, version: 1 });
      });
    });

    describe('stats and unknown sessions', () => {
      it('stats counts sessions and subscriptions', async (t) => {
        const { engine } = await setup(t);
        assert.deepEqual(await engine.stats(), { sessions: 0, subscriptions: 0 });
        const a = await session(engine);
        const b = await session(engine, true);
        await engine.subscribe(a, '/a');
        await engine.subscribe(a, '/b/**');
        await engine.subscribe(a, '/a');
        await engine.subscribe(b, '/a');
        assert.deepEqual(await engine.stats(), { sessions: 2, subscriptions: 3 });
        await engine.unsubscribe(a, '/a');
        await engine.unsubscribe(a, '/never');
        assert.deepEqual(await engine.stats(), { sessions: 2, subscriptions: 2 });
        await engine.destroy(a);
        assert.deepEqual(await engine.stats(), { sessions: 1, subscriptions: 1 });
      });

      it('every operation on an unknown session fails softly and wakes nobody', async (t) => {
        const { engine, host } = await setup(t);
        const destroyed = await session(engine);
        await engine.destroy(destroyed);
        // destroy() wakes the node holding the session, so it learns the session is gone (on Redis, through Pub/Sub).
        await waitFor(() => host.wakes.flat().includes(destroyed), { timeout: 3000, what: 'the wake of destroy()' });
        await sleep(30);
        assert.deepEqual([...new Set(host.wakes.flat())], [destroyed]);
        host.wakes.length = 0;
        for (const id of ['unknown', destroyed, '', 'x'.repeat(200), '/a/b', '*', 'a:b{c}']) {
          assert.equal(await engine.exists(id), false, `exists(${id})`);
          assert.equal(await engine.touch(id, 1000), false, `touch(${id})`);
          assert.equal(await engine.subscribe(id, '/a'), false, `subscribe(${id})`);
          assert.equal(await engine.unsubscribe(id, '/a'), false, `unsubscribe(${id})`);
          assert.deepEqual(await engine.subscriptions(id), [], `subscriptions(${id})`);
          assert.equal(await engine.deliver(id, msg('/a', 1)), false, `deliver(${id})`);
          assert.equal(await engine.take(id), null, `take(${id})`);
          assert.equal(await engine.take(id, 1), null, `take(${id}, 1)`);
          assert.equal(await engine.destroy(id), false, `destroy(${id})`);
        }
        assert.equal(await engine.publish(expand('/a'), msg('/a', 1)), 0);
        await sleep(30);
        assert.deepEqual(host.wakes, []);
        assert.deepEqual(host.expiredIds, []);
        assert.deepEqual(await engine.stats(), { sessions: 0, subscriptions: 0 });
      });
    });
  });
}
