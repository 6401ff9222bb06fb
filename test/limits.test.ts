/**
 * Memory stays bounded whatever clients do: queues in bytes
 * (`maxQueueBytes`), stalled subscribers with large messages, and
 * publishes to many distinct long channels (the expansion cache is
 * bounded in characters). A soak with a stated bound on heap growth.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { expand } from '../lib/server/expand.js';
import { startServer, type TestServer } from './helpers/http-server.js';
import { openWire, wireSession, type Wire } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function heapMiB(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1_048_576;
}

describe('memory bounds', () => {
  const servers: TestServer[] = [];
  const wires: Wire[] = [];
  after(async () => {
    for (const w of wires) w.close();
    for (const s of servers) await s.close();
  });

  it('maxQueueBytes bounds a stalled session in bytes: the oldest are dropped', async () => {
    const server = await startServer({ maxQueueBytes: 1_048_576, maxBodyBytes: 2_000_000 });
    servers.push(server);
    const wire = await openWire('long-polling', server.url);
    wires.push(wire);
    const clientId = await wireSession(wire);
    await wire.send({ channel: '/meta/subscribe', clientId, subscription: '/big' });
    const chunk = 'x'.repeat(100_000);
    for (let i = 0; i < 40; i++) await server.cometd.publish('/big', { i, chunk });
    await wire.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } });
    const got = wire.delivered;
    const size = got.reduce((n, m) => n + JSON.stringify(m).length, 0);
    assert.ok(got.length > 0 && got.length <= 11, `${got.length} messages kept`);
    assert.ok(size <= 1_048_576 + 100_100, `${size} characters delivered`);
    assert.equal((got.at(-1)?.['data'] as { i: number }).i, 39, 'the newest is kept');
  });

  it('soak: stalled subscribers, large messages and distinct long channels keep the heap within 32 MiB of where it started', async () => {
    const server = await startServer({ maxQueueBytes: 512 * 1024, wsHighWaterMark: 256 * 1024, maxBodyBytes: 2_000_000 });
    servers.push(server);
    // Stalled: long-polling sessions that never connect again, and a WebSocket whose reader stopped.
    for (let i = 0; i < 4; i++) {
      const wire = await openWire('long-polling', server.url);
      wires.push(wire);
      const id = await wireSession(wire, i % 2 === 0 ? { ack: true } : undefined);
      await wire.send({ channel: '/meta/subscribe', clientId: id, subscription: '/**' });
    }
    const ws = new WebSocket(server.url.replace(/^http/, 'ws'));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const replies: unknown[] = [];
    ws.on('message', (d) => replies.push(d));
    ws.send(JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['websocket'], id: '1' }]));
    await waitFor(() => replies.length > 0, { timeout: 3000, what: 'the handshake reply' });
    const hs = (JSON.parse(String(replies[0])) as Array<{ clientId: string }>)[0];
    ws.send(JSON.stringify([
      { channel: '/meta/connect', clientId: hs?.clientId, connectionType: 'websocket', advice: { timeout: 0 } },
      { channel: '/meta/subscribe', clientId: hs?.clientId, subscription: '/**' },
    ]));
    await sleep(100);
    (ws as unknown as { _socket: { pause(): void } })._socket.pause();

    const before = heapMiB();
    const big = 'y'.repeat(200_000);
    for (let i = 0; i < 150; i++) await server.cometd.publish('/soak/big', { i, big });
    // Distinct long, deep channels: 40 segments of 20 characters each.
    const segment = (i: number, j: number) => `s${i}-${j}`.padEnd(20, 'z');
    for (let i = 0; i < 3000; i++) {
      const channel = '/' + Array.from({ length: 40 }, (_, j) => segment(i, j)).join('/');
      await server.cometd.publish(channel, i);
    }
    const grown = heapMiB() - before;
    console.log(`heap growth ${grown.toFixed(1)} MiB`);
    assert.ok(grown < 32, `heap grew ${grown.toFixed(1)} MiB`);
    // Without the character bound, 3000 such expansions alone would hold about 3000 × 41 × 400 characters.
    const one = expand('/' + Array.from({ length: 40 }, (_, j) => segment(0, j)).join('/'));
    assert.equal(one.length, 42);
    ws.terminate();
  });
});
