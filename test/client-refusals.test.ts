/**
 * BayeuxClient and answers that are not network failures (issues 25 and
 * 27), against the real server on 127.0.0.1, over long-polling and
 * WebSocket:
 *
 * - a URL that is not a Bayeux server's (a 404, an HTML page, a WebSocket
 *   upgrade refused) rejects what waits, naming the URL and the status,
 *   instead of retrying for ever;
 * - a message the server refuses as too large (413, close 1009) rejects its
 *   publish, and the session goes on;
 * - an answer longer than `maxResponseBytes` is skipped (acknowledged
 *   unread) and reported once; the messages after it arrive.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { WebSocket } from 'ws';
import { BayeuxClient, BayeuxClientError, type BayeuxClientOptions, type ClientLogger, type TransportName } from '../lib/client/node.js';
import { CHROMIUM, launchChromium } from './helpers/browser.js';
import { testClients, FAST } from './helpers/clients.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';
import { skipWithout } from './helpers/missing.js';

const { client, cleanup } = testClients();

/** A logger that keeps its lines, by level. */
function recordingLogger(): ClientLogger & { lines: Array<[string, string]> } {
  const lines: Array<[string, string]> = [];
  return {
    lines,
    error: (text: string) => lines.push(['error', text]),
    warn: (text: string) => lines.push(['warn', text]),
    info: (text: string) => lines.push(['info', text]),
    debug: () => undefined,
  };
}

/** The rejection of `promise` (which must reject within `ms`). */
async function rejection(promise: Promise<unknown>, ms: number, what: string): Promise<BayeuxClientError> {
  const outcome = await within(promise.then(() => undefined, (error: unknown) => error), ms, what);
  assert.ok(outcome instanceof BayeuxClientError, `${what}: expected a BayeuxClientError, got ${String(outcome)}`);
  return outcome;
}

describe('a URL that is not a Bayeux server', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({}, {
      configure(app) {
        // What a single-page app's fallback route answers to anything.
        app.post('/spa', (_req, res) => {
          res.type('html').send('<!doctype html><html><body>Welcome</body></html>');
        });
      },
    });
    cleanup(() => s.close());
  });

  for (const transports of [['long-polling'], ['websocket'], ['websocket', 'long-polling']] as TransportName[][]) {
    for (const [path, type, status, shown] of [
      ['/wrong', 'http', 404, /HTTP 404/],
      ['/spa', 'protocol', 200, /HTTP 200, text\/html/],
    ] as const) {
      test(`${path} (${status}) with ${transports.join(', ')}: subscribe(), publish() and connect() reject, naming the URL and the status`, async () => {
        const url = `${s.origin}${path}`;
        const logger = recordingLogger();
        // No `error` listener: the rejections alone must tell.
        const c = client(url, { transports, logger });
        const subscribed = c.subscribe('/a', () => undefined);
        const published = c.publish('/a', 1);
        const connected = c.connect();
        for (const [promise, what] of [[subscribed, 'subscribe()'], [published, 'publish()'], [connected, 'connect()']] as const) {
          const error = await rejection(promise, 20_000, what);
          assert.equal(error.type, type);
          assert.equal(error.status, status);
          assert.ok(error.message.includes(url), error.message);
          assert.match(error.message, shown);
          assert.match(error.message, /3 handshakes in a row/);
        }
        assert.equal(c.state, 'disconnected');
        const errors = logger.lines.filter(([level]) => level === 'error');
        assert.equal(errors.length, 1, JSON.stringify(logger.lines));
        assert.ok(errors[0]?.[1].includes(url));
        assert.match(errors[0]?.[1] ?? '', shown);
      });
    }
  }

  test('a WebSocket upgrade refused (404) with only websocket allowed: rejects as no-transport, saying why', { timeout: 60_000 }, async () => {
    // HTTP at /cometd, WebSocket only at /elsewhere: the upgrade to /cometd is answered 404.
    const split = await startServer({}, { websocket: false });
    cleanup(() => split.close());
    split.cometd.attach(split.http, { path: '/elsewhere' });
    const logger = recordingLogger();
    // Longer than the server waits before it answers an upgrade nobody took (3 s).
    const c = client(split.url, { transports: ['websocket'], logger, maxNetworkDelay: 8000 });
    const error = await rejection(c.subscribe('/a', () => undefined), 45_000, 'subscribe()');
    assert.equal(error.type, 'no-transport');
    assert.ok(error.message.includes(split.url), error.message);
    assert.match(error.message, /the server offers .*websocket/);
    assert.match(error.message, /ws:\/\/127\.0\.0\.1:\d+\/cometd could not be opened \(Unexpected server response: 404\)/);
    assert.equal(logger.lines.filter(([level]) => level === 'error').length, 1);
    // The sessions it made and could not use were let go.
    await waitFor(async () => (await split.cometd.stats()).sessions === 0, { timeout: 5000, what: 'no session left on the server' });
  });

  test('a client that has been connected keeps retrying a URL that answers 404 later (a server restarting)', async () => {
    let answer404 = false;
    const restarting = await startServer({}, {
      configure(app) {
        app.use((_req, res, next) => (answer404 ? res.status(404).end() : next()));
      },
    });
    cleanup(() => restarting.close());
    const c = client(restarting.url, { transports: ['long-polling'] });
    const errors: BayeuxClientError[] = [];
    c.on('error', (error) => { if (error instanceof BayeuxClientError) errors.push(error); });
    await c.connect();
    answer404 = true;
    const back = c.reconnect();
    let settled = false;
    back.then(() => { settled = true; }, () => { settled = true; });
    await waitFor(() => errors.filter((error) => error.status === 404).length >= 5, { timeout: 10_000, what: '5 handshakes answered 404' });
    assert.equal(settled, false);
    answer404 = false;
    await within(back, 10_000, 'the reconnection');
    assert.equal(c.state, 'connected');
  });

  test('a server that is down is still retried (a network failure, not a wrong URL)', async () => {
    const down = await startServer();
    const url = down.url;
    await down.close();
    const c = client(url, { transports: ['long-polling'] });
    const errors: BayeuxClientError[] = [];
    c.on('error', (error) => { if (error instanceof BayeuxClientError) errors.push(error); });
    let settled = false;
    c.connect().then(() => { settled = true; }, () => { settled = true; });
    await waitFor(() => errors.length >= 5, { timeout: 10_000, what: '5 network errors' });
    assert.equal(settled, false);
    assert.ok(errors.every((error) => error.type === 'network'), errors.map((error) => error.type).join());
    await c.disconnect();
  });
});

describe('a message the server refuses as too large', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ maxBodyBytes: 65_536 });
  });
  after(() => s.close());

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`over ${transport}: publish() rejects with too-large; the rest of the session goes on`, async () => {
      const c = client(s.url, { transports: [transport] });
      const got: unknown[] = [];
      await c.subscribe('/big', (data) => got.push(typeof data === 'string' && data.length > 100 ? `${data.length} chars` : data));
      const errors: Error[] = [];
      c.on('error', (error) => errors.push(error));

      const error = await rejection(c.publish('/big', 'x'.repeat(100_000)), 15_000, 'the big publish');
      assert.equal(error.type, 'too-large');
      if (transport === 'long-polling') {
        assert.equal(error.status, 413);
        assert.equal(error.httpType, 'entity.too.large');
        assert.match(error.message, /HTTP 413 .*entity\.too\.large/);
      } else {
        assert.match(error.message, /1009/);
      }
      await c.publish('/big', 'small');
      await waitFor(() => got.includes('small'), { what: 'the small message' });

      // In one batch with others: only the big one is refused.
      const outcomes = await within(Promise.allSettled([
        c.publish('/big', 1), c.publish('/big', 'y'.repeat(100_000)), c.publish('/big', 2),
      ]), 15_000, 'the batch');
      assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'rejected', 'fulfilled']);
      await waitFor(() => got.includes(1) && got.includes(2), { what: 'the batch\'s small messages' });
      assert.equal(c.state, 'connected');
      assert.deepEqual(got, ['small', 1, 2]);
      // Each refusal is reported; on a loaded machine a socket may also drop (1006) and be opened again.
      const refusals = errors.filter((e) => e instanceof BayeuxClientError && e.type === 'too-large');
      assert.equal(refusals.length, 2, errors.map((e) => e.message).join('; '));
    });
  }
});

describe('an answer longer than maxResponseBytes, with acks', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  for (const [name, options] of [
    ['long-polling', { transports: ['long-polling'] }],
    ['websocket (ws with maxPayload)', { transports: ['websocket'] }],
    ['websocket (a WebSocket option: length check)', { transports: ['websocket'], WebSocket: WebSocket }],
  ] as Array<[string, BayeuxClientOptions]>) {
    test(`over ${name}: it is skipped and reported once; the next 10 messages arrive`, async () => {
      const logger = recordingLogger();
      const c = new BayeuxClient(s.url, { ...FAST, ...options, maxResponseBytes: 65_536, logger });
      cleanup(() => c.disconnect());
      const tooLarge: BayeuxClientError[] = [];
      c.on('error', (error) => { if (error instanceof BayeuxClientError && error.type === 'too-large') tooLarge.push(error); });
      const got: unknown[] = [];
      await c.subscribe('/feed', (data) => got.push(typeof data === 'string' ? `${data.length} chars` : data));
      assert.equal(c.ackEnabled, true);
      // The connect is held (the server numbers a batch when it arrives and another when it is released): waited for, not assumed after a sleep.
      await waitFor(async () => (await s.cometd.stats()).heldConnections === 1, { timeout: 5000, what: 'the connect to be held' });

      await s.cometd.publish('/feed', 'z'.repeat(100_000));
      await waitFor(() => tooLarge.length > 0, { timeout: 10_000, what: 'the too-large error' });
      for (let i = 0; i < 10; i++) await s.cometd.publish('/feed', i);
      await waitFor(() => got.length >= 10, { timeout: 15_000, what: `10 messages (got ${JSON.stringify(got)}, errors ${tooLarge.length})` });
      await sleep(300);
      assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(tooLarge.length, 1, tooLarge.map((error) => error.message).join('; '));
      assert.match(tooLarge[0]?.message ?? '', /maxResponseBytes \(65536 bytes\).*skipped/);
      assert.ok(logger.lines.some(([level, text]) => level === 'warn' && /maxResponseBytes \(65536 bytes\)/.test(text)));
      await c.disconnect();
    });
  }
});

describe('in Chromium, with the bundle the middleware serves', { skip: skipWithout(CHROMIUM, 'chromium', 'apt-get install chromium; .ci/run does') }, () => {
  let s: TestServer;
  let browser: Browser | undefined;
  before(async () => {
    s = await startServer({ maxBodyBytes: 65_536 }, {
      configure(app) {
        app.get('/page', (_req, res) => {
          res.type('html').send('<!doctype html><script type="module">import * as bayeux from "/cometd/client.js"; window.bayeux = bayeux;</script>');
        });
      },
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await s.close();
  });

  test('a refused publish rejects over both transports and the session goes on; a wrong URL rejects', async () => {
    const page = await (browser as Browser).newPage();
    await page.goto(`${s.origin}/page`);
    await page.waitForFunction(() => 'bayeux' in window, null, { timeout: 10_000 });
    const outcomes = await page.evaluate(async ([url, wrong]) => {
      type Client = {
        connect(): Promise<void>;
        subscribe(channel: string, handler: () => void): Promise<unknown>;
        publish(channel: string, data: unknown): Promise<unknown>;
        disconnect(): Promise<void>;
      };
      const { BayeuxClient } = (window as unknown as { bayeux: { BayeuxClient: new (url: string, options: object) => Client } }).bayeux;
      const settle = (promise: Promise<unknown>): Promise<string> => Promise.race([
        promise.then(() => 'ok', (error: { type?: string; status?: number; message: string }) => `${error.type} ${error.status} ${error.message}`),
        new Promise<string>((resolve) => setTimeout(() => resolve('no answer in 10 s'), 10_000)),
      ]);
      const results: string[] = [];
      for (const transport of ['long-polling', 'websocket']) {
        const client = new BayeuxClient(url as string, { transports: [transport], retryDelay: 50, maxRetryDelay: 200 });
        await client.connect();
        results.push(await settle(client.publish('/big', 'x'.repeat(100_000))));
        results.push(await settle(client.publish('/big', 'small')));
        await client.disconnect();
      }
      results.push(await settle(new BayeuxClient(wrong as string, { retryDelay: 50, maxRetryDelay: 200 }).subscribe('/a', () => undefined)));
      return results;
    }, [s.url, `${s.origin}/wrong`]);
    assert.match(outcomes[0] ?? '', /^too-large 413 .*HTTP 413/);
    assert.equal(outcomes[1], 'ok');
    assert.match(outcomes[2] ?? '', /^too-large undefined .*1009/);
    assert.equal(outcomes[3], 'ok');
    assert.match(outcomes[4] ?? '', /^http 404 http:\/\/127\.0\.0\.1:\d+\/wrong does not answer as a Bayeux server/);
  });
});
