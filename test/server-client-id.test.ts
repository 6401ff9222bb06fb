/**
 * A clientId's form is checked before it reaches an engine (issue #27):
 * ids that are not of the engine's shape (`deadlines`, `<ownId>:data`,
 * very long ids, ids with `{`, `}`, `:` or spaces) get `402::session_unknown`
 * with handshake advice on every message, nothing is logged, nothing is
 * queued, and the server keeps serving. On Redis, `deadlines` used to hit an
 * internal sorted set (WRONGTYPE: a 500 and one error line per message) and
 * `<ownId>:data` was taken for a live session. Real HTTP, real WebSockets,
 * real redis-server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isClientId, isPlausibleClientId, newClientId } from '../lib/engines/client-id.js';
import { MemoryEngine } from '../lib/engines/memory.js';
import type { PublishOptions } from '../lib/engines/engine.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { bucketOf } from '../lib/engines/redis/keys.js';
import type { BayeuxOptions, Logger } from '../lib/options.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { announceRedisSkip, findRedisServer, startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { openWire, type Msg, wireSession } from './helpers/wire.js';
import { testChannelLogs } from './helpers/channel-logs.js';

class RecordingLogger implements Logger {
  readonly lines: string[] = [];
  error(message: string): void {
    this.lines.push(`error: ${message}`);
  }
  warn(message: string): void {
    this.lines.push(`warn: ${message}`);
  }
  info(): void {}
  debug(): void {}
  /** Error and warning lines. */
  get trouble(): string[] {
    return this.lines;
  }
}

test('isClientId: exactly what newClientId makes', () => {
  for (let i = 0; i < 50; i++) assert.ok(isClientId(newClientId()));
  const id = newClientId();
  for (const bad of ['', 'deadlines', id + ':data', id + 'x', id.slice(1), `{${id.slice(2)}}`, id.slice(1) + ' ', id.slice(1) + '.', 42, null, undefined]) {
    assert.equal(isClientId(bad), false, JSON.stringify(bad));
  }
});

test('isPlausibleClientId: 22 to 128 URL-safe characters (hex, UUIDs, base36, base64url)', () => {
  for (const good of [newClientId(), 'a'.repeat(22), 'f'.repeat(32), '0f8fad5b-d9cb-469f-a165-70867728950e', 'abc.def~ghi_jkl-mno123456', 'x'.repeat(128)]) {
    assert.ok(isPlausibleClientId(good), good);
  }
  for (const bad of ['deadlines', 'a'.repeat(21), 'x'.repeat(129), `${newClientId()}:data`, `{s1}${'a'.repeat(30)}`, `${'a'.repeat(30)} b`, 'a/'.repeat(20), 'é'.repeat(30)]) {
    assert.equal(isPlausibleClientId(bad), false, bad);
  }
});

/** The ids a client may send that are no session's; `own` is a live session's id. */
function badIds(own: string): string[] {
  return [
    'deadlines',
    'stats',
    `${own}:data`,
    `${own}:subs`,
    'x'.repeat(15_000),
    `{s3}${own}`,
    `${own}}`,
    `${own} `,
    `a b c d e f g h i j k l m n`,
    own.slice(0, 26) + ':',
    '',
  ];
}

async function suite(name: string, makeEngine: () => BayeuxOptions['engine'] | Promise<BayeuxOptions['engine']>): Promise<void> {
  describe(`clientIds not of the engine's form (${name})`, () => {
    let s: TestServer;
    let logger: RecordingLogger;
    before(async () => {
      logger = new RecordingLogger();
      s = await startServer({ engine: await makeEngine(), logger });
    });
    after(() => s.close());

    test('every message gets 402::session_unknown with handshake advice; no log line; the server keeps serving', async () => {
      const wire = await openWire('long-polling', s.url);
      const subscriber = await openWire('long-polling', s.url);
      // Handshake until one session lands in the Redis bucket named by "deadlines" (a sorted set there then).
      let own = await wireSession(wire);
      for (let i = 0; i < 200 && bucketOf(own) !== bucketOf('deadlines'); i++) own = await wireSession(wire);
      const sub = await wireSession(subscriber);
      const [subscribed] = await subscriber.send({ channel: '/meta/subscribe', clientId: sub, subscription: '/chat/**' });
      assert.equal(subscribed?.['successful'], true);
      // "<own>:data" would be a live session on Redis if the data hash had a future "d" field.
      await s.cometd.session(own).set('d', 9_000_000_000_000_000);
      assert.equal(await s.cometd.session(own).get('d'), 9_000_000_000_000_000);

      for (const bad of badIds(own)) {
        const messages: Msg[] = [];
        for (let i = 0; i < 50; i++) messages.push({ channel: '/chat/a', clientId: bad, data: { i } });
        messages.push(
          { channel: '/meta/connect', clientId: bad, connectionType: 'long-polling' },
          { channel: '/meta/subscribe', clientId: bad, subscription: '/chat/b' },
          { channel: '/meta/unsubscribe', clientId: bad, subscription: '/chat/b' },
          { channel: '/service/echo', clientId: bad, data: 1 },
          { channel: '/meta/disconnect', clientId: bad },
        );
        const replies = await wire.send(messages);
        assert.equal(replies.length, messages.length);
        for (const reply of replies) {
          assert.equal(reply['successful'], false, `${bad.slice(0, 40)}: ${JSON.stringify(reply).slice(0, 200)}`);
          assert.equal(reply['error'], '402::session_unknown', `${bad.slice(0, 40)} on ${String(reply['channel'])}`);
          assert.equal(reply['advice']?.reconnect, 'handshake');
        }
      }
      assert.deepEqual(logger.trouble, [], 'no error or warning lines');

      // Nothing was queued for the subscriber, and the server still serves: its own publish arrives alone.
      const [published] = await wire.send({ channel: '/chat/a', clientId: own, data: 'real' });
      assert.equal(published?.['successful'], true);
      const [connected] = await subscriber.send({ channel: '/meta/connect', clientId: sub, connectionType: 'long-polling', advice: { timeout: 0 } });
      assert.equal(connected?.['successful'], true);
      assert.deepEqual(subscriber.delivered.map((m) => m['data']), ['real']);
      assert.equal(await s.cometd.session(own).get('d'), 9_000_000_000_000_000, 'the real session is untouched');
    });

    test('over WebSocket too', async () => {
      const ws = await openWire('websocket', s.url);
      try {
        const replies = await ws.send([
          { channel: '/meta/connect', clientId: 'deadlines', connectionType: 'websocket' },
          { channel: '/chat/a', clientId: 'deadlines', data: 1 },
          { channel: '/meta/subscribe', clientId: '{s1}:x', subscription: '/chat/b' },
        ]);
        for (const reply of replies) assert.equal(reply['error'], '402::session_unknown');
        assert.deepEqual(logger.trouble, []);
      } finally {
        ws.close();
      }
    });

    test('the server-side API treats them as unknown sessions', async () => {
      for (const bad of ['deadlines', 'stats:x', 'x'.repeat(10_000), '{s1} a']) {
        assert.equal(await s.cometd.deliver(bad, '/chat/a', 1), false);
        assert.equal(await s.cometd.join(bad, '/chat/a'), false);
        assert.equal(await s.cometd.join(bad, '/service/x'), false);
        assert.equal(await s.cometd.leave(bad, '/chat/a'), false);
        assert.equal(await s.cometd.disconnect(bad), false);
        await assert.rejects(s.cometd.session(bad).get('d'), /402::session_unknown/);
        await assert.rejects(s.cometd.session(bad).set('d', 1), /402::session_unknown/);
        await assert.rejects(s.cometd.session(bad).all(), /402::session_unknown/);
      }
      assert.deepEqual(logger.trouble, []);
    });
  });
}

await suite('memory', () => new MemoryEngine());

/** A third-party engine that issues ids of its own shape and says so with `isClientId`. */
class PrefixedEngine extends MemoryEngine {
  /** Calls that asked the engine about a client's session: exists, or a publish it checks (`publisher`). */
  existsCalls = 0;
  override async exists(clientId: string): Promise<boolean> {
    this.existsCalls++;
    return super.exists(clientId);
  }
  override async publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number> {
    if (options?.publisher !== undefined) this.existsCalls++;
    return super.publish(patterns, message, options);
  }
  override isClientId(clientId: string): boolean {
    if (clientId === 'throws') throw new Error('a bug in isClientId');
    return isClientId(clientId);
  }
}

describe('Engine.isClientId: an engine declares the shape of its ids', () => {
  test('ids the engine refuses never reach it; one that throws counts as refused', async () => {
    const engine = new PrefixedEngine();
    const logger = new RecordingLogger();
    const s = await startServer({ engine, logger });
    try {
      const wire = await openWire('long-polling', s.url);
      const own = await wireSession(wire);
      const before = engine.existsCalls;
      // Plausible in general (32 URL-safe characters), but not this engine's shape.
      for (const bad of ['f'.repeat(32), 'throws']) {
        const [reply] = await wire.send({ channel: '/chat/a', clientId: bad, data: 1 });
        assert.equal(reply?.['error'], '402::session_unknown');
      }
      assert.equal(engine.existsCalls, before, 'the engine was not asked');
      const [ok] = await wire.send({ channel: '/chat/a', clientId: own, data: 1 });
      assert.equal(ok?.['successful'], true);
      assert.equal(engine.existsCalls, before + 1);
      assert.deepEqual(logger.trouble, []);
    } finally {
      await s.close();
    }
  });
});

if (!findRedisServer()) {
  const message = announceRedisSkip();
  test('clientIds on Redis', { skip: message }, () => {});
} else {
  let redis: RedisServer | undefined;
  let n = 0;
  after(() => redis?.stop());
  await suite('redis', async () => {
    redis ??= await startRedisServer();
    return new RedisEngine({ url: redis.url }, { reconnectMaxDelay: 100, commandTimeout: 2000, openTimeout: 3000, prefix: `cid-${process.pid}-${++n}:`, ...testChannelLogs() });
  });
}
