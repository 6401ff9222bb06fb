/**
 * Held connects: one shared deadline structure instead of a timer, an
 * AbortSignal and a suspended async chain each (`Holds`); and the life of
 * one held connect (`HeldConnect`): answered once whatever releases it
 * first (a publish, its deadline, a newer connect, a disconnect, its client
 * going away, the server's close), never twice, and nothing taken for it
 * lost.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine, type Logger, type TakeResult } from '../lib/index.js';
import { resolveOptions } from '../lib/options.js';
import { type Holdable, type HoldList, Holds } from '../lib/server/hold.js';
import { Server } from '../lib/server/server.js';
import { FakeConnection } from './helpers/fake-connection.js';
import { sleep, waitFor } from './helpers/wait.js';

type Msg = Record<string, any>;

// ---------------------------------------------------------------- the deadline lists

/** An entry that records its release, as a held connect leaves its list when released. */
class Entry implements Holdable {
  deadline = 0;
  prev: Holdable | undefined;
  next: Holdable | undefined;
  list: HoldList | undefined;
  readonly name: string;
  readonly seen: string[];
  constructor(name: string, seen: string[]) {
    this.name = name;
    this.seen = seen;
  }
  release(): void {
    if (!this.list) return;
    this.list.remove(this);
    this.seen.push(this.name);
  }
}

test('connects held for different durations expire in deadline order, each once', (t) => {
  // Mocked clock and timers: the order is the test, not how fast a loaded machine runs them.
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const holds = new Holds();
  const order: string[] = [];
  for (const [name, ms] of [['a', 120], ['b', 40], ['c', 120], ['d', 80]] as const) holds.add(new Entry(name, order), ms);
  assert.equal(holds.size, 4);
  t.mock.timers.tick(40);
  assert.deepEqual(order, ['b']);
  t.mock.timers.tick(40);
  assert.deepEqual(order, ['b', 'd']);
  t.mock.timers.tick(40);
  assert.deepEqual(order, ['b', 'd', 'a', 'c']);
  assert.equal(holds.size, 0);
});

test('a released entry leaves the deadline lists at once and never expires', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const holds = new Holds();
  const seen: string[] = [];
  const a = new Entry('a', seen);
  const b = new Entry('b', seen);
  holds.add(a, 50);
  holds.add(b, 50);
  b.release();
  b.release();
  assert.deepEqual(seen, ['b']);
  assert.equal(holds.size, 1);
  t.mock.timers.tick(100);
  assert.deepEqual(seen, ['b', 'a'], 'nothing fires twice');
  assert.equal(holds.size, 0);
});

test('releaseAll answers every held connect (server closing)', () => {
  const holds = new Holds();
  const seen: string[] = [];
  for (let i = 0; i < 1000; i++) holds.add(new Entry(String(i), seen), 1000 + (i % 3));
  holds.releaseAll();
  assert.equal(seen.length, 1000);
  assert.equal(holds.size, 0);
});

// ---------------------------------------------------------------- one held connect's life

const QUIET: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };

/** A MemoryEngine whose single takes can be held back after they took: the window a connect's first take leaves open. */
class GatedEngine extends MemoryEngine {
  gate: Promise<void> | undefined;
  takes = 0;
  override async take(clientId: string, ack?: number): Promise<TakeResult | null> {
    const result = await super.take(clientId, ack);
    this.takes++;
    if (this.gate) await this.gate;
    return result;
  }
}

interface Session {
  clientId: string;
  /** Every answer to this session's connects, in the order they came: each request's replies. */
  answers: Msg[][];
}

async function setUp(t: TestContext, options: { timeout?: number } = {}): Promise<{ server: Server; engine: GatedEngine; session: () => Promise<Session> }> {
  const engine = new GatedEngine();
  const server = new Server(resolveOptions({ logger: QUIET, timeout: options.timeout ?? 5000, engine }));
  await server.open();
  t.after(() => server.close());
  const session = async (): Promise<Session> => {
    const [hs] = (await server.process([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }], new FakeConnection()))
      .map((text) => JSON.parse(text) as Msg);
    const clientId = hs?.['clientId'] as string;
    await server.process([{ channel: '/meta/subscribe', clientId, subscription: '/news' }], new FakeConnection());
    await server.process([{ channel: '/meta/connect', clientId, connectionType: 'long-polling' }], new FakeConnection()); // the first is never held
    return { clientId, answers: [] };
  };
  return { server, engine, session };
}

/** Send a connect for `s`; its answer (each one it gets) lands in `s.answers`. */
function connect(server: Server, s: Session, conn = new FakeConnection()): FakeConnection {
  const index = s.answers.length;
  s.answers.push([]);
  let calls = 0;
  server.handle([{ channel: '/meta/connect', clientId: s.clientId, connectionType: 'long-polling' }], conn, (texts) => {
    calls++;
    assert.equal(calls, 1, 'a connect is answered once');
    s.answers[index] = texts.map((text) => JSON.parse(text) as Msg);
  });
  return conn;
}

/** Connects held on the server now. */
const heldNow = async (server: Server): Promise<number> => (await server.stats()).heldConnections;
const answered = (s: Session): number => s.answers.filter((a) => a.length > 0).length;
const delivered = (s: Session): unknown[] => s.answers.flat().filter((m) => m['channel'] === '/news').map((m) => m['data']);
const connectReplies = (s: Session): Msg[] => s.answers.flat().filter((m) => m['channel'] === '/meta/connect');

test('a held connect is answered by a publish, once: its deadline, a newer connect and the close find it answered', async (t) => {
  // A 1 s hold: a loaded machine may stall the test past a 150 ms one before the publish, which then finds it answered empty.
  const hold = 1000;
  const { server, session } = await setUp(t, { timeout: hold });
  const s = await session();
  const started = performance.now();
  connect(server, s);
  await waitFor(async () => (await heldNow(server)) === 1, { what: 'the connect held' });
  await server.publish('/news', 1);
  await waitFor(() => answered(s) === 1, { what: 'the answer' });
  assert.deepEqual(delivered(s), [1]);
  assert.equal(await heldNow(server), 0);
  await sleep(Math.max(0, hold + 100 - (performance.now() - started))); // past its deadline: nothing more
  await server.close();
  assert.equal(s.answers.length, 1);
  assert.deepEqual(delivered(s), [1]);
});

test('its deadline, then a publish: answered empty once, and the message waits for the next connect', async (t) => {
  const { server, session } = await setUp(t, { timeout: 60 });
  const s = await session();
  connect(server, s);
  await waitFor(() => answered(s) === 1, { what: 'the answer at the deadline' });
  assert.deepEqual(delivered(s), []);
  await server.publish('/news', 2);
  connect(server, s);
  await waitFor(() => answered(s) === 2, { what: 'the next connect' });
  assert.deepEqual(delivered(s), [2]);
});

test('a publish and a newer connect in the same tick: each connect answered once, the message delivered once', async (t) => {
  const { server, session } = await setUp(t);
  const s = await session();
  connect(server, s);
  await waitFor(async () => (await heldNow(server)) === 1, { what: 'the connect held' });
  void server.publish('/news', 3);
  connect(server, s);
  await waitFor(() => answered(s) >= 1, { what: 'the older connect answered' });
  await sleep(50);
  if (answered(s) < 2) {
    await server.publish('/news', 'nudge');
    await waitFor(() => answered(s) === 2, { what: 'the newer connect answered' });
  }
  assert.deepEqual(delivered(s).filter((d) => d === 3), [3], 'delivered once, not lost');
});

test('its client goes away: answered once with nothing taken; what is published after waits for the next connect', async (t) => {
  const { server, engine, session } = await setUp(t);
  const s = await session();
  const conn = connect(server, s);
  await waitFor(async () => (await heldNow(server)) === 1, { what: 'the connect held' });
  const takes = engine.takes;
  conn.abort();
  conn.abort();
  await waitFor(() => answered(s) === 1, { what: 'the aborted connect answered' });
  assert.equal(engine.takes, takes, 'nothing taken for a client that went away');
  assert.equal(await heldNow(server), 0);
  await server.publish('/news', 4);
  connect(server, s);
  await waitFor(() => answered(s) === 2, { what: 'the next connect' });
  assert.deepEqual(delivered(s), [4]);
});

test('a disconnect answers the held connect once, with reconnect none', async (t) => {
  const { server, session } = await setUp(t);
  const s = await session();
  connect(server, s);
  await waitFor(async () => (await heldNow(server)) === 1, { what: 'the connect held' });
  await server.process([{ channel: '/meta/disconnect', clientId: s.clientId }], new FakeConnection());
  await waitFor(() => answered(s) === 1, { what: 'the held connect answered' });
  assert.equal(connectReplies(s)[0]?.['advice']?.['reconnect'], 'none');
  await server.publish('/news', 5);
  await sleep(50);
  assert.equal(s.answers.length, 1);
});

test('the server closing answers every held connect once', async (t) => {
  const { server, session } = await setUp(t);
  const sessions = await Promise.all([session(), session(), session()]);
  for (const s of sessions) connect(server, s);
  await waitFor(async () => (await heldNow(server)) === 3, { what: 'three connects held' });
  await server.close();
  for (const s of sessions) assert.equal(answered(s), 1);
});

test('a publish while its first take is under way: what the publish took goes out in its answer (not lost)', async (t) => {
  const { server, engine, session } = await setUp(t);
  const s = await session();
  let open!: () => void;
  engine.gate = new Promise((resolve) => (open = resolve));
  connect(server, s);
  await waitFor(async () => engine.takes > 0 && (await heldNow(server)) === 1, { what: 'the first take made' });
  await server.publish('/news', 6); // its wake takes the queue for this connect, in the tick's batch
  await sleep(20);
  engine.gate = undefined;
  open();
  await waitFor(() => answered(s) === 1, { what: 'the answer' });
  assert.deepEqual(delivered(s), [6]);
  assert.equal(await heldNow(server), 0);
});

test('a newer connect, or its client going away, while its first take is under way: each answered once', async (t) => {
  const { server, engine, session } = await setUp(t);
  const s = await session();
  let open!: () => void;
  engine.gate = new Promise((resolve) => (open = resolve));
  const first = connect(server, s);
  await waitFor(() => engine.takes > 0, { what: 'the first take made' });
  first.abort();
  connect(server, s); // released the first (already aborted): nothing happens to it twice
  await waitFor(() => engine.takes > 1, { what: 'the second take made' });
  engine.gate = undefined;
  open();
  await waitFor(() => answered(s) === 1, { what: 'the aborted connect answered' });
  assert.equal(await heldNow(server), 1, 'the newer connect waits');
  await server.publish('/news', 7);
  await waitFor(() => answered(s) === 2, { what: 'the newer connect answered' });
  assert.deepEqual(delivered(s), [7]);
});

test('publish, deadline, newer connect, disconnect, client gone and close all at once: every connect answered once, nothing delivered twice', async (t) => {
  // A hold long enough that a loaded machine holds all six before any deadline; the race starts close to it.
  const hold = 600;
  const { server, session } = await setUp(t, { timeout: hold });
  const sessions = await Promise.all(Array.from({ length: 6 }, () => session()));
  const held = performance.now();
  const conns = sessions.map((s) => connect(server, s));
  await waitFor(async () => (await heldNow(server)) === 6, { what: 'six connects held' });
  await sleep(Math.max(0, hold - 10 - (performance.now() - held))); // close to their deadline
  void server.publish('/news', 8);
  (conns[0] as FakeConnection).abort();
  connect(server, sessions[1] as Session);
  void server.process([{ channel: '/meta/disconnect', clientId: (sessions[2] as Session).clientId }], new FakeConnection());
  await sleep(10);
  await server.close();
  for (const s of sessions) {
    assert.equal(answered(s), s.answers.length, 'every connect answered');
    assert.ok(delivered(s).filter((d) => d === 8).length <= 1, 'nothing twice');
  }
});
