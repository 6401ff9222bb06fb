/**
 * `maxMessageBytes` bounds every message queued for subscribers, however it
 * enters (issue #25): a client's publish, `cometd.publish()` and
 * `cometd.deliver()`. An oversized one is refused with
 * `413:<max>:message_too_large` and queued for no one (no subscriber, no
 * in-process subscriber, no `publish` event), measured in UTF-8 bytes after
 * the outgoing hooks. Real HTTP server on 127.0.0.1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BayeuxError } from '../lib/index.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { openWire, type Wire, wireSession } from './helpers/wire.js';

const MAX = 4096;

/** Data whose message text (`{"channel":"/big","data":"..."}`) is `bytes` long in UTF-8, for ASCII filler. */
function filler(bytes: number): string {
  return 'x'.repeat(bytes - JSON.stringify({ channel: '/big', data: '' }).length);
}

function isTooLarge(err: unknown): boolean {
  return err instanceof BayeuxError && err.code === 413 && err.toString() === `413:${MAX}:message_too_large`;
}

describe('maxMessageBytes', () => {
  let s: TestServer;
  let publisher: Wire;
  let subscriber: Wire;
  let pub: string;
  let sub: string;
  const seenInProcess: unknown[] = [];
  const publishEvents: string[] = [];
  const deliverEvents: string[] = [];

  before(async () => {
    s = await startServer({ maxMessageBytes: MAX });
    s.cometd.subscribe('/big', (data) => seenInProcess.push(data));
    s.cometd.on('publish', (_client, channel) => publishEvents.push(channel));
    s.cometd.on('deliver', (_client, channel) => deliverEvents.push(channel));
    publisher = await openWire('long-polling', s.url);
    subscriber = await openWire('long-polling', s.url);
    pub = await wireSession(publisher);
    sub = await wireSession(subscriber);
    const [ok] = await subscriber.send({ channel: '/meta/subscribe', clientId: sub, subscription: '/big' });
    assert.equal(ok?.['successful'], true);
  });
  after(() => s.close());

  /** What the subscriber has waiting, taken with an immediately answered connect. */
  async function drain(): Promise<unknown[]> {
    const before = subscriber.delivered.length;
    const [reply] = await subscriber.send({ channel: '/meta/connect', clientId: sub, connectionType: 'long-polling', advice: { timeout: 0 } });
    assert.equal(reply?.['successful'], true);
    return subscriber.delivered.slice(before).map((m) => m['data']);
  }

  test('cometd.publish(): over the limit rejects with 413 and nothing is queued; at the limit it goes out', async () => {
    publishEvents.length = 0;
    seenInProcess.length = 0;
    await assert.rejects(s.cometd.publish('/big', filler(MAX + 1)), isTooLarge);
    await assert.rejects(s.cometd.publish('/big', filler(10 * MAX)), isTooLarge);
    // Fewer characters than the limit, more bytes: 'é' is two bytes in UTF-8.
    await assert.rejects(s.cometd.publish('/big', 'é'.repeat(MAX / 2)), isTooLarge);
    assert.deepEqual(await drain(), []);
    assert.deepEqual(seenInProcess, []);
    assert.deepEqual(publishEvents, []);
    const fits = filler(MAX);
    assert.equal(await s.cometd.publish('/big', fits), 2, 'the subscriber and the in-process subscriber');
    assert.deepEqual(await drain(), [fits]);
  });

  test('cometd.deliver(): over the limit rejects with 413 and nothing is queued', async () => {
    deliverEvents.length = 0;
    await assert.rejects(s.cometd.deliver(sub, '/big', filler(MAX + 1)), isTooLarge);
    assert.deepEqual(await drain(), []);
    assert.deepEqual(deliverEvents, []);
    assert.equal(await s.cometd.deliver(sub, '/big', 'small'), true);
    assert.deepEqual(await drain(), ['small']);
  });

  test("a client's publish over the limit is refused with 413; the rest of its batch goes through", async () => {
    publishEvents.length = 0;
    const replies = await publisher.send([
      { channel: '/big', clientId: pub, data: filler(MAX + 100) },
      { channel: '/big', clientId: pub, data: 'after' },
    ]);
    assert.equal(replies[0]?.['successful'], false);
    assert.equal(replies[0]?.['error'], `413:${MAX}:message_too_large`);
    assert.equal(replies[1]?.['successful'], true);
    assert.deepEqual(await drain(), ['after']);
    assert.deepEqual(publishEvents, ['/big']);
  });

  test('measured after the outgoing hooks: a hook that makes a message too large refuses it', async () => {
    const t = await startServer({ maxMessageBytes: MAX });
    try {
      t.cometd.outgoing((message) => (message.channel === '/grow' ? { ...message, data: filler(MAX) } : message));
      await assert.rejects(t.cometd.publish('/grow', 'small'), isTooLarge);
      assert.equal(await t.cometd.publish('/other', 'small'), 0);
    } finally {
      await t.close();
    }
  });

  test('the default is maxBodyBytes: a server-side publish the size of a whole request body is refused', async () => {
    const t = await startServer({ maxBodyBytes: 65_536 });
    try {
      await assert.rejects(t.cometd.publish('/big', 'x'.repeat(65_536)), (err: unknown) => err instanceof BayeuxError && err.toString() === '413:65536:message_too_large');
      assert.equal(await t.cometd.publish('/big', 'x'.repeat(60_000)), 0);
    } finally {
      await t.close();
    }
  });
});
