/** The engine suite on MemoryEngine, and what only MemoryEngine's history promises (epochs per instance, bounds). */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { MemoryEngine } from '../lib/engines/memory.js';
import type { EngineConfig } from '../lib/engines/engine.js';
import { expand } from '../lib/server/expand.js';
import { engineSuite, RecordingHost } from './engine-suite.js';

engineSuite({
  name: 'MemoryEngine',
  create: async () => new MemoryEngine(),
  history: true,
  presence: true,
  checksPublisher: true,
});

describe('MemoryEngine history', () => {
  const settings = { size: 10, ttl: 60_000 };
  const marked = (channel: string, data: unknown) => JSON.stringify({ channel, data }).slice(0, -1) + ',"ext":{"position":}}';
  const publish = (engine: MemoryEngine, channel: string, data: unknown, kept = settings) =>
    engine.publish(expand(channel), marked(channel, data), { history: { channel, ...kept, tail: 2 } });

  async function open(t: TestContext, config: Partial<EngineConfig> = {}): Promise<MemoryEngine> {
    const engine = new MemoryEngine();
    await engine.open(new RecordingHost(), {
      maxQueue: Infinity, maxQueueBytes: Infinity, maxSubscriptions: Infinity, maxSessionDataBytes: Infinity, sweepInterval: 50, ...config,
    });
    t.after(() => engine.close());
    return engine;
  }

  it('a new engine (a restart) is a new epoch: a position from the old one is not recovered', async (t) => {
    const old = await open(t);
    await publish(old, '/h/a', 1);
    const before = await old.history('/h/a', settings, {});
    const fresh = await open(t);
    await publish(fresh, '/h/a', 1);
    const after = await fresh.history('/h/a', settings, {});
    assert.notEqual(after.epoch, before.epoch);
    const id = await fresh.createSession({ ack: false, ttl: 60_000 });
    const result = await fresh.recover(id, '/h/a', { epoch: before.epoch, offset: 0 }, settings);
    assert.equal(result?.recovered, false);
    assert.deepEqual((await fresh.take(id))?.messages, []);
  });

  it('publishing to 20,000 distinct history channels stays within maxHistoryBytes; the channel published to last keeps its epoch', async (t) => {
    const max = 256 * 1024;
    const engine = await open(t, { maxHistoryBytes: max });
    await publish(engine, '/h/keep', 'first');
    const { epoch } = await engine.history('/h/keep', settings, {});
    let peak = 0;
    for (let i = 0; i < 20_000; i++) {
      await publish(engine, `/h/c${i}`, 'x'.repeat(100));
      peak = Math.max(peak, engine.historyStats().bytes);
    }
    const stats = engine.historyStats();
    assert.ok(peak <= max, `peak ${peak} over ${max}`);
    assert.ok(stats.channels < 2000, `${stats.channels} channels kept`);
    assert.ok(stats.channels > 100, `${stats.channels} channels kept: the bound should hold a good many`);
    const newest = await engine.history('/h/c19999', settings, {});
    assert.equal(newest.messages.length, 1, 'the channel published to last is kept');
    // The first channel was evicted: it starts again with a new epoch.
    const again = await engine.history('/h/keep', settings, {});
    assert.notEqual(again.epoch, epoch);
    assert.equal(again.offset, 0);
  });

  it('a ring keeps at most size messages, and evicting under maxHistoryBytes takes the least recently published channel first', async (t) => {
    const engine = await open(t, { maxHistoryBytes: 4096 });
    for (let i = 0; i < 25; i++) await publish(engine, '/h/a', i);
    assert.equal(engine.historyStats().messages, settings.size);
    for (let i = 0; i < 5; i++) await publish(engine, '/h/b', 'y'.repeat(300));
    await publish(engine, '/h/a', 'again');
    // /h/b is now the least recently published: it loses messages first.
    for (let i = 0; i < 6; i++) await publish(engine, '/h/c', 'z'.repeat(300));
    const a = await engine.history('/h/a', settings, {});
    const b = await engine.history('/h/b', settings, {});
    assert.equal(a.offset, 26, '/h/a kept its epoch and offsets');
    assert.ok(a.messages.length > 0);
    assert.ok(b.messages.length < 5, `/h/b kept ${b.messages.length}`);
    assert.ok(engine.historyStats().bytes <= 4096);
  });

  it('channels idle past their ttl are dropped by the sweep; their positions stay while the bytes allow, so they go on in the same epoch', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const engine = await open(t);
    const short = { size: 10, ttl: 1000 };
    for (let i = 0; i < 500; i++) await publish(engine, `/h/idle${i}`, i, short);
    await publish(engine, '/h/long', 'kept', { size: 10, ttl: 600_000 });
    const before = await engine.history('/h/idle7', short, {});
    assert.equal(engine.historyStats().channels, 501);
    t.mock.timers.tick(999);
    assert.equal(engine.historyStats().channels, 501, 'not idle past ttl yet');
    t.mock.timers.tick(100);
    const idle = engine.historyStats();
    assert.deepEqual({ channels: idle.channels, messages: idle.messages, positions: idle.positions }, { channels: 1, messages: 1, positions: 500 });
    await publish(engine, '/h/idle7', 'again', short);
    const after = await engine.history('/h/idle7', short, {});
    assert.deepEqual({ epoch: after.epoch, offset: after.offset }, { epoch: before.epoch, offset: 2 });
    const id = await engine.createSession({ ack: false, ttl: 600_000 });
    assert.deepEqual(await engine.recover(id, '/h/idle7', { epoch: before.epoch, offset: 1 }, short), { recovered: true, epoch: before.epoch, offset: 2, missed: 1 });
    await engine.destroy(id);
    t.mock.timers.tick(600_000);
    const gone = engine.historyStats();
    assert.deepEqual({ channels: gone.channels, messages: gone.messages, positions: gone.positions }, { channels: 0, messages: 0, positions: 501 });
  });

  it('under maxHistoryBytes the positions of idle channels go first: such a channel then starts a new epoch', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 });
    const engine = await open(t, { maxHistoryBytes: 64 * 1024 });
    const short = { size: 10, ttl: 1000 };
    await publish(engine, '/h/first', 1, short);
    const first = await engine.history('/h/first', short, {});
    for (let i = 0; i < 300; i++) await publish(engine, `/h/idle${i}`, i, short);
    t.mock.timers.tick(1100);
    assert.equal(engine.historyStats().channels, 0);
    for (let i = 0; i < 400; i++) await publish(engine, `/h/busy${i}`, 'x'.repeat(100), { size: 10, ttl: 600_000 });
    assert.ok(engine.historyStats().bytes <= 64 * 1024);
    assert.ok(engine.historyStats().positions < 301, 'some positions were forgotten');
    const again = await engine.history('/h/first', short, {});
    assert.notEqual(again.epoch, first.epoch, 'the oldest position went first');
    assert.equal(again.offset, 0);
  });
});
