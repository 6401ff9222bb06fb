/**
 * The client's pure parts (channel names are in channel.test.ts): error strings, options, the
 * emitter, and the ack tracker that drops redelivered copies.
 */

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { AckTracker } from '../lib/client/ack.js';
import { TypedEmitter } from '../lib/client/emitter.js';
import { BayeuxClient, BayeuxClientError, BayeuxError, type BayeuxMessage } from '../lib/client/index.js';

describe('BayeuxError', () => {
  test('parses code:args:message', () => {
    const error = BayeuxError.parse('403:/a,/b:Forbidden: really');
    assert.equal(error.code, 403);
    assert.deepEqual(error.args, ['/a', '/b']);
    assert.equal(error.message, 'Forbidden: really');
    assert.equal(error.name, 'BayeuxError');
    assert.ok(error instanceof Error);
    assert.equal(String(error), '403:/a,/b:Forbidden: really');

    const noArgs = BayeuxError.parse('402::session_unknown');
    assert.equal(noArgs.code, 402);
    assert.deepEqual(noArgs.args, []);
    assert.equal(noArgs.message, 'session_unknown');

    const odd = BayeuxError.parse('something broke');
    assert.equal(odd.code, 0);
    assert.equal(odd.message, 'something broke');
    assert.equal(BayeuxError.parse(undefined).message, 'Unknown error');
  });
});

describe('options', () => {
  test('unknown and bad options throw a TypeError naming the option', () => {
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { bogus: 1 } as never), /Unknown option: bogus/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { transports: [] }), /transports/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { transports: ['carrier-pigeon' as never] }), /transports/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { retryDelay: -1 }), /retryDelay/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { retryDelay: 100, maxRetryDelay: 10 }), /maxRetryDelay/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { maxQueue: 0 }), /maxQueue/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { ack: 'yes' as never }), /ack/);
    assert.throws(() => new BayeuxClient('http://127.0.0.1:1/x', { onError: 1 as never }), /onError/);
    assert.throws(() => new BayeuxClient('ftp://127.0.0.1/x'), TypeError);
    assert.throws(() => new BayeuxClient('not a url'), TypeError);
  });

  test('a new client is disconnected and touches nothing', () => {
    const client = new BayeuxClient('http://127.0.0.1:1/cometd');
    assert.equal(client.state, 'disconnected');
    assert.equal(client.clientId, undefined);
    assert.equal(client.transport, undefined);
    assert.equal(client.url, 'http://127.0.0.1:1/cometd');
  });

  test('invalid channels reject before any network use', async () => {
    const failed: BayeuxMessage[] = [];
    const client = new BayeuxClient('http://127.0.0.1:1/cometd', { onError: (message) => failed.push(message) });
    const error = await client.publish('/a/*', 1).catch((e: unknown) => e);
    assert.ok(error instanceof BayeuxError);
    assert.equal(error.code, 405);
    assert.equal(client.state, 'disconnected');
    assert.deepEqual(failed, [{ channel: '/a/*', data: 1, successful: false, error: '405:/a/*:Invalid channel' }]);
    await assert.rejects(client.publish('/a', undefined), TypeError);
    await client.disconnect();
  });
});

describe('TypedEmitter', () => {
  class Emitter extends TypedEmitter<{ tick: [n: number]; done: [] }> {
    fire(n: number): boolean {
      return this.emit('tick', n);
    }
  }

  test('on, once, off and the remover', () => {
    const emitter = new Emitter();
    const seen: string[] = [];
    const off = emitter.on('tick', (n) => seen.push(`on ${n}`));
    emitter.once('tick', (n) => seen.push(`once ${n}`));
    const listener = (n: number) => seen.push(`other ${n}`);
    emitter.on('tick', listener);
    assert.equal(emitter.listenerCount('tick'), 3);
    emitter.fire(1);
    emitter.off('tick', listener);
    emitter.fire(2);
    off();
    assert.equal(emitter.fire(3), false);
    assert.deepEqual(seen, ['on 1', 'once 1', 'other 1', 'on 2']);
  });
});

describe('AckTracker', () => {
  const delivery = (id: string, data: unknown): BayeuxMessage => ({ channel: '/a', id, data });
  const connectReply = (batch: number | undefined): BayeuxMessage => ({
    channel: '/meta/connect', successful: true, ...(batch === undefined ? {} : { ext: { ack: batch } }),
  });

  test('speaks the CometD wire format', () => {
    const ack = new AckTracker(true);
    const handshake: BayeuxMessage = { channel: '/meta/handshake' };
    ack.outgoingHandshake(handshake);
    assert.deepEqual(handshake.ext, { ack: true });
    ack.incomingHandshake({ channel: '/meta/handshake', successful: true, ext: { ack: true } });
    assert.equal(ack.enabled, true);
    const connect: BayeuxMessage = { channel: '/meta/connect' };
    assert.equal(ack.outgoingConnect(connect), -1);
    assert.deepEqual(connect.ext, { ack: -1 });
    ack.incomingConnect(connectReply(4), -1, []);
    const next: BayeuxMessage = { channel: '/meta/connect', ext: { other: 1 } };
    ack.outgoingConnect(next);
    assert.deepEqual(next.ext, { other: 1, ack: 4 });

    // The newer handshake form, with a starting batch.
    ack.incomingHandshake({ channel: '/meta/handshake', successful: true, ext: { ack: { enabled: true, batch: 7 } } });
    assert.equal(ack.enabled, true);
    assert.equal(ack.batch, 7);

    // Off when the server does not offer it, or when not wanted.
    ack.incomingHandshake({ channel: '/meta/handshake', successful: true });
    assert.equal(ack.enabled, false);
    assert.equal(ack.outgoingConnect({ channel: '/meta/connect' }), undefined);
    const off = new AckTracker(false);
    const h2: BayeuxMessage = { channel: '/meta/handshake' };
    off.outgoingHandshake(h2);
    assert.equal(h2.ext, undefined);
    off.incomingHandshake({ channel: '/meta/handshake', successful: true, ext: { ack: true } });
    assert.equal(off.enabled, false);
  });

  test('drops copies of messages already delivered when their batch comes again', () => {
    const ack = new AckTracker(true);
    ack.outgoingHandshake({ channel: '/meta/handshake' });
    ack.incomingHandshake({ channel: '/meta/handshake', successful: true, ext: { ack: true } });

    const a = delivery('1', 'a');
    const b = delivery('2', 'b');
    const c = delivery('3', 'c');
    assert.deepEqual(ack.incomingConnect(connectReply(1), -1, [a, b]), [a, b]);
    // A connect that raced ahead with the old ack (-1): the server sends batch 1 again, then new messages.
    assert.deepEqual(ack.incomingConnect(connectReply(2), -1, [{ ...a }, { ...b }, c]), [c]);
    // Batch 2 acknowledged: nothing is dropped any more, even an equal message.
    assert.deepEqual(ack.incomingConnect(connectReply(3), 2, [{ ...a }]), [{ ...a }]);
    // Only leading copies are dropped: the same message after a new one is new.
    const d = delivery('4', 'd');
    assert.deepEqual(ack.incomingConnect(connectReply(4), -1, [d, { ...a }]), [d, { ...a }]);
    // Without a batch number, nothing is tracked.
    assert.deepEqual(ack.incomingConnect(connectReply(undefined), 4, [{ ...d }]), [{ ...d }]);
  });
  test('skip() acknowledges a batch it could not read: two batches per connect sent since the last answer', () => {
    const ack = new AckTracker(true);
    ack.outgoingHandshake({ channel: '/meta/handshake' });
    ack.incomingHandshake({ channel: '/meta/handshake', successful: true, ext: { ack: true } });
    // Nothing sent since an answer: nothing to skip.
    assert.equal(ack.skip(), undefined);
    ack.outgoingConnect({ channel: '/meta/connect' });
    // From the start (-1): the server's batches start at 1.
    assert.equal(ack.skip(), 2);
    const next: BayeuxMessage = { channel: '/meta/connect' };
    ack.outgoingConnect(next);
    assert.deepEqual(next.ext, { ack: 2 });
    ack.incomingConnect(connectReply(5), 2, []);
    // Two connects sent without an answer (the first timed out): up to four batches.
    ack.outgoingConnect({ channel: '/meta/connect' });
    ack.outgoingConnect({ channel: '/meta/connect' });
    assert.equal(ack.skip(), 9);
    // Acks off: nothing is ever sent twice, nothing to skip.
    const off = new AckTracker(false);
    off.outgoingConnect({ channel: '/meta/connect' });
    assert.equal(off.skip(), undefined);
  });
});

test('BayeuxClientError carries a type', () => {
  const error = new BayeuxClientError('http', 'The server answered HTTP 500', { status: 500 });
  assert.equal(error.type, 'http');
  assert.equal(error.status, 500);
  assert.equal(error.httpType, undefined);
  assert.equal(error.name, 'BayeuxClientError');
  const refused = new BayeuxClientError('too-large', 'The server refused the request as too large', { status: 413, httpType: 'entity.too.large' });
  assert.equal(refused.httpType, 'entity.too.large');
});

test('network failures are retried with exponential backoff and full jitter, up to the cap', { timeout: 10_000 }, async () => {
  // A port nothing listens on.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));

  // The delays the client chose, as it logs them (not wall-clock gaps, which a loaded machine stretches).
  const delays: number[] = [];
  const log = (text: string): void => {
    const m = /retrying in (\d+) ms/.exec(text);
    if (m) delays.push(Number(m[1]));
  };
  const client = new BayeuxClient(`http://127.0.0.1:${port}/cometd`, {
    retryDelay: 40, maxRetryDelay: 320, maxNetworkDelay: 1000, logger: { error: log, warn: log, info: log, debug: () => undefined },
  });
  let failures = 0;
  client.on('error', (error) => {
    assert.ok(error instanceof BayeuxClientError);
    assert.equal(error.type, 'network');
    failures++;
  });
  const connected = client.connect().catch((e: unknown) => e);
  const deadline = Date.now() + 8000;
  while (delays.length < 12 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(client.state, 'handshaking');
  await client.disconnect();
  const stopped = await connected;
  assert.ok(stopped instanceof BayeuxClientError && stopped.type === 'disconnected');

  assert.ok(delays.length >= 12 && failures >= 12, `${delays.length} retries, ${failures} failures`);
  // Bases 40, 80, 160, 320, 320...: each delay is drawn from 0 to its base.
  const bases = [40, 80, 160];
  delays.forEach((delay, i) => {
    const base = bases[i] ?? 320;
    assert.ok(delay >= 0 && delay <= base + 1, `retry ${i} waited ${delay} ms, base ${base}`);
  });
  // The base grew: the later retries (base 320) go beyond what the first two bases allow (chance of not: 0.25^9).
  assert.ok(Math.max(...delays.slice(3)) > 80, `later delays ${delays.slice(3).join(', ')}`);
  // And they are drawn at random, not fixed.
  assert.ok(new Set(delays.slice(3)).size > 3, `later delays ${delays.slice(3).join(', ')}`);
});

