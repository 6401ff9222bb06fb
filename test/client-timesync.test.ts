/**
 * The client's timesync extension (`timesync` option, `serverTime()`): the
 * estimate as CometD's TimeSyncExtension.js computes it, against a
 * hand-written server whose clock runs 5 s ahead and holds its connects,
 * against this package's server, and against garbage answers.
 */

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { TimeSync } from '../lib/client/timesync.js';
import { type BayeuxMessage } from '../lib/client/node.js';
import { startServer } from './helpers/http-server.js';
import { testClients } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';

const { client, cleanup } = testClients();

describe('TimeSync, the estimate', () => {
  test('lag and offset from { tc, ts, p } as CometD computes them, averaged over the last ten samples', () => {
    let now = 1_000_000;
    const sync = new TimeSync(() => now);
    const out: BayeuxMessage = { channel: '/meta/connect' };
    sync.outgoing(out);
    assert.deepEqual(out.ext, { timesync: { tc: 1_000_000, l: 0, o: 0 } });
    // Sent at 1 000 000, received by a server 5 000 ms ahead after 30 ms, held 200 ms, back after 30 ms more.
    now = 1_000_260;
    sync.incoming({ channel: '/meta/connect', successful: true, ext: { timesync: { tc: 1_000_000, ts: 1_005_030, p: 200, a: 0 } } });
    assert.equal(sync.lag, 30);
    assert.equal(sync.offset, 5000);
    assert.equal(sync.serverTime(), 1_005_260);
    // The next request reports the estimates.
    const next: BayeuxMessage = { channel: '/meta/handshake', ext: { other: 1 } };
    sync.outgoing(next);
    assert.deepEqual(next.ext, { other: 1, timesync: { tc: 1_000_260, l: 30, o: 5000 } });
    // A second sample with an asymmetric path: averages, rounded half away from zero as toFixed() does.
    now = 1_001_000;
    sync.incoming({ channel: '/meta/connect', ext: { timesync: { tc: 1_000_900, ts: 1_005_951, p: 0 } } });
    // l2 = (1 001 000 - 1 000 900 - 0) / 2 = 50; o2 = 1 005 951 - 1 000 900 - 50 = 5001
    assert.equal(sync.lag, 40);
    assert.equal(sync.offset, 5001); // (5000 + 5001) / 2 = 5000.5 → 5001
    // Only the last ten samples count.
    for (let i = 0; i < 10; i++) {
      now += 100;
      sync.incoming({ channel: '/meta/connect', ext: { timesync: { tc: now - 20, ts: now - 10 - 7000, p: 0 } } });
    }
    assert.equal(sync.lag, 10);
    assert.equal(sync.offset, -7000);
  });

  test('answers on other channels, and garbage, are ignored', () => {
    let now = 10_000;
    const sync = new TimeSync(() => now);
    const garbage: unknown[] = [
      'x', null, 42, {}, { tc: 'a', ts: 1, p: 0 }, { tc: 1, ts: Number.NaN, p: 0 }, { tc: 1, ts: 1, p: -1 },
      { tc: 1e300, ts: 1, p: 0 }, { tc: 1, ts: Infinity, p: 0 }, { tc: 1, ts: 1 }, { tc: -Number.MAX_VALUE, ts: Number.MAX_VALUE, p: 0 },
    ];
    for (const timesync of garbage) sync.incoming({ channel: '/meta/connect', ext: { timesync } });
    sync.incoming({ channel: '/chat/x', ext: { timesync: { tc: 9_000, ts: 50_000, p: 0 } } });
    sync.incoming({ channel: '/meta/subscribe', ext: { timesync: { tc: 9_000, ts: 50_000, p: 0 } } });
    now = 10_001;
    assert.equal(sync.offset, 0);
    assert.equal(sync.lag, 0);
    const out: BayeuxMessage = { channel: '/meta/subscribe' };
    sync.outgoing(out);
    assert.equal(out.ext, undefined);
  });
});

describe('timesync on the wire', () => {
  test('a server 5 s ahead that holds its connects: serverTime() is its clock', { timeout: 15_000 }, async () => {
    const SKEW = 5000;
    const seen: Array<Record<string, unknown>> = [];
    /** The ext of every message the client without timesync sent (it tags them). */
    const plainExts: Array<Record<string, unknown>> = [];
    const server = createServer(function timesyncServer(req, res) {
      const received = Date.now();
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => { body += chunk; });
      req.on('end', () => {
        const messages = JSON.parse(body) as BayeuxMessage[];
        for (const m of messages) if (m.ext?.['who'] === 'plain') plainExts.push(m.ext);
        const hold = messages.some((m) => m.channel === '/meta/connect' && m.advice?.timeout !== 0) ? 150 : 0;
        setTimeout(() => {
          const replies = messages.map((message) => {
            const answer: BayeuxMessage = { channel: message.channel, id: message.id, successful: true, clientId: 'ts0client' };
            if (message.channel === '/meta/handshake') Object.assign(answer, { version: '1.0', supportedConnectionTypes: ['long-polling'] });
            if (message.channel === '/meta/connect') answer.advice = { reconnect: 'retry', interval: 0, timeout: 150 };
            const sync = message.ext?.['timesync'] as Record<string, number> | undefined;
            if (sync) {
              seen.push(sync);
              const answered = Date.now();
              answer.ext = { timesync: { tc: sync['tc'], ts: received + SKEW, p: answered - received, a: (sync['tc'] ?? 0) + (sync['o'] ?? 0) + (sync['l'] ?? 0) - received - SKEW } };
            }
            return answer;
          });
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(replies));
        }, hold);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup(() => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cometd`;

    const c = client(url, { transports: ['long-polling'], timesync: true });
    assert.ok(Math.abs(c.serverTime() - Date.now()) < 50, 'no offset before any answer');
    await c.connect();
    await waitFor(() => seen.length >= 5, { timeout: 5000, what: 'five synced requests' });
    const offset = c.serverTime() - Date.now();
    // Within a second of the 5 s skew: the estimate is off by at most the network's asymmetry, which a loaded
    // machine can stretch; no sync at all would be 5 s off.
    const WITHIN = 1000;
    assert.ok(Math.abs(offset - SKEW) < WITHIN, `offset ${offset}, expected about ${SKEW}`);
    const first = seen[0] as Record<string, number>;
    assert.equal(typeof first['tc'], 'number');
    assert.deepEqual([first['l'], first['o']], [0, 0]);
    // Later requests report the estimate back.
    const last = seen[seen.length - 1] as Record<string, number>;
    assert.ok(Math.abs((last['o'] ?? 0) - SKEW) < WITHIN, `reported offset ${last['o']}`);
    assert.ok((last['l'] ?? -1) >= 0 && (last['l'] ?? 1e9) < WITHIN, `reported lag ${last['l']}`);

    // The two clients share the server; the one without timesync tags its messages, which must carry no
    // ext.timesync (counting the server's timesync messages in a window failed when load stretched the window).
    const plain = client(url, { transports: ['long-polling'], extensions: [{ outgoing: (m) => ({ ...m, ext: { ...m.ext, who: 'plain' } }) }] });
    await plain.connect();
    await sleep(300);
    assert.ok(plainExts.length >= 2, `the plain client's handshake and connects reached the server (${plainExts.length})`);
    assert.deepEqual(plainExts.filter((ext) => 'timesync' in ext), [], 'the client without timesync sends no ext.timesync');
    assert.ok(Math.abs(plain.serverTime() - Date.now()) < 50);
  });

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`against express-bayeux over ${transport}: the same clock, offset near 0`, { timeout: 15_000 }, async () => {
      const s = await startServer({ timeout: 300 });
      cleanup(() => s.close());
      const exts: unknown[] = [];
      s.cometd.use((message, _ctx, next) => {
        if (message.channel === '/meta/connect' || message.channel === '/meta/handshake') exts.push(message.ext?.['timesync']);
        next();
      });
      const answers: unknown[] = [];
      const c = client(s.url, {
        transports: [transport],
        timesync: true,
        extensions: [{
          incoming(message) {
            if (message.channel === '/meta/connect') answers.push(message.ext?.['timesync']);
          },
        }],
      });
      await c.connect();
      await waitFor(() => exts.length >= 4 && answers.length >= 3, { timeout: 5000, what: 'a few connects' });
      for (const answer of answers) {
        const sync = answer as Record<string, unknown>;
        assert.ok(['tc', 'ts', 'p', 'a'].every((key) => typeof sync[key] === 'number'), `the server answers timesync: ${JSON.stringify(answer)}`);
      }
      const offset = c.serverTime() - Date.now();
      assert.ok(Math.abs(offset) < 100, `offset ${offset} against a server on the same clock`);
      assert.ok(exts.every((sync) => typeof sync === 'object' && sync !== null && typeof (sync as { tc?: unknown }).tc === 'number'));
    });
  }
});
