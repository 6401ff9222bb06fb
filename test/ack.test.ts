/**
 * The CometD ack extension end to end with the real CometD client and its
 * AckExtension: a proxy loses connect replies that carry messages, and every
 * message still arrives, once, in order.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adapt } from 'cometd-nodejs-client';
import { CometD } from 'cometd';
import { AckExtension } from 'cometd';
import { startServer, type TestServer } from './helpers/http-server.js';
import { startCuttingProxy, type CuttingProxy } from './helpers/tcp-proxy.js';
import { openWire, type Msg } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';

adapt();

type CometDClient = InstanceType<typeof CometD>;

function handshake(cometd: CometDClient): Promise<Msg> {
  return new Promise((resolve, reject) => {
    cometd.handshake((reply: Msg) => (reply['successful'] ? resolve(reply) : reject(new Error(JSON.stringify(reply)))));
  });
}

for (const transport of ['long-polling', 'websocket'] as const) {
  describe(`ack extension with the CometD client over ${transport}`, () => {
    let s: TestServer;
    let proxy: CuttingProxy;
    let cometd: CometDClient;
    before(async () => {
      s = await startServer({ timeout: 2000, maxInterval: 10_000 });
      // Lose a server→client chunk that carries a connect reply with deliveries in it.
      proxy = await startCuttingProxy(s.port, (chunk) => {
        const text = chunk.toString('latin1');
        return text.includes('"channel":"/meta/connect"') && text.includes('"channel":"/ack/test","data"');
      }, 3);
    });
    after(async () => {
      await new Promise<void>((resolve) => cometd.disconnect(() => resolve()));
      await proxy.close();
      await s.close();
    });

    test('every message arrives once, in order, although replies carrying them were lost', async () => {
      cometd = new CometD();
      cometd.registerExtension('ack', new AckExtension());
      cometd.unregisterTransport(transport === 'websocket' ? 'long-polling' : 'websocket');
      cometd.unregisterTransport('callback-polling');
      cometd.configure({ url: `http://127.0.0.1:${proxy.port}/cometd`, backoffIncrement: 50, maxBackoff: 300, logLevel: 'warn' });
      const hs = await handshake(cometd);
      assert.equal(hs['ext']?.['ack'], true, 'server offers acks');
      const got: number[] = [];
      await new Promise<void>((resolve) => cometd.subscribe('/ack/test', (m: Msg) => got.push(m['data'] as number), () => resolve()));
      assert.equal(cometd.getTransport()?.type, transport);
      const N = 30;
      for (let i = 1; i <= N; i++) {
        await s.cometd.publish('/ack/test', i);
        await sleep(15);
      }
      await waitFor(() => got.length >= N, { timeout: 15_000, what: `all ${N} messages (got ${got.length}, cuts ${proxy.cuts})` });
      await sleep(200);
      assert.ok(proxy.cuts >= 1, 'the proxy lost at least one reply');
      assert.deepEqual(got, Array.from({ length: N }, (_, i) => i + 1));
    });
  });
}

describe('ack extension on the wire', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ timeout: 300, maxInterval: 5000, maxQueue: 5 });
  });
  after(() => s.close());

  test('batches: unacknowledged messages are sent again; acknowledged ones are dropped', async () => {
    const w = await openWire('long-polling', s.url);
    const [hs] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { ack: true } });
    assert.deepEqual(hs?.['ext'], { ack: true });
    const clientId = hs?.['clientId'];
    const connect = (ack: number) => w.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', ext: { ack }, advice: { timeout: 0 } });
    const [c0] = await connect(0);
    await w.send({ channel: '/meta/subscribe', clientId, subscription: '/b' });
    const b0 = c0?.['ext']?.['ack'] as number;
    await s.cometd.publish('/b', 'one');
    const [c1] = await connect(b0);
    const b1 = c1?.['ext']?.['ack'] as number;
    assert.ok(b1 > b0);
    assert.deepEqual(w.delivered.map((m) => m['data']), ['one']);
    // Pretend the reply carrying batch b1 was lost: ack b0 again. 'one' comes back, with 'two'.
    await s.cometd.publish('/b', 'two');
    const [c2] = await connect(b0);
    assert.deepEqual(w.delivered.map((m) => m['data']), ['one', 'one', 'two']);
    const b2 = c2?.['ext']?.['ack'] as number;
    // Acknowledge b2: nothing comes back.
    await connect(b2);
    assert.equal(w.delivered.length, 3);
  });

  test('a client without ext.ack gets no ack batches', async () => {
    const w = await openWire('long-polling', s.url);
    const [hs] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] });
    assert.equal(hs?.['ext'], undefined);
    const [c] = await w.send({ channel: '/meta/connect', clientId: hs?.['clientId'], connectionType: 'long-polling' });
    assert.equal(c?.['ext'], undefined);
  });

  test('a session that never acknowledges is bounded by maxQueue (drop-oldest)', async () => {
    const w = await openWire('long-polling', s.url);
    const [hs] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { ack: true } });
    const clientId = hs?.['clientId'];
    await w.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', ext: { ack: 0 } });
    await w.send({ channel: '/meta/subscribe', clientId, subscription: '/q' });
    for (let i = 0; i < 12; i++) await s.cometd.publish('/q', i);
    const [c] = await w.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', ext: { ack: 0 } });
    assert.equal(c?.['successful'], true);
    assert.deepEqual(w.delivered.map((m) => m['data']), [7, 8, 9, 10, 11]);
    for (let i = 12; i < 15; i++) await s.cometd.publish('/q', i);
    w.delivered.length = 0;
    await w.send({ channel: '/meta/connect', clientId, connectionType: 'long-polling', ext: { ack: 0 } });
    assert.deepEqual(w.delivered.map((m) => m['data']), [10, 11, 12, 13, 14]);
  });

  test('ack: false turns the extension off', async () => {
    const off = await startServer({ ack: false });
    try {
      const w = await openWire('long-polling', off.url);
      const [hs] = await w.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], ext: { ack: true } });
      assert.equal(hs?.['ext'], undefined);
    } finally {
      await off.close();
    }
  });
});
