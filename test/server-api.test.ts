/**
 * The server-side API a ported PocketIO / POE / CometD application needs:
 * except-sender publishes with ext and id, broadcastToPublisher, rooms
 * (join, leave, subscribers), server-side disconnect, session data,
 * in-process subscribers that know the publisher, events, the subscription
 * cap, timesync and debug traces. Every case runs over long-polling and
 * WebSocket, through the wire.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { BayeuxError, type BayeuxOptions, type Context } from '../lib/index.js';
import { resolveOptions } from '../lib/options.js';
import { nextEvent, startServer, type TestServer } from './helpers/http-server.js';
import { openWire, wireSession, type Kind, type Msg, type Wire } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';

const KINDS: Kind[] = ['long-polling', 'websocket'];

/** Collects log lines by level, as any `{ error, warn, info, debug }` logger. */
class Lines {
  readonly lines: Array<[string, string]> = [];
  error = (m: string): void => void this.lines.push(['error', m]);
  warn = (m: string): void => void this.lines.push(['warn', m]);
  info = (m: string): void => void this.lines.push(['info', m]);
  debug = (m: string): void => void this.lines.push(['debug', m]);
  at(level: string): string[] {
    return this.lines.filter(([l]) => l === level).map(([, m]) => m);
  }
}

for (const kind of KINDS) {
  describe(`server API over ${kind}`, () => {
    const servers: TestServer[] = [];
    const wires: Wire[] = [];
    after(async () => {
      for (const w of wires) w.close();
      for (const s of servers) await s.close();
    });

    async function serve(options: BayeuxOptions = {}): Promise<TestServer> {
      const server = await startServer({ timeout: 2000, ...options });
      servers.push(server);
      return server;
    }

    async function session(server: TestServer, channels: string[] = []): Promise<{ wire: Wire; clientId: string }> {
      const wire = await openWire(kind, server.url);
      wires.push(wire);
      const clientId = await wireSession(wire);
      if (channels.length > 0) {
        const [reply] = await wire.send({ channel: '/meta/subscribe', clientId, subscription: channels });
        assert.equal(reply?.['successful'], true, JSON.stringify(reply));
      }
      return { wire, clientId };
    }

    /** Deliveries for a session: pushed on a socket, or answered to a connect. */
    async function received(wire: Wire, clientId: string, n: number): Promise<Msg[]> {
      if (kind === 'long-polling') {
        const end = Date.now() + 3000;
        while (wire.delivered.length < n && Date.now() < end) {
          await wire.send({ channel: '/meta/connect', clientId, connectionType: kind, advice: { timeout: 0 } });
          if (wire.delivered.length < n) await sleep(20);
        }
      }
      return wire.waitDelivered(n, 3000);
    }

    it('publish(channel, data, { except, ext, id }) skips the excepted and carries ext and id', async () => {
      const server = await serve();
      const a = await session(server, ['/room']);
      const b = await session(server, ['/room']);
      const c = await session(server, ['/room']);
      assert.equal(await server.cometd.publish('/room', { n: 1 }, { except: a.clientId, ext: { from: 'bot' }, id: 'm1' }), 2);
      assert.equal(await server.cometd.publish('/room', { n: 2 }, { except: [a.clientId, b.clientId] }), 1);
      const [first, second] = await received(c.wire, c.clientId, 2);
      assert.deepEqual(first, { channel: '/room', data: { n: 1 }, id: 'm1', ext: { from: 'bot' } });
      assert.deepEqual(second, { channel: '/room', data: { n: 2 } });
      const [onlyB] = await received(b.wire, b.clientId, 1);
      assert.equal(onlyB?.['data'].n, 1);
      await sleep(50);
      if (kind === 'long-polling') await a.wire.send({ channel: '/meta/connect', clientId: a.clientId, connectionType: kind, advice: { timeout: 0 } });
      assert.equal(a.wire.delivered.length, 0, 'the excepted session got nothing');
      await assert.rejects(server.cometd.publish('/room', 1, { except: 5 } as never), TypeError);
      await assert.rejects(server.cometd.publish('/room', 1, { exept: 'x' } as never), /exept/);
    });

    it('broadcastToPublisher: false keeps a session\'s own publishes from it', async () => {
      const server = await serve({ broadcastToPublisher: false });
      const a = await session(server, ['/chat']);
      const b = await session(server, ['/chat']);
      const [ok] = await a.wire.send({ channel: '/chat', clientId: a.clientId, data: 'hi' });
      assert.equal(ok?.['successful'], true);
      const [got] = await received(b.wire, b.clientId, 1);
      assert.equal(got?.['data'], 'hi');
      if (kind === 'long-polling') await a.wire.send({ channel: '/meta/connect', clientId: a.clientId, connectionType: kind, advice: { timeout: 0 } });
      await sleep(50);
      assert.equal(a.wire.delivered.length, 0);
    });

    it('join, subscribers and leave: rooms managed by the server, with events', async () => {
      const server = await serve();
      const a = await session(server);
      const joined = nextEvent<[string, string]>(server, 'subscribe', (id) => id === a.clientId);
      assert.equal(await server.cometd.join(a.clientId, '/rooms/1'), true);
      assert.deepEqual(await joined, [a.clientId, '/rooms/1']);
      assert.deepEqual(await server.cometd.subscribers('/rooms/1'), [a.clientId]);
      await server.cometd.publish('/rooms/1', 'welcome');
      const [msg] = await received(a.wire, a.clientId, 1);
      assert.equal(msg?.['data'], 'welcome');
      const left = nextEvent<[string, string]>(server, 'unsubscribe', (id) => id === a.clientId);
      assert.equal(await server.cometd.leave(a.clientId, '/rooms/1'), true);
      await left;
      assert.deepEqual(await server.cometd.subscribers('/rooms/1'), []);
      assert.equal(await server.cometd.publish('/rooms/1', 'gone'), 0);
      assert.equal(await server.cometd.join('no-such-session', '/rooms/1'), false);
      await assert.rejects(server.cometd.join(a.clientId, '/meta/connect'), /405/);
      // In-process subscribers are not members of a room.
      const local = server.cometd.subscribe('/rooms/1', () => undefined);
      await local.ready;
      assert.deepEqual(await server.cometd.subscribers('/rooms/1'), []);
      await local.unsubscribe();
    });

    it('disconnect(clientId) ends a session from the server and tells its client to handshake', async () => {
      const server = await serve();
      const a = await session(server);
      const ended = nextEvent<[string, string]>(server, 'disconnect', (id) => id === a.clientId);
      let answer: Msg | undefined;
      if (kind === 'long-polling') {
        const held = a.wire.send({ channel: '/meta/connect', clientId: a.clientId, connectionType: kind });
        await waitFor(async () => (await server.cometd.stats()).heldConnections === 1, { what: 'the connect to be held' });
        assert.equal(await server.cometd.disconnect(a.clientId), true);
        [answer] = await held;
        assert.equal(answer?.['successful'], false);
        assert.match(String(answer?.['error']), /^402:/);
      } else {
        // A raw socket: the /meta/disconnect arrives unasked, as a push.
        const ws = new WebSocket(server.url.replace(/^http/, 'ws'));
        const frames: Msg[] = [];
        ws.on('message', (data) => frames.push(...(JSON.parse(String(data)) as Msg[])));
        await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
        ws.send(JSON.stringify([{ channel: '/meta/connect', clientId: a.clientId, connectionType: 'websocket', advice: { timeout: 0 } }]));
        await waitFor(() => frames.length > 0, { timeout: 3000, what: 'connect reply' });
        assert.equal(await server.cometd.disconnect(a.clientId), true);
        await waitFor(() => frames.some((m) => m['channel'] === '/meta/disconnect'), { timeout: 3000, what: 'a /meta/disconnect push' });
        answer = frames.find((m) => m['channel'] === '/meta/disconnect');
        ws.close();
      }
      assert.equal(answer?.['advice']?.reconnect, 'handshake');
      assert.deepEqual(await ended, [a.clientId, 'server']);
      assert.equal(await server.cometd.disconnect(a.clientId), false);
      const [refused] = await a.wire.send({ channel: '/chat', clientId: a.clientId, data: 1 });
      assert.match(String(refused?.['error']), /^402:/);
    });

    it('session data: set in handshake middleware, read in a service and from the server, bounded, gone with the session', async () => {
      const server = await serve({ maxSessionDataBytes: 200 });
      server.cometd.use('/meta/handshake', async (message, ctx: Context) => {
        await ctx.session.set('user', (message.ext as { user?: string } | undefined)?.user ?? 'anonymous');
      });
      server.cometd.service('/service/whoami', async (_m, ctx) => ({ user: await ctx.session.get('user') }));
      server.cometd.service('/service/grow', async (_m, ctx) => {
        await ctx.session.set('big', 'x'.repeat(500));
      });
      const wire = await openWire(kind, server.url);
      wires.push(wire);
      const [hs] = await wire.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [kind], ext: { user: 'alice' } });
      const clientId = hs?.['clientId'] as string;
      const [who] = await wire.send({ channel: '/service/whoami', clientId, data: {} });
      assert.deepEqual(who?.['data'], { user: 'alice' });
      const data = server.cometd.session(clientId);
      await data.set('room', { id: 7 });
      assert.deepEqual(await data.all(), { user: 'alice', room: { id: 7 } });
      await data.delete('room');
      assert.equal(await data.get('room'), undefined);
      const [grown] = await wire.send({ channel: '/service/grow', clientId, data: {} });
      assert.equal(grown?.['error'], '413:200:session_data_too_large');
      await assert.rejects(data.set('f', () => 1), TypeError);
      await wire.send({ channel: '/meta/disconnect', clientId });
      await assert.rejects(data.get('user'), (err: unknown) => err instanceof BayeuxError && err.code === 402);
    });

    it('in-process subscribers learn the publisher (info.client), never sent on the wire', async () => {
      const server = await serve();
      const seen: Array<[unknown, string | undefined, unknown]> = [];
      const sub = server.cometd.subscribe('/news/*', (data, message, info) => void seen.push([data, info.client, message.clientId]));
      await sub.ready;
      const a = await session(server, ['/news/*']);
      await a.wire.send({ channel: '/news/a', clientId: a.clientId, data: 'from a' });
      await server.cometd.publish('/news/b', 'from server');
      await waitFor(() => seen.length === 2, { timeout: 3000, what: 'local deliveries' });
      assert.deepEqual(seen, [['from a', a.clientId, undefined], ['from server', undefined, undefined]]);
      const wireCopies = await received(a.wire, a.clientId, 2);
      assert.ok(wireCopies.every((m) => m['clientId'] === undefined));
      await sub.unsubscribe();
    });

    it("events: 'deliver', and 'publish' with the whole message", async () => {
      const server = await serve();
      const a = await session(server, ['/x']);
      const delivered = nextEvent<[string, string, unknown]>(server, 'deliver', () => true);
      assert.equal(await server.cometd.deliver(a.clientId, '/private', { secret: 1 }), true);
      assert.deepEqual(await delivered, [a.clientId, '/private', { secret: 1 }]);
      const published = nextEvent<[string, string, unknown, Msg]>(server, 'publish', (id) => id === a.clientId);
      await a.wire.send({ channel: '/x', clientId: a.clientId, data: 5, id: 'p1' });
      const [, channel, data, message] = await published;
      assert.equal(channel, '/x');
      assert.equal(data, 5);
      assert.equal(message['id'], 'p1');
    });

    it('maxSubscriptions caps subscriptions per session with an error naming the limit', async () => {
      const server = await serve({ maxSubscriptions: 3 });
      const a = await session(server, ['/a', '/b', '/c']);
      const [again] = await a.wire.send({ channel: '/meta/subscribe', clientId: a.clientId, subscription: '/a' });
      assert.equal(again?.['successful'], true, 're-subscribing is not counted');
      const [refused] = await a.wire.send({ channel: '/meta/subscribe', clientId: a.clientId, subscription: '/d' });
      assert.equal(refused?.['successful'], false);
      assert.equal(refused?.['error'], '403:3:subscription_limit');
      await assert.rejects(server.cometd.join(a.clientId, '/e'), /subscription_limit/);
      const [still] = await a.wire.send({ channel: '/a', clientId: a.clientId, data: 'ok' });
      assert.equal(still?.['successful'], true);
    });

    it('timesync: handshake and connect replies carry { tc, ts, p, a }', async () => {
      const server = await serve();
      const wire = await openWire(kind, server.url);
      wires.push(wire);
      const tc = Date.now() - 5000; // a client clock 5 s behind
      const [hs] = await wire.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [kind], ext: { timesync: { tc, l: 0, o: 0 } } });
      const sync = hs?.['ext']?.timesync as Record<string, number>;
      assert.equal(sync.tc, tc);
      assert.ok(Math.abs(sync.ts! - Date.now()) < 2000);
      assert.ok(sync.p! >= 0);
      assert.equal(sync.a, tc - sync.ts!);
      const [co] = await wire.send({ channel: '/meta/connect', clientId: hs?.['clientId'], connectionType: kind, advice: { timeout: 0 }, ext: { timesync: { tc: 1, l: 2, o: 3 } } });
      assert.equal(co?.['ext']?.timesync.tc, 1);
      const off = await serve({ timesync: false });
      const wire2 = await openWire(kind, off.url);
      wires.push(wire2);
      const [plain] = await wire2.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [kind], ext: { timesync: { tc } } });
      assert.equal(plain?.['ext'], undefined);
    });

    it('debug traces every message in and out, and sessions at info, through any logger', async () => {
      const lines = new Lines();
      const server = await serve({ logger: lines, debug: true });
      const a = await session(server, ['/trace']);
      await a.wire.send({ channel: '/trace', clientId: a.clientId, data: 'y'.repeat(1000) });
      const debug = lines.at('debug');
      assert.ok(debug.some((l) => l.startsWith('<- ' + kind) && l.includes('/meta/handshake')), debug.join('\n'));
      assert.ok(debug.some((l) => l.startsWith('-> ' + kind) && l.includes('/meta/subscribe')));
      assert.ok(debug.every((l) => !l.includes(a.clientId)), 'clientIds are shortened');
      assert.ok(debug.every((l) => l.length < 400), 'data is cut short');
      assert.ok(lines.at('info').some((l) => l.includes('started')));
      // console, pino and winston all have the four methods.
      assert.equal(resolveOptions({ logger: console }).logger, console);
      assert.throws(() => resolveOptions({ logger: { warn() {} } as never }), /logger/);
    });

    it('a batch of publishes keeps its order; only the refused one fails; a subscribe in the batch comes first', async () => {
      const server = await serve();
      server.cometd.use('/batch/**', async (message) => {
        await sleep((message.data as number) % 3); // uneven middleware delays
        if (message.data === 5) throw new BayeuxError(403, 'not five');
      });
      const a = await session(server);
      const batch: Msg[] = [{ channel: '/meta/subscribe', clientId: a.clientId, subscription: '/batch/x' }];
      for (let i = 0; i < 10; i++) batch.push({ channel: '/batch/x', clientId: a.clientId, data: i });
      const replies = await a.wire.send(batch);
      assert.equal(replies[0]?.['successful'], true);
      assert.deepEqual(replies.slice(1).map((r) => r['successful']), [true, true, true, true, true, false, true, true, true, true]);
      assert.equal(replies[6]?.['error'], '403::not five');
      const got = await received(a.wire, a.clientId, 9);
      assert.deepEqual(got.map((m) => m['data']), [0, 1, 2, 3, 4, 6, 7, 8, 9]);
    });

    it('a service that returns nothing is answered successful without data', async () => {
      const server = await serve();
      server.cometd.service('/service/noop', () => undefined);
      const a = await session(server);
      const [reply] = await a.wire.send({ channel: '/service/noop', clientId: a.clientId, data: {} });
      assert.equal(reply?.['successful'], true);
      assert.equal('data' in (reply ?? {}), false);
    });
  });
}
