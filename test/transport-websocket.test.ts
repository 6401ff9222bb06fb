/**
 * The WebSocket transport over raw `ws` sockets (and hand-framed TCP sockets):
 * framing, held connects that do not block the socket, pushed deliveries,
 * moving between transports, session lifetime after a socket closes,
 * upgrade routing and origin checks, limits, heartbeat and the slow-consumer
 * policy.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { BayeuxOptions, TransportName } from '../lib/index.js';
import { handshake as lpHandshake, nextEvent, post, startServer, type StartOptions, type TestServer } from './helpers/http-server.js';
import { openWire, rawSocket, wireSession } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';
import { within } from './helpers/within.js';

type Msg = Record<string, any>;

const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'] };

/** The status an upgrade request gets, or 101. */
async function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(-1));
  });
}

/** A raw Bayeux-over-WebSocket peer that records every frame and message it receives. */
class Peer {
  readonly ws: WebSocket;
  readonly frames: Msg[][] = [];
  readonly messages: Msg[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  isClosed = false;
  #changed = new Set<() => void>();
  #ids = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.toString());
      } catch {
        parsed = [{ channel: '/peer/unparsable', text: data.toString() }];
      }
      const frame = (Array.isArray(parsed) ? parsed : [parsed]) as Msg[];
      this.frames.push(frame);
      for (const m of frame) this.messages.push(m);
      this.#notify();
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.isClosed = true;
        resolve({ code, reason: reason.toString() });
        this.#notify();
      });
    });
    ws.on('error', () => undefined);
  }

  static async open(url: string): Promise<Peer> {
    const ws = new WebSocket(url.replace(/^http/, 'ws'));
    const peer = new Peer(ws);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('websocket did not open within 3 s')), 3000);
      ws.once('open', () => (clearTimeout(timer), resolve()));
      ws.once('error', (err) => (clearTimeout(timer), reject(err)));
      ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), reject(new Error(`upgrade refused: HTTP ${res.statusCode}`))));
    });
    return peer;
  }

  #notify(): void {
    for (const f of [...this.#changed]) f();
  }

  /** Send messages as one frame (ids added where missing); or a raw string/Buffer. */
  send(payload: Msg | Msg[] | string | Buffer): void {
    if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
      this.ws.send(payload);
      return;
    }
    const list = (Array.isArray(payload) ? payload : [payload]).map((m) => ('id' in m ? m : { ...m, id: 'p' + ++this.#ids }));
    this.ws.send(JSON.stringify(list));
  }

  /** The first message received so far (or later) that passes `pred`. */
  next(pred: (m: Msg) => boolean, ms = 3000, what = 'a message'): Promise<Msg> {
    return new Promise<Msg>((resolve, reject) => {
      const check = (): void => {
        const found = this.messages.find(pred);
        if (found) return done(() => resolve(found));
        if (this.isClosed) return done(() => reject(new Error(`socket closed while waiting for ${what}; got ${JSON.stringify(this.messages)}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out (${ms} ms) waiting for ${what}; got ${JSON.stringify(this.messages)}`))),
        ms,
      );
      const done = (f: () => void): void => {
        clearTimeout(timer);
        this.#changed.delete(check);
        f();
      };
      this.#changed.add(check);
      check();
    });
  }

  /** Send messages with ids and wait for the reply to each. */
  async request(payload: Msg | Msg[], ms = 3000): Promise<Msg[]> {
    const list = (Array.isArray(payload) ? payload : [payload]).map((m) => ('id' in m ? m : { ...m, id: 'r' + ++this.#ids }));
    this.send(list);
    return Promise.all(list.map((m) => this.next((r) => r['id'] === m['id'] && r['channel'] === m['channel'], ms, `reply to ${m['channel']} ${m['id']}`)));
  }

  async handshake(): Promise<string> {
    const [reply] = await this.request({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'] });
    assert.equal(reply?.['successful'], true, JSON.stringify(reply));
    return reply?.['clientId'] as string;
  }

  /** Handshake, subscribe to `channels`, and do the first connect (answered at once). */
  async session(...channels: string[]): Promise<string> {
    const clientId = await this.handshake();
    for (const subscription of channels) {
      const [reply] = await this.request({ channel: '/meta/subscribe', clientId, subscription });
      assert.equal(reply?.['successful'], true, JSON.stringify(reply));
    }
    const [connect] = await this.request({ channel: '/meta/connect', clientId, connectionType: 'websocket' });
    assert.equal(connect?.['successful'], true, JSON.stringify(connect));
    return clientId;
  }

  /** Deliveries (non-meta, no `successful`) on `channel` so far. */
  deliveries(channel: string): Msg[] {
    return this.messages.filter((m) => m['channel'] === channel && !('successful' in m));
  }

  close(): void {
    if (!this.isClosed) this.ws.close();
  }
}

/**
 * A WebSocket client on a bare TCP socket, framing by hand: it never
 * answers a ping, and it can stop reading (`pause()`) so the server's
 * buffer for it fills up, which no well-behaved client library lets a test do.
 */
class RawPeer {
  readonly socket: net.Socket;
  readonly messages: Msg[] = [];
  readonly closed: Promise<number>;
  /** The code in the server's close frame, once one arrived. */
  closeCode: number | undefined;
  #buffer = Buffer.alloc(0);
  #upgraded = false;
  #changed = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => (resolve(Date.now()), this.#notify())));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
  }

  static async open(server: TestServer, path = '/cometd'): Promise<RawPeer> {
    const peer = new RawPeer(net.connect(server.port, '127.0.0.1'));
    peer.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await peer.#until(() => peer.#upgraded, 3000, 'the 101 response');
    return peer;
  }

  #notify(): void {
    for (const f of [...this.#changed]) f();
  }

  #data(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    if (!this.#upgraded) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.#buffer.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 101/.test(head)) {
        this.socket.destroy();
        return;
      }
      this.#upgraded = true;
      this.#buffer = this.#buffer.subarray(end + 4);
    }
    // Server frames are unmasked: FIN/opcode, length (7, 16 or 64 bits), payload.
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) break;
      let length = (b[1] ?? 0) & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) break;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) break;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      if (b.length < offset + length) break;
      const opcode = (b[0] ?? 0) & 0x0f;
      const payload = b.subarray(offset, offset + length);
      this.#buffer = b.subarray(offset + length);
      if (opcode === 1) for (const m of JSON.parse(payload.toString()) as Msg[]) this.messages.push(m);
      else if (opcode === 8) this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      // Pings (9) are read and never answered; nor is a close frame.
    }
    this.#notify();
  }

  #until(pred: () => boolean, ms: number, what: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (pred()) done(resolve);
        else if (this.socket.destroyed) done(() => reject(new Error(`socket closed while waiting for ${what}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`timed out (${ms} ms) waiting for ${what}`))), ms);
      const done = (f: () => void): void => {
        clearTimeout(timer);
        this.#changed.delete(check);
        f();
      };
      this.#changed.add(check);
      check();
    });
  }

  /** Send messages as one masked text frame. */
  send(messages: Msg[]): void {
    const payload = Buffer.from(JSON.stringify(messages));
    const mask = randomBytes(4);
    const masked = Buffer.alloc(payload.length);
    for (let i = 0; i < payload.length; i++) masked[i] = (payload[i] ?? 0) ^ (mask[i % 4] ?? 0);
    let head: Buffer;
    if (payload.length < 126) head = Buffer.from([0x81, 0x80 | payload.length]);
    else if (payload.length < 65536) head = Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    else throw new RangeError('frame too large for this test client');
    this.socket.write(Buffer.concat([head, mask, masked]));
  }

  async next(pred: (m: Msg) => boolean, ms = 3000, what = 'a message'): Promise<Msg> {
    await this.#until(() => this.messages.some(pred), ms, what);
    return this.messages.find(pred) as Msg;
  }

  /** Handshake, subscribe, first connect; returns the clientId. */
  async session(channel: string): Promise<string> {
    this.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
    const clientId = (await this.next((m) => m['id'] === 'h'))['clientId'] as string;
    this.send([
      { channel: '/meta/subscribe', clientId, subscription: channel, id: 's' },
      { channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c' },
    ]);
    const connect = await this.next((m) => m['id'] === 'c');
    assert.equal(connect['successful'], true, JSON.stringify(connect));
    return clientId;
  }
}

interface Served {
  server: TestServer;
  /** A peer on the mount path, closed when the test ends. */
  peer: () => Promise<Peer>;
  /** Run `fn` when the test ends, before the server closes (an upgraded socket left open keeps http.close() waiting). */
  cleanup: (fn: () => void) => void;
}

/** A server for one test, closed (with every peer) when the test ends. */
async function serve(t: TestContext, options: BayeuxOptions = {}, start: StartOptions = {}): Promise<Served> {
  const server = await startServer({ timeout: 3000, maxInterval: 3000, ...options }, start);
  const peers: Peer[] = [];
  const cleanups: Array<() => void> = [];
  t.after(async () => {
    for (const fn of cleanups) fn();
    for (const p of peers) p.ws.terminate();
    await server.close();
  });
  return {
    server,
    peer: async () => {
      const p = await Peer.open(server.url);
      peers.push(p);
      return p;
    },
    cleanup: (fn) => cleanups.push(fn),
  };
}

/** Post one message over long-polling and return the replies. */
async function lp(url: string, messages: Msg | Msg[], timeoutMs = 5000): Promise<Msg[]> {
  const res = await post(url, messages, 'application/json', timeoutMs);
  assert.equal(res.status, 200, res.text);
  return res.json as Msg[];
}

describe('websocket transport', () => {
  it('handshakes over the socket', async (t) => {
    const { server, peer } = await serve(t);
    const hs = nextEvent<[string, { transport: TransportName }]>(server, 'handshake', () => true, 3000);
    const p = await peer();
    const [reply] = await p.request({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h1' });
    assert.equal(reply?.['successful'], true, JSON.stringify(reply));
    assert.equal(reply?.['id'], 'h1');
    assert.equal(reply?.['version'], '1.0');
    assert.match(String(reply?.['clientId']), /^[A-Za-z0-9_-]{16,}$/);
    assert.deepEqual(reply?.['advice'], { reconnect: 'retry', interval: 0, timeout: 3000 });
    assert.ok((reply?.['supportedConnectionTypes'] as string[]).includes('websocket'));
    const [clientId, ctx] = await hs;
    assert.equal(clientId, reply?.['clientId']);
    assert.equal(ctx.transport, 'websocket');
    assert.equal(p.frames.length, 1, 'one frame for one reply');
    assert.equal((await server.cometd.stats()).sockets, 1);
    p.close();
    await p.closed;
    await waitFor(async () => (await server.cometd.stats()).sockets === 0, { timeout: 2000, what: 'the socket count to drop' });
  });

  it('offers websocket in supportedConnectionTypes only once attached', async (t) => {
    const { server, peer } = await serve(t, {}, { websocket: false });
    const types = async (): Promise<string[]> => {
      const [reply] = await lp(server.url, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: 'h' }]);
      return reply?.['supportedConnectionTypes'] as string[];
    };
    assert.ok(!(await types()).includes('websocket'));
    const [refused] = await lp(server.url, [{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: 'h' }]);
    assert.equal(refused?.['successful'], false);
    assert.match(String(refused?.['error']), /^406:/);

    server.cometd.attach(server.http);
    assert.ok((await types()).includes('websocket'));
    await (await peer()).handshake();
  });

  it('a held /meta/connect does not block a publish on the same socket; deliveries are pushed', async (t) => {
    const { server, peer } = await serve(t, { timeout: 4000 });
    const p = await peer();
    const clientId = await p.session('/ws/a');
    p.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'held' });
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the connect to be held' });

    const started = Date.now();
    const [pub] = await p.request({ channel: '/ws/a', clientId, data: { n: 1 }, id: 'pub1' }, 1500);
    assert.equal(pub?.['successful'], true, JSON.stringify(pub));
    const delivery = await p.next((m) => m['channel'] === '/ws/a' && !('successful' in m), 1500, 'the delivery');
    assert.ok(Date.now() - started < 1500, 'answered while the connect is still held');
    assert.deepEqual(delivery['data'], { n: 1 });
    assert.equal(delivery['clientId'], undefined);
    assert.equal(p.messages.find((m) => m['id'] === 'held'), undefined, 'the held connect is still held');
    assert.equal((await server.cometd.stats()).heldConnections, 1);

    // Pushed from another client too, with no new connect from this one.
    const other = await lpHandshake(server.url);
    const [lpPub] = await lp(server.url, [{ channel: '/ws/a', clientId: other, data: { n: 2 }, id: 'x' }]);
    assert.equal(lpPub?.['successful'], true);
    await p.next((m) => m['channel'] === '/ws/a' && m['data']?.n === 2, 1500, 'a delivery from a long-polling publisher');
    assert.equal(p.messages.find((m) => m['id'] === 'held'), undefined, 'still held');
  });

  it('deliveries published in one tick reach the socket as one frame, in order', async (t) => {
    const { server, peer } = await serve(t);
    const p = await peer();
    const clientId = await p.session('/tick/**');
    p.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'held' });
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the connect to be held' });
    const framesBefore = p.frames.length;
    await Promise.all([1, 2, 3, 4].map((n) => server.cometd.publish(`/tick/${n}`, n)));
    await p.next((m) => m['channel'] === '/tick/4', 2000, 'the last delivery');
    const frames = p.frames.slice(framesBefore);
    assert.equal(frames.length, 1, `one frame, got ${JSON.stringify(frames)}`);
    assert.deepEqual(frames[0]?.map((m) => m['data']), [1, 2, 3, 4]);
  });

  it('a session moves from long-polling to websocket and back, keeping its subscriptions', async (t) => {
    const { server, peer } = await serve(t, { timeout: 3000 });
    const disconnects: string[] = [];
    server.cometd.on('disconnect', (id) => disconnects.push(id));
    const clientId = await lpHandshake(server.url);
    const [sub] = await lp(server.url, [{ channel: '/meta/subscribe', clientId, subscription: '/move/**', id: 's' }]);
    assert.equal(sub?.['successful'], true);
    const [first] = await lp(server.url, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: 'c1' }]);
    assert.equal(first?.['successful'], true);

    // To websocket: no new handshake, just a connect on the socket.
    const p = await peer();
    p.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'w1' });
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the websocket connect to be held' });
    assert.equal(await server.cometd.publish('/move/a', 'via-ws'), 1);
    const pushed = await p.next((m) => m['data'] === 'via-ws', 2000, 'the delivery on the socket');
    assert.equal(pushed['channel'], '/move/a');
    const [pubWs] = await p.request({ channel: '/move/b', clientId, data: 'from-ws' });
    assert.equal(pubWs?.['successful'], true, JSON.stringify(pubWs));
    await p.next((m) => m['data'] === 'from-ws' && !('successful' in m), 2000, 'its own publish back');

    // Back to long-polling: the held websocket connect is answered, and
    // deliveries go to the long-polling connect, not to the socket.
    const held = lp(server.url, [{ channel: '/meta/connect', clientId, connectionType: 'long-polling', id: 'c2' }]);
    const w1 = await p.next((m) => m['id'] === 'w1', 2000, 'the websocket connect to be answered');
    assert.equal(w1['successful'], true);
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the long-polling connect to be held' });
    assert.equal(await server.cometd.publish('/move/c', 'via-lp'), 1);
    const replies = await held;
    assert.deepEqual(
      replies.map((m) => [m['channel'], m['data'] ?? m['successful']]),
      [
        ['/move/c', 'via-lp'],
        ['/meta/connect', true],
      ],
    );
    // Anything pushed to the socket would have come before this reply.
    const [probe] = await p.request({ channel: '/service/probe', clientId, data: null });
    assert.equal(probe?.['successful'], true, JSON.stringify(probe));
    assert.equal(p.messages.find((m) => m['data'] === 'via-lp'), undefined, 'not pushed to the socket after moving back');
    assert.deepEqual(disconnects, []);
  });

  it('a closed socket does not end the session at once; maxInterval does, with reason timeout', async (t) => {
    // Long enough for a loaded machine to come back on a new socket in time (with 600 ms the steps
    // between the close and the new connect could outlast it).
    const maxInterval = 2000;
    const { server, peer } = await serve(t, { timeout: 1000, maxInterval });
    const p1 = await peer();
    const clientId = await p1.session('/gone/a');
    p1.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'held' });
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the connect to be held' });
    const ended: string[] = [];
    server.cometd.on('disconnect', (id, reason) => {
      if (id === clientId) ended.push(reason);
    });

    p1.close();
    await p1.closed;
    await waitFor(async () => (await server.cometd.stats()).sockets === 0, { timeout: 2000, what: 'the server to see the close' });
    // The session and its subscription are still there: a publish is queued for it.
    assert.equal(await server.cometd.publish('/gone/a', 'while-away'), 1);

    // Back within maxInterval on a new socket, without a handshake.
    const p2 = await peer();
    const [connect] = await p2.request({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'back' });
    assert.equal(connect?.['successful'], true, JSON.stringify(connect));
    assert.equal(p2.deliveries('/gone/a')[0]?.['data'], 'while-away');
    assert.deepEqual(ended, []);

    // Gone for good: ended maxInterval after the socket closed, not before.
    const timedOut = nextEvent<[string, string]>(server, 'disconnect', (id) => id === clientId, maxInterval + 3000);
    const closedAt = Date.now();
    p2.close();
    await p2.closed;
    const [, reason] = await timedOut;
    const elapsed = Date.now() - closedAt;
    assert.equal(reason, 'timeout');
    assert.ok(elapsed >= maxInterval - 50, `ended after ${elapsed} ms, before maxInterval ${maxInterval}`);
    assert.equal(await server.cometd.publish('/gone/a', 'nobody'), 0);
  });

  it('upgrades for other paths are left to other listeners; unanswered ones are closed within a few seconds', async (t) => {
    const { server, cleanup } = await serve(t);
    // Another WebSocket server on the same HTTP server, for /other.
    const echo = new WebSocketServer({ noServer: true });
    server.http.on('upgrade', (req, socket, head) => {
      if (req.url === '/other') echo.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send('echo:' + d.toString())));
    });
    cleanup(() => {
      for (const c of echo.clients) c.terminate();
      echo.close();
    });

    const unanswered = (path: string): Promise<{ outcome: string; ms: number }> =>
      new Promise((resolve) => {
        const started = Date.now();
        const ws = new WebSocket(server.origin.replace(/^http/, 'ws') + path);
        const timer = setTimeout(() => {
          ws.terminate();
          resolve({ outcome: 'still hanging', ms: Date.now() - started });
        }, 6000);
        const finish = (outcome: string): void => {
          clearTimeout(timer);
          resolve({ outcome, ms: Date.now() - started });
        };
        ws.once('open', () => (ws.terminate(), finish('opened')));
        ws.once('unexpected-response', (_req, res) => (res.resume(), ws.terminate(), finish(`HTTP ${res.statusCode}`)));
        ws.once('error', (err) => finish(`error ${err.message}`));
      });

    const other = new WebSocket(server.origin.replace(/^http/, 'ws') + '/other');
    cleanup(() => other.terminate());
    await new Promise<void>((resolve, reject) => {
      other.once('open', () => resolve());
      other.once('error', reject);
    });
    const nobody = await Promise.all(['/nobody', '/cometdx', '/cometd-old'].map(unanswered));
    for (const { outcome, ms } of nobody) {
      assert.notEqual(outcome, 'opened');
      assert.notEqual(outcome, 'still hanging');
      assert.ok(ms < 5000, `closed after ${ms} ms`);
    }
    // By now the grace period of the answered one has passed too: it was
    // not closed, and Bayeux never answered on it.
    assert.equal(other.readyState, WebSocket.OPEN);
    const echoed = new Promise<string>((resolve) => other.once('message', (d) => resolve(d.toString())));
    other.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }]));
    assert.match(await echoed, /^echo:\[/);
    assert.equal((await server.cometd.stats()).sockets, 0, 'the Bayeux transport took none of them');
  });

  it('a frame over maxBodyBytes closes that socket only', async (t) => {
    const { server, peer } = await serve(t, { maxBodyBytes: 2048 });
    const big = await peer();
    const bigId = await big.session('/size/a');
    const small = await peer();
    const smallId = await small.session('/size/a');

    // Just under the limit is fine.
    const [ok] = await big.request({ channel: '/size/a', clientId: bigId, data: 'x'.repeat(1800), id: 'fits' });
    assert.equal(ok?.['successful'], true, JSON.stringify(ok));

    big.send({ channel: '/size/a', clientId: bigId, data: 'x'.repeat(4096), id: 'too-big' });
    const { code } = await big.closed;
    assert.equal(code, 1009, 'closed as Message Too Big');
    assert.equal(big.messages.find((m) => m['id'] === 'too-big'), undefined);

    assert.equal(small.ws.readyState, WebSocket.OPEN);
    const [pub] = await small.request({ channel: '/size/a', clientId: smallId, data: 'still here', id: 'after' });
    assert.equal(pub?.['successful'], true);
    await small.next((m) => m['data'] === 'still here' && !('successful' in m), 2000, 'delivery after the oversized frame');
    await waitFor(async () => (await server.cometd.stats()).sockets === 1, { timeout: 2000, what: 'one socket left' });
    // And a new socket can connect.
    await (await peer()).handshake();
  });

  it('garbage frames get an error reply; the socket and the server keep serving', async (t) => {
    const { peer } = await serve(t);
    const p = await peer();
    const bystander = await peer();
    await bystander.session('/bystander');

    const errors = (): Msg[] => p.messages.filter((m) => m['successful'] === false);
    p.send('this is not json{');
    await p.next(() => errors().length === 1, 2000, 'an error for invalid JSON');
    p.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    await p.next(() => errors().length === 2, 2000, 'an error for a binary frame');
    p.send('[]');
    await p.next(() => errors().length === 3, 2000, 'an error for an empty frame');
    p.send('[42, "x", null]');
    await p.next(() => errors().length === 6, 2000, 'an error for each non-object message');
    p.send('[{"id":"nochannel"}]');
    await p.next((m) => m['id'] === 'nochannel', 2000, 'an error for a message without channel');
    p.send('[{"channel":"/bad channel!","id":"badch"}]');
    await p.next((m) => m['id'] === 'badch', 2000, 'an error for an invalid channel');

    for (const e of errors()) {
      assert.equal(e['successful'], false);
      assert.match(String(e['error']), /^40\d:/, JSON.stringify(e));
    }
    assert.match(String(p.messages.find((m) => m['id'] === 'badch')?.['error']), /^405:/);
    assert.equal(p.ws.readyState, WebSocket.OPEN);

    // The same socket still speaks Bayeux, and so do others.
    const clientId = await p.session('/after/garbage');
    const [pub] = await p.request({ channel: '/bystander', clientId, data: 'hello' });
    assert.equal(pub?.['successful'], true);
    await bystander.next((m) => m['data'] === 'hello', 2000, 'delivery to another socket');
  });

  it('ping/pong: a socket that does not answer pings is terminated, a live one is kept', async (t) => {
    const interval = 100;
    const { server, peer, cleanup } = await serve(t, { wsPingInterval: interval });
    const live = await peer();

    // A client that upgrades and then never answers a ping.
    const dead = await RawPeer.open(server);
    cleanup(() => dead.socket.destroy());
    const upgradedAt = Date.now();
    assert.equal((await server.cometd.stats()).sockets, 2);

    const closedAt = await within(dead.closed, 3000, 'the dead socket to be terminated');
    assert.ok(closedAt - upgradedAt < 3000);
    await waitFor(async () => (await server.cometd.stats()).sockets === 1, { timeout: 2000, what: 'the socket count to drop' });
    // The live socket answered every ping: still open after several more rounds.
    const pings = { n: 0 };
    live.ws.on('ping', () => pings.n++);
    await waitFor(() => pings.n >= 3, { timeout: 3000, what: 'three more pings' });
    assert.equal(live.ws.readyState, WebSocket.OPEN);
    await live.handshake();
  });

  /** Publish 64 KiB messages to `channel`, one flush each, until `stop()` or `max`; returns how many. */
  async function flood(server: TestServer, channel: string, max: number, stop: () => boolean): Promise<number> {
    const blob = 'x'.repeat(64 * 1024);
    let n = 0;
    for (; n < max && !stop(); n++) {
      await server.cometd.publish(channel, { n, blob });
      await new Promise((resolve) => setImmediate(resolve));
    }
    return n;
  }

  it("slow consumer, 'drop-oldest': a socket over wsHighWaterMark is not buffered without bound", async (t) => {
    const { server, cleanup } = await serve(t, { wsHighWaterMark: 64 * 1024, maxQueue: 20, slowConsumer: 'drop-oldest' });
    const ended: string[] = [];
    server.cometd.on('disconnect', (_id, reason) => ended.push(reason));
    const reader = await RawPeer.open(server);
    cleanup(() => reader.socket.destroy());
    await reader.session('/big');
    reader.socket.pause(); // stop reading: the kernel buffers fill, then the server's
    const total = 500; // 32 MiB if all were sent
    assert.equal(await flood(server, '/big', total, () => false), total);
    reader.socket.resume();
    const last = await reader.next((m) => m['channel'] === '/big' && m['data']?.n === total - 1, 10_000, 'the newest message');
    assert.ok(last);
    const got = reader.messages.filter((m) => m['channel'] === '/big').map((m) => m['data'].n as number);
    assert.ok(got.length < total / 2, `${got.length} of ${total} delivered: the oldest should have been dropped`);
    assert.deepEqual(got, [...got].sort((a, b) => a - b), 'in order');
    assert.deepEqual(ended, []);
  });

  it("slow consumer, 'disconnect': a socket over wsHighWaterMark ends the session", async (t) => {
    const { server, cleanup } = await serve(t, { wsHighWaterMark: 64 * 1024, slowConsumer: 'disconnect' });
    const reader = await RawPeer.open(server);
    cleanup(() => reader.socket.destroy());
    const clientId = await reader.session('/big');
    const ended: string[] = [];
    server.cometd.on('disconnect', (id, reason) => {
      if (id === clientId) ended.push(reason);
    });
    reader.socket.pause();
    const sent = await flood(server, '/big', 500, () => ended.length > 0);
    await waitFor(() => ended.length > 0, { timeout: 2000, what: 'the session to be ended' });
    assert.deepEqual(ended, ['server']);
    assert.ok(sent < 500, `ended after ${sent} messages`);
    assert.equal(await server.cometd.publish('/big', 'gone'), 0);
  });

  it('a TCP reset on an upgrade for another path, during the hand-over wait, is not an uncaught error', async (t) => {
    const { server } = await serve(t);
    const arrived = new Promise<void>((resolve) => server.http.once('upgrade', () => resolve()));
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(
      `GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await arrived;
    socket.resetAndDestroy();
    // An unhandled 'error' (read ECONNRESET) would end this process here.
    await sleep(200);
    assert.equal((await lp(server.url, { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: 'h' }))[0]?.['successful'], true);
  });

  it('a client that sends connects but does not read (ack extension) is closed, not buffered without bound', async (t) => {
    const { server, cleanup } = await serve(t, { wsHighWaterMark: 64 * 1024 });
    const reader = await RawPeer.open(server);
    cleanup(() => reader.socket.destroy());
    reader.send([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], ext: { ack: true }, id: 'h' }]);
    const clientId = (await reader.next((m) => m['id'] === 'h'))['clientId'] as string;
    reader.send([
      { channel: '/meta/subscribe', clientId, subscription: '/big', id: 's' },
      { channel: '/meta/connect', clientId, connectionType: 'websocket', advice: { timeout: 0 }, ext: { ack: -1 }, id: 'c' },
    ]);
    await reader.next((m) => m['id'] === 'c');
    const blob = 'x'.repeat(8 * 1024);
    for (let i = 0; i < 20; i++) await server.cometd.publish('/big', { i, blob });
    // Every connect that acknowledges nothing gets all 160 KB again; the client reads none of it.
    reader.socket.pause();
    let sent = 0;
    for (; sent < 1000; sent++) {
      if ((await server.cometd.stats()).sockets === 0) break;
      reader.send([{ channel: '/meta/connect', clientId, connectionType: 'websocket', ext: { ack: -1 }, id: 'k' + sent }]);
      await sleep(5);
    }
    await waitFor(async () => (await server.cometd.stats()).sockets === 0, { timeout: 5000, what: 'the server to close the socket' });
    assert.ok(sent < 1000, `closed after ${sent} connects`);
  });

  it('close() does not leave a socket open that never answers the close frame', async (t) => {
    const server = await startServer({ timeout: 3000 });
    const raw = await RawPeer.open(server);
    t.after(async () => {
      raw.socket.destroy();
      await server.close();
    });
    const clientId = await raw.session('/closing');
    const started = Date.now();
    await server.cometd.close();
    await waitFor(() => raw.closeCode !== undefined, { timeout: 2000, what: 'a close frame' });
    assert.equal(raw.closeCode, 1001);
    // The peer never answers the close frame; the server must not keep the
    // TCP connection (and so http.close()) waiting for it for long.
    const closedAt = await Promise.race([raw.closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 2500).unref())]);
    assert.ok(closedAt !== undefined, `socket still open ${Date.now() - started} ms after close() (session ${clientId})`);
  });

  it("slow consumer, 'drop-oldest': a queue over maxQueue keeps the newest messages and the session", async (t) => {
    const { server, peer } = await serve(t, { maxQueue: 5, slowConsumer: 'drop-oldest' });
    const ended: string[] = [];
    server.cometd.on('disconnect', (_id, reason) => ended.push(reason));
    const p = await peer();
    const clientId = await p.session('/flood');
    p.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'held' });
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the connect to be held' });
    // 20 in one tick: the queue holds 5 when the session is flushed.
    await Promise.all(Array.from({ length: 20 }, (_, n) => server.cometd.publish('/flood', n)));
    await p.next((m) => m['channel'] === '/flood' && m['data'] === 19, 2000, 'the newest message');
    await server.cometd.publish('/flood', 'after');
    await p.next((m) => m['data'] === 'after', 2000, 'a later message');
    assert.deepEqual(p.deliveries('/flood').map((m) => m['data']), [15, 16, 17, 18, 19, 'after']);
    assert.deepEqual(ended, []);
    assert.equal(p.ws.readyState, WebSocket.OPEN);
  });

  it("slow consumer, 'disconnect': a queue over maxQueue ends the session with reconnect: handshake", async (t) => {
    const { server, peer } = await serve(t, { maxQueue: 5, slowConsumer: 'disconnect' });
    const p = await peer();
    const clientId = await p.session('/flood');
    p.send({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'held' });
    await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { timeout: 2000, what: 'the connect to be held' });
    const ended = nextEvent<[string, string]>(server, 'disconnect', (id) => id === clientId, 3000);
    await Promise.all(Array.from({ length: 20 }, (_, n) => server.cometd.publish('/flood', n)));
    const [, reason] = await ended;
    assert.equal(reason, 'server');
    const told = await p.next((m) => m['advice']?.reconnect === 'handshake', 2000, 'advice to handshake again');
    assert.ok(told['channel'] === '/meta/disconnect' || told['channel'] === '/meta/connect', JSON.stringify(told));
    assert.ok(p.deliveries('/flood').length <= 5, 'no more than maxQueue delivered');
    assert.equal(await server.cometd.publish('/flood', 'gone'), 0);
    const [again] = await p.request({ channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'again' });
    assert.equal(again?.['successful'], false);
    assert.match(String(again?.['error']), /^402:/);
    assert.equal(again?.['advice']?.reconnect, 'handshake');
    // The socket itself may be reused for a new session.
    await p.handshake();
  });

  it('over WebSocket, queued messages and new ones arrive in publish order even when a connect shares a slow batch', async () => {
    const s = await startServer({ timeout: 2000 });
    s.cometd.use('/slow', () => sleep(200));
    try {
      const lp = await openWire('long-polling', s.url);
      const clientId = await wireSession(lp);
      await lp.send({ channel: '/meta/subscribe', clientId, subscription: '/order' });
      await s.cometd.publish('/order', 'M1'); // queued while on long-polling
      const { ws, received } = await rawSocket(s.url);
      ws.send(JSON.stringify([
        { channel: '/meta/connect', clientId, connectionType: 'websocket', id: 'c' },
        { channel: '/slow', clientId, data: 'x', id: 'slow' },
      ]));
      setTimeout(() => void s.cometd.publish('/order', 'M2'), 50);
      await waitFor(() => received.some((m) => m['id'] === 'slow'), { timeout: 3000, what: 'the slow reply' });
      await waitFor(() => received.filter((m) => m['channel'] === '/order').length === 2, { timeout: 3000, what: 'both messages' });
      assert.deepEqual(received.filter((m) => m['channel'] === '/order').map((m) => m['data']), ['M1', 'M2']);
      ws.close();
    } finally {
      await s.close();
    }
  });

  it('a socket that floods frames faster than they are handled is closed (1008), others are not', async () => {
    // anonymousPublish lets the frames reach the slow middleware without a session.
    const s = await startServer({ anonymousPublish: true });
    s.cometd.use('/slow', () => sleep(20));
    try {
      const { ws } = await rawSocket(s.url);
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
      for (let i = 0; i < 400; i++) ws.send(JSON.stringify([{ channel: '/slow', data: i }]));
      assert.equal(await within(closed, 5000, 'the socket to be closed'), 1008);
      const other = await post(s.url, [hs]);
      assert.equal(other.json[0].successful, true);
    } finally {
      await s.close();
    }
  });
});

describe('cross-origin access', () => {
  it('WebSocket: without cors only same-origin pages (or no Origin) may upgrade', async () => {
    const s = await startServer({});
    try {
      assert.equal(await upgradeStatus(s.url, {}), 101);
      assert.equal(await upgradeStatus(s.url, { Origin: s.origin }), 101);
      assert.equal(await upgradeStatus(s.url, { Origin: 'https://evil.example' }), 403);
    } finally {
      await s.close();
    }
  });

  it('WebSocket: with cors, the origins it allows', async () => {
    const s = await startServer({ cors: { origin: ['https://good.example'] } });
    try {
      assert.equal(await upgradeStatus(s.url, { Origin: 'https://good.example' }), 101);
      assert.equal(await upgradeStatus(s.url, { Origin: 'https://evil.example' }), 403);
    } finally {
      await s.close();
    }
  });
});
