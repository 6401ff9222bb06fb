/**
 * What a health check costs: concurrent `/health` requests share one
 * engine check and its result is reused for `maxAge`, and the memory
 * engine's `stats()` keeps counts instead of walking its sessions. Costs
 * are counted (engine calls, iterations), never timed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryEngine } from '../lib/engines/memory.js';
import type { EngineHost, EngineStats } from '../lib/engines/engine.js';
import { checkHealth, createHealthHandler } from '../lib/ops/index.js';
import { serverOf } from '../lib/internal.js';
import { get, startServer, type TestServer } from './helpers/http-server.js';
import { testClients } from './helpers/clients.js';
import { waitFor } from './helpers/wait.js';

const { cleanup } = testClients();

/** The memory engine, counting its `stats()` calls; while `gate` is set, they wait for it. */
class CountingEngine extends MemoryEngine {
  calls = 0;
  gate: Promise<void> | undefined;
  override async stats(): Promise<EngineStats> {
    this.calls++;
    if (this.gate) await this.gate;
    return super.stats();
  }
}

/** A server whose `/health` counts the requests that reached the handler. */
async function healthServer(options: Parameters<typeof createHealthHandler>[1] = {}): Promise<{ s: TestServer; engine: CountingEngine; arrived: () => number }> {
  const engine = new CountingEngine();
  let arrived = 0;
  let health: ReturnType<typeof createHealthHandler> | undefined;
  const s = await startServer({ engine }, {
    configure: (app) => app.get('/health', (req, res, next) => {
      arrived++;
      health?.(req, res, next);
    }),
  });
  cleanup(() => s.close());
  health = createHealthHandler(serverOf(s.cometd), options);
  return { s, engine, arrived: () => arrived };
}

describe('health is shared between callers', () => {
  test('fifty concurrent /health requests cause one engine check', async () => {
    const { s, engine, arrived } = await healthServer({ maxAge: 0 });
    let release!: () => void;
    engine.gate = new Promise<void>((resolve) => (release = resolve));
    engine.calls = 0;
    const answers = Array.from({ length: 50 }, () => get(`${s.origin}/health`));
    // Every request is at the handler, and the first check is still waiting for the engine.
    await waitFor(() => arrived() === 50, { timeout: 10_000, what: 'fifty requests at the handler' });
    release();
    engine.gate = undefined;
    const results = await Promise.all(answers);
    assert.deepEqual(new Set(results.map((r) => r.status)), new Set([200]));
    assert.deepEqual(results[0]?.json, { status: 'ok' });
    assert.equal(engine.calls, 1, 'one engine check for fifty concurrent requests');
  });

  test('a result is reused for maxAge; maxAge 0 checks for each request in turn', async () => {
    const cached = await healthServer({ maxAge: 600_000 });
    cached.engine.calls = 0;
    for (let i = 0; i < 20; i++) assert.equal((await get(`${cached.s.origin}/health`)).status, 200);
    assert.equal(cached.engine.calls, 1, 'twenty requests in turn, one check');

    const fresh = await healthServer({ maxAge: 0 });
    fresh.engine.calls = 0;
    for (let i = 0; i < 5; i++) assert.equal((await get(`${fresh.s.origin}/health`)).status, 200);
    assert.equal(fresh.engine.calls, 5);

    // A cached 'ok' does not hide a shutdown.
    await cached.s.cometd.close();
    const closing = await get(`${cached.s.origin}/health`);
    assert.equal(closing.status, 503);
    assert.deepEqual(closing.json, { status: 'closing' });
  });

  test('checkHealth() calls made while one is under way share it', async () => {
    const { s, engine } = await healthServer();
    await serverOf(s.cometd).open();
    let release!: () => void;
    engine.gate = new Promise<void>((resolve) => (release = resolve));
    engine.calls = 0;
    const reports = Array.from({ length: 10 }, () => checkHealth(serverOf(s.cometd), 5000));
    release();
    engine.gate = undefined;
    for (const report of await Promise.all(reports)) assert.deepEqual(report, { status: 'ok' });
    assert.equal(engine.calls, 1);
    // Once settled, the next call checks again.
    await checkHealth(serverOf(s.cometd), 5000);
    assert.equal(engine.calls, 2);
  });

  test('maxAge is checked', async () => {
    const { s } = await healthServer();
    assert.throws(() => createHealthHandler(serverOf(s.cometd), { maxAge: -1 }), /option maxAge must be a number of ms, 0 or more/);
    assert.throws(() => createHealthHandler(serverOf(s.cometd), { maxAge: 'soon' } as never), /option maxAge/);
  });
});

const host: EngineHost = { wake() {}, expired() {} };

/**
 * Calls to the iteration methods of every Map and Set while `fn` runs
 * synchronously: a `stats()` that walks its sessions iterates at least
 * once, one that keeps counts not at all.
 */
function iterationsDuring(fn: () => unknown): number {
  let count = 0;
  const restore: Array<() => void> = [];
  for (const proto of [Map.prototype, Set.prototype] as unknown as Array<Record<PropertyKey, unknown>>) {
    for (const key of ['values', 'keys', 'entries', 'forEach', Symbol.iterator]) {
      const original = proto[key] as (...args: unknown[]) => unknown;
      proto[key] = function counted(this: unknown, ...args: unknown[]) {
        count++;
        return original.apply(this, args);
      };
      restore.push(() => (proto[key] = original));
    }
  }
  try {
    fn();
  } finally {
    for (const undo of restore) undo();
  }
  return count;
}

describe('MemoryEngine stats', () => {
  test('keeps counts: no walk over the sessions, and the counts follow every change', async () => {
    const engine = new MemoryEngine();
    await engine.open(host, { maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 60_000 });
    cleanup(() => engine.close());
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) ids.push(await engine.createSession({ ack: false, ttl: 60_000 }));
    for (const [i, id] of ids.entries()) {
      await engine.subscribe(id, '/a');
      await engine.subscribe(id, '/a'); // again: not a second subscription
      if (i % 2 === 0) await engine.subscribe(id, '/b/**');
    }

    let pending: Promise<EngineStats> | undefined;
    assert.equal(iterationsDuring(() => (pending = engine.stats())), 0, 'stats() iterates nothing');
    assert.deepEqual(await pending, { sessions: 1000, subscriptions: 1500 });

    await engine.unsubscribe(ids[0] as string, '/b/**');
    await engine.unsubscribe(ids[1] as string, '/b/**'); // not subscribed: nothing changes
    await engine.unsubscribe(ids[2] as string, '/nope');
    assert.deepEqual(await engine.stats(), { sessions: 1000, subscriptions: 1499 });
    await engine.destroy(ids[2] as string); // two subscriptions
    await engine.destroy(ids[2] as string); // already gone
    assert.deepEqual(await engine.stats(), { sessions: 999, subscriptions: 1497 });

    // Expiry: a session found past its deadline goes with its subscriptions.
    // Made with a long ttl and cut short once subscribed: with ttl 1 a millisecond ticking between the calls expired it early.
    const short = await engine.createSession({ ack: false, ttl: 60_000 });
    assert.equal(await engine.subscribe(short, '/a'), true);
    assert.equal(await engine.subscribe(short, '/c'), true);
    assert.deepEqual(await engine.stats(), { sessions: 1000, subscriptions: 1499 });
    assert.equal(await engine.touch(short, 1), true);
    await waitFor(async () => !(await engine.exists(short)), { timeout: 5000, what: 'the short session to expire' });
    assert.deepEqual(await engine.stats(), { sessions: 999, subscriptions: 1497 });

    await engine.close();
    assert.deepEqual(await engine.stats(), { sessions: 0, subscriptions: 0 });
  });
});

describe('health says what the store lost', () => {
  test("an engine's dataLoss is in the body once there was one; the node stays 200", async () => {
    const { s, engine } = await healthServer({ maxAge: 0 });
    assert.deepEqual((await get(`${s.origin}/health`)).json, { status: 'ok' }, 'nothing lost: nothing said');
    const last = { at: Date.now(), where: '127.0.0.1:7001', restored: 3 };
    Object.defineProperty(engine, 'dataLoss', { value: { count: 1, last } });
    const answer = await get(`${s.origin}/health`);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json, { status: 'ok', dataLoss: { count: 1, last } });
  });
});
