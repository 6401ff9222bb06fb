/**
 * BayeuxClient facing a hostile or broken server (issue 12): hand-written
 * HTTP and WebSocket servers on 127.0.0.1 that send absurd advice, ask for a
 * handshake after every connect, answer with endless bodies and huge frames,
 * or drop sockets; and user code (handlers, listeners, extensions) that
 * throws or rejects. The client must keep its own pace, bound what it
 * reads, and never leave a rejection unhandled.
 */

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { BayeuxClient, BayeuxClientError, type BayeuxClientOptions, type BayeuxMessage, type WebSocketConstructor } from '../lib/client/node.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { sleep, waitFor } from './helpers/wait.js';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function client(url: string, options: BayeuxClientOptions): BayeuxClient {
  const c = new BayeuxClient(url, { transports: ['long-polling'], ...options });
  // A hostile server makes the client emit errors; they are expected here.
  c.on('error', function ignoreExpectedError() {});
  cleanups.push(() => c.disconnect());
  return c;
}

/** What a hostile server answers one message with; `undefined` answers nothing for it. */
type Answer = (message: BayeuxMessage, count: Counts) => BayeuxMessage | undefined;

interface Counts {
  requests: number;
  handshakes: number;
  connects: number;
}

interface Hostile {
  url: string;
  counts: Counts;
  server: Server;
}

/** An HTTP server that answers each POSTed Bayeux message with `answer`, or handles the request itself with `raw`. */
async function hostile(answer: Answer, raw?: (req: IncomingMessage, res: ServerResponse, messages: BayeuxMessage[]) => boolean): Promise<Hostile> {
  const counts: Counts = { requests: 0, handshakes: 0, connects: 0 };
  const server = createServer(function hostileServer(req, res) {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { body += chunk; });
    req.on('end', () => {
      counts.requests++;
      let messages: BayeuxMessage[];
      try {
        messages = JSON.parse(body) as BayeuxMessage[];
      } catch {
        res.writeHead(400).end();
        return;
      }
      for (const message of messages) {
        if (message.channel === '/meta/handshake') counts.handshakes++;
        if (message.channel === '/meta/connect') counts.connects++;
      }
      if (raw?.(req, res, messages)) return;
      const replies = messages.map((message) => answer(message, counts)).filter((reply): reply is BayeuxMessage => reply !== undefined);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(replies));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/cometd`, counts, server };
}

/** A well-formed reply to a handshake, connect or other message, with `advice` added. */
function reply(message: BayeuxMessage, extra: Partial<BayeuxMessage> = {}): BayeuxMessage {
  const base: BayeuxMessage = { channel: message.channel, successful: true };
  if (message.id !== undefined) base.id = message.id;
  if (message.channel === '/meta/handshake') {
    Object.assign(base, { clientId: 'hostile0client', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'] });
  } else {
    base.clientId = 'hostile0client';
  }
  return { ...base, ...extra };
}

describe('advice from the server is clamped', () => {
  test('advice.interval beyond a timer\'s range does not make the client poll every millisecond', { timeout: 15_000 }, async () => {
    for (const interval of [2 ** 31, 1e12, Number.MAX_VALUE]) {
      const h = await hostile((message) => reply(message, { advice: { reconnect: 'retry', interval, timeout: 0 } }));
      const c = client(h.url, { retryDelay: 50, maxRetryDelay: 500 });
      await c.connect();
      await sleep(1500);
      assert.ok(h.counts.requests < 20, `interval ${interval}: ${h.counts.requests} requests in 1.5 s`);
      assert.equal(c.state, 'connected');
      await c.disconnect();
    }
  });

  test('advice.timeout beyond a timer\'s range does not make every connect time out at once', { timeout: 15_000 }, async () => {
    const held: ServerResponse[] = [];
    const h = await hostile(
      (message) => reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 1e12 } }),
      (_req, res, messages) => {
        // Hold every connect but the first, as a server honouring its own timeout would.
        const connect = messages.find((message) => message.channel === '/meta/connect');
        if (!connect || connect.advice?.timeout === 0) return false;
        held.push(res);
        return true;
      },
    );
    const c = client(h.url, { retryDelay: 50, maxRetryDelay: 500 });
    const timeouts: Error[] = [];
    c.on('error', (error) => {
      if (error instanceof BayeuxClientError && error.type === 'timeout') timeouts.push(error);
    });
    await c.connect();
    await sleep(1500);
    assert.deepEqual(timeouts.map((error) => error.message), []);
    assert.equal(c.state, 'connected');
    assert.ok(h.counts.connects <= 3, `${h.counts.connects} connects in 1.5 s`);
    for (const res of held) res.destroy();
  });

  test('a server that answers every held connect at once, empty, is polled at a backed-off pace', { timeout: 15_000 }, async () => {
    const h = await hostile((message) => reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 30_000 } }));
    const c = client(h.url, { retryDelay: 100, maxRetryDelay: 1000 });
    await c.connect();
    await sleep(2000);
    assert.ok(h.counts.connects < 25, `${h.counts.connects} connects in 2 s`);
    assert.equal(c.state, 'connected');
  });

  test('a server that asks for polling at interval 0 and timeout 0 is polled at a backed-off pace', { timeout: 15_000 }, async () => {
    const h = await hostile((message) => reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 0 } }));
    const c = client(h.url, { retryDelay: 100, maxRetryDelay: 1000 });
    await c.connect();
    await sleep(2000);
    assert.ok(h.counts.connects < 25, `${h.counts.connects} connects in 2 s`);
  });

  test('negative and non-numeric advice is ignored or clamped to 0', { timeout: 10_000 }, async () => {
    const h = await hostile((message) => reply(message, { advice: { reconnect: 'retry', interval: -5, timeout: 'soon' as never } }));
    const c = client(h.url, { retryDelay: 50, maxRetryDelay: 500 });
    await c.connect();
    assert.equal(c.state, 'connected');
  });
});

describe('repeated handshakes back off', () => {
  const scenarios: Array<[string, Answer]> = [
    ['a successful connect reply that asks for a handshake', (message) => message.channel === '/meta/connect'
      ? reply(message, { advice: { reconnect: 'handshake', interval: 0 } })
      : reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 0 } })],
    ['a connect accepted, the next refused with 402', (message, counts) => message.channel === '/meta/connect' && counts.connects % 2 === 0
      ? { ...reply(message), successful: false, error: '402::session_unknown', advice: { reconnect: 'handshake', interval: 0 } }
      : reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 0 } })],
    ['every connect refused with 402', (message) => message.channel === '/meta/connect'
      ? { ...reply(message), successful: false, error: '402::session_unknown', advice: { reconnect: 'handshake', interval: 0 } }
      : reply(message)],
  ];
  for (const [name, answer] of scenarios) {
    test(name, { timeout: 15_000 }, async () => {
      const h = await hostile(answer);
      const c = client(h.url, { retryDelay: 100, maxRetryDelay: 1000 });
      c.connect().catch(() => undefined);
      await sleep(2000);
      assert.ok(h.counts.handshakes >= 2, `the client handshook again (${h.counts.handshakes})`);
      assert.ok(h.counts.handshakes < 15, `${h.counts.handshakes} handshakes in 2 s`);
      assert.ok(h.counts.requests < 40, `${h.counts.requests} requests in 2 s`);
    });
  }

  test('a caller that connects again on every disconnect from reconnect: none', { timeout: 15_000 }, async () => {
    const h = await hostile((message) => message.channel === '/meta/connect'
      ? { ...reply(message), successful: false, error: '403::go_away', advice: { reconnect: 'none' } }
      : reply(message));
    const c = client(h.url, { retryDelay: 100, maxRetryDelay: 1000 });
    let stopped = false;
    c.on('disconnected', function connectAgain() {
      if (!stopped) c.connect().catch(() => undefined);
    });
    c.connect().catch(() => undefined);
    await sleep(2000);
    stopped = true;
    assert.ok(h.counts.handshakes >= 2, `the client handshook again (${h.counts.handshakes})`);
    assert.ok(h.counts.handshakes < 15, `${h.counts.handshakes} handshakes in 2 s`);
  });

  test('a session that lived longer than maxRetryDelay handshakes again at once', { timeout: 15_000 }, async () => {
    let refuse = false;
    const h = await hostile((message) => {
      if (message.channel === '/meta/connect' && refuse) {
        refuse = false;
        return { ...reply(message), successful: false, error: '402::session_unknown', advice: { reconnect: 'handshake', interval: 0 } };
      }
      // Polling every 600 ms: slow enough not to count as idle polling.
      return reply(message, { advice: { reconnect: 'retry', interval: 600, timeout: 0 } });
    });
    // A backoff would wait up to retryDelay (4 s, at random); a prompt handshake comes within one connect interval.
    const c = client(h.url, { retryDelay: 4000, maxRetryDelay: 4000 });
    await c.connect();
    await sleep(4200);
    refuse = true;
    const before = h.counts.handshakes;
    await waitFor(() => h.counts.handshakes > before, { timeout: 1500, what: 'a prompt handshake' });
  });
});

describe('maxResponseBytes', () => {
  test('an endless long-polling response is abandoned past maxResponseBytes', { timeout: 20_000 }, async () => {
    let written = 0;
    let closed = false;
    const h = await hostile((message) => reply(message), (_req, res, messages) => {
      if (!messages.some((message) => message.channel === '/meta/connect')) return false;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('[{"channel":"/a","data":"');
      const chunk = 'x'.repeat(65_536);
      res.on('close', () => { closed = true; });
      // Bounded: at most 64 MiB, stopped as soon as the client hangs up.
      const pump = (): void => {
        while (!closed && written < 64 * 1_048_576) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        if (!closed) res.end('"}]');
      };
      pump();
      return true;
    });
    const c = client(h.url, { maxResponseBytes: 1_048_576, retryDelay: 5000, maxRetryDelay: 5000 });
    const tooLarge: Error[] = [];
    c.on('error', (error) => {
      if (error instanceof BayeuxClientError && error.type === 'too-large') tooLarge.push(error);
    });
    c.connect().catch(() => undefined);
    await waitFor(() => tooLarge.length > 0, { timeout: 10_000, what: 'a too-large error' });
    await waitFor(() => closed, { timeout: 5000, what: 'the client to hang up' });
    assert.ok(written < 16 * 1_048_576, `the server wrote ${written} bytes before the client hung up`);
  });

  test('a Content-Length beyond maxResponseBytes is refused unread', { timeout: 10_000 }, async () => {
    const h = await hostile((message) => reply(message), (_req, res, messages) => {
      if (!messages.some((message) => message.channel === '/meta/connect')) return false;
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(2 ** 40) });
      res.write('[');
      return true;
    });
    const c = client(h.url, { maxResponseBytes: 4096, retryDelay: 5000, maxRetryDelay: 5000 });
    const types: string[] = [];
    c.on('error', (error) => { if (error instanceof BayeuxClientError) types.push(error.type); });
    c.connect().catch(() => undefined);
    await waitFor(() => types.includes('too-large'), { timeout: 5000, what: 'a too-large error' });
  });

  for (const [name, extra] of [
    ['the default ws socket (maxPayload)', {}],
    ['a WebSocket constructor given as an option (length check)', { WebSocket: WebSocket as unknown as WebSocketConstructor }],
  ] as const) test(`a WebSocket frame beyond maxResponseBytes closes the socket, with ${name}`, { timeout: 20_000 }, async () => {
    const h = await hostile((message) => reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 500 } }));
    const wss = new WebSocketServer({ noServer: true });
    cleanups.push(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    let frames = 0;
    h.server.on('upgrade', (req, socket, head) => {
      socket.on('error', () => undefined);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', () => undefined);
        ws.on('message', (data) => {
          const messages = JSON.parse(String(data)) as BayeuxMessage[];
          if (messages.some((message) => message.channel === '/meta/connect')) {
            frames++;
            ws.send(JSON.stringify([{ channel: '/a', data: 'x'.repeat(4 * 1_048_576) }]));
          }
        });
      });
    });
    const c = client(h.url, { transports: ['websocket', 'long-polling'], maxResponseBytes: 1_048_576, retryDelay: 50, maxRetryDelay: 200, ...extra });
    const types: string[] = [];
    c.on('error', (error) => { if (error instanceof BayeuxClientError) types.push(error.type); });
    const got: unknown[] = [];
    c.addListener('/a', (data) => got.push(data));
    c.connect().catch(() => undefined);
    await waitFor(() => types.includes('too-large'), { timeout: 10_000, what: 'a too-large error' });
    assert.ok(frames >= 1);
    assert.deepEqual(got, []);
  });
});

describe('sockets and promises', () => {
  test('a server that resets connections and WebSockets mid-frame crashes nothing', { timeout: 15_000 }, async () => {
    const h = await hostile((message) => reply(message, { advice: { reconnect: 'retry', interval: 0, timeout: 500 } }), (req, _res, messages) => {
      if (!messages.some((message) => message.channel === '/meta/connect')) return false;
      req.socket.destroy();
      return true;
    });
    h.server.on('upgrade', (_req, socket) => {
      socket.on('error', () => undefined);
      // Half an upgrade answer, then a reset.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n');
      setTimeout(() => socket.destroy(), 20);
    });
    const c = client(h.url, { transports: ['websocket', 'long-polling'], retryDelay: 50, maxRetryDelay: 200 });
    const types: string[] = [];
    c.on('error', (error) => { if (error instanceof BayeuxClientError) types.push(error.type); });
    c.connect().catch(() => undefined);
    await waitFor(() => types.includes('network'), { timeout: 5000, what: 'a network error' });
    await sleep(500);
    assert.ok(h.counts.requests < 40, `${h.counts.requests} requests`);
  });

  test('handlers, listeners and extensions that throw or reject leave no unhandled rejection', { timeout: 20_000 }, async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    let s: TestServer | undefined;
    try {
      s = await startServer({ timeout: 1000 });
      const server = s;
      cleanups.push(() => server.close());
      for (const transport of ['long-polling', 'websocket'] as const) {
        const c = client(server.url, { transports: [transport], retryDelay: 20, maxRetryDelay: 200 });
        const errors: string[] = [];
        c.on('error', (error) => { errors.push(error.message); });
        // eslint-disable-next-line @typescript-eslint/no-misused-promises -- a listener that rejects is the point
        c.on('connected', async function rejectingListener() { throw new Error('connected listener rejected'); });
        c.use({
          incoming(message) {
            if (message.channel === '/boom/incoming') return Promise.reject(new Error('incoming extension rejected')) as never;
            return message;
          },
          async outgoing(message) {
            if (message.channel === '/boom/outgoing') throw new Error('outgoing extension rejected');
            return message;
          },
        });
        // eslint-disable-next-line @typescript-eslint/no-misused-promises -- a handler that rejects is the point
        await c.subscribe('/boom/*', async function rejectingHandler(data) {
          throw new Error(`handler rejected ${String(data)}`);
        });
        c.addListener('/boom/**', function throwingListener() {
          throw new Error('listener threw');
        });
        await assert.rejects(c.publish('/boom/outgoing', 1), /outgoing extension rejected/);
        await c.publish('/boom/x', 2);
        await c.publish('/boom/incoming', 3);
        await waitFor(() => errors.includes('handler rejected 2') && errors.includes('listener threw')
          && errors.includes('incoming extension rejected') && errors.includes('connected listener rejected'), { timeout: 5000, what: `errors over ${transport}: ${errors.join('; ')}` });
        await c.disconnect();
      }
      await sleep(50);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
