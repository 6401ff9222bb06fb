/**
 * Interop: the real CometD JavaScript client (`cometd` 8/9 with
 * `cometd-nodejs-client`'s adapter) against the server, over long-polling
 * (`unregisterTransport('websocket')`) and over WebSocket
 * (`unregisterTransport('long-polling')`); and a Faye client and a CometD
 * client talking to each other both ways.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import winston from 'winston';
import { adapt } from 'cometd-nodejs-client';
import type { CometD as CometDClient, Message as CometDMessage, SubscriptionHandle } from 'cometd';
import { BayeuxError, type TransportName } from '../../lib/index.js';
import { nextEvent, startServer, type TestServer } from '../helpers/http-server.js';
import { waitFor } from '../helpers/wait.js';
import { within } from '../helpers/within.js';

// The adapter must install window.WebSocket / XMLHttpRequest before a
// CometD object is built; load the client after it.
adapt();
const { CometD, AckExtension, TimeSyncExtension } = await import('cometd');

interface FayeClient {
  disable(feature: string): void;
  addExtension(ext: { incoming?(m: { channel: string; successful?: boolean; clientId?: string }, cb: (m: unknown) => void): void }): void;
  subscribe(channel: string, callback: (data: unknown) => void): PromiseLike<unknown>;
  publish(channel: string, data: unknown): PromiseLike<unknown>;
  disconnect(): PromiseLike<unknown> | undefined;
}
const require = createRequire(import.meta.url);
const faye = require('faye') as { Client: new (url: string, options?: Record<string, unknown>) => FayeClient };

type Mode = 'long-polling' | 'websocket';
const OTHER: Record<Mode, string> = { 'long-polling': 'websocket', websocket: 'long-polling' };

/** Promise wrappers around the callback API. */
const cometdApi = {
  handshake: (cd: CometDClient) => within(new Promise<CometDMessage>((resolve) => cd.handshake(resolve)), 5000, 'handshake'),
  subscribe: async (cd: CometDClient, channel: string, got: CometDMessage[]): Promise<SubscriptionHandle> => {
    let handle!: SubscriptionHandle;
    const reply = await within(
      new Promise<CometDMessage>((resolve) => {
        handle = cd.subscribe(channel, (m) => got.push(m), resolve);
      }),
      5000,
      `subscribe ${channel}`,
    );
    assert.equal(reply.successful, true, `subscribe ${channel}: ${JSON.stringify(reply)}`);
    return handle;
  },
  unsubscribe: (cd: CometDClient, handle: SubscriptionHandle) =>
    within(new Promise<CometDMessage>((resolve) => cd.unsubscribe(handle, resolve)), 5000, 'unsubscribe'),
  publish: (cd: CometDClient, channel: string, data: unknown) =>
    within(new Promise<CometDMessage>((resolve) => cd.publish(channel, data, resolve)), 5000, `publish ${channel}`),
  remoteCall: (cd: CometDClient, target: string, data: unknown) =>
    within(new Promise<CometDMessage>((resolve) => cd.remoteCall(target, data, 4000, resolve)), 5000, `remoteCall ${target}`),
  disconnect: (cd: CometDClient) => within(new Promise<CometDMessage>((resolve) => cd.disconnect(resolve)), 5000, 'disconnect'),
};

for (const mode of ['long-polling', 'websocket'] as const satisfies readonly Mode[]) {
  describe(`cometd client over ${mode}`, () => {
    let server: TestServer;
    let arrivals: Array<{ channel: string; transport: TransportName; clientId: string | undefined; ext: unknown }>;
    let logged: string[];
    let clients: CometDClient[] = [];
    let fayes: FayeClient[] = [];

    before(async () => {
      logged = [];
      const logger = winston.createLogger({
        level: 'warn',
        format: winston.format.printf((info) => `${info.level}: ${String(info.message)}`),
        transports: [
          new winston.transports.Stream({
            stream: new Writable({
              write(chunk: Buffer, _enc, done) {
                logged.push(chunk.toString());
                done();
              },
            }),
          }),
        ],
      });
      server = await startServer({ timeout: 2000, maxInterval: 3000, logger, presence: ['/presence/**'] });
      arrivals = [];
      server.cometd.use((message, ctx, next) => {
        arrivals.push({ channel: message.channel, transport: ctx.transport, clientId: ctx.client, ext: message.ext });
        next();
      });
      server.cometd.use('/locked/**', (message, _ctx, next) => {
        if (message.channel.startsWith('/meta/')) next();
        else next(new BayeuxError(403, 'Forbidden', ['locked']));
      });
      server.cometd.service('/service/echo', async (message, ctx) => ({ echo: message.data, transport: ctx.transport }));
      server.cometd.service('/service/boom', () => {
        throw new Error('boom in a service');
      });
    });

    after(async () => {
      await server.close();
    });

    afterEach(async () => {
      const open = clients;
      const openFayes = fayes;
      clients = [];
      fayes = [];
      await Promise.all([
        ...open.map((cd) => (cd.isDisconnected() ? undefined : cometdApi.disconnect(cd).catch(() => undefined))),
        ...openFayes.map((f) => within(Promise.resolve(f.disconnect()), 3000, 'faye disconnect').catch(() => undefined)),
      ]);
    });

    function client(): CometDClient {
      const cd = new CometD();
      cd.configure({ url: server.url, logLevel: 'warn' });
      assert.ok(cd.unregisterTransport(OTHER[mode]), `the ${OTHER[mode]} transport was registered`);
      clients.push(cd);
      return cd;
    }

    async function connected(): Promise<CometDClient> {
      const cd = client();
      const reply = await cometdApi.handshake(cd);
      assert.equal(reply.successful, true, JSON.stringify(reply));
      return cd;
    }

    function fayeClient(): FayeClient {
      const f = new faye.Client(server.url, { retry: 0.2 });
      if (mode === 'long-polling') f.disable('websocket');
      fayes.push(f);
      return f;
    }

    it('handshakes on the transport asked for', async () => {
      const cd = client();
      const handshake = nextEvent<[string, { transport: TransportName }]>(server, 'handshake', () => true);
      const reply = await cometdApi.handshake(cd);
      assert.equal(reply.successful, true);
      assert.equal(typeof reply.clientId, 'string');
      assert.ok(reply.supportedConnectionTypes?.includes('websocket'));
      assert.ok(reply.supportedConnectionTypes?.includes('long-polling'));
      const [clientId, ctx] = await handshake;
      assert.equal(clientId, reply.clientId);
      assert.equal(cd.getTransport()?.type, mode);
      assert.equal(ctx.transport, mode);
      const connect = await waitConnected(cd);
      assert.equal(connect, mode);
      const stats = await server.cometd.stats();
      if (mode === 'websocket') assert.ok(stats.sockets >= 1, JSON.stringify(stats));
      else assert.equal(stats.sockets, 0);
    });

    /** Wait for the client's first /meta/connect to be answered; return the transport it reached the server on. */
    async function waitConnected(cd: CometDClient): Promise<TransportName | undefined> {
      const clientId = cd.getClientId();
      await waitFor(() => arrivals.some((a) => a.clientId === clientId && a.channel === '/meta/connect'), { timeout: 5000, what: 'a /meta/connect' });
      await waitFor(() => cd.getStatus() === 'connected', { timeout: 5000, what: 'status connected' });
      return arrivals.find((a) => a.clientId === clientId && a.channel === '/meta/connect')?.transport;
    }

    it("CometD's TimeSyncExtension gets its answers: lag and offset are measured", async () => {
      const cd = client();
      const extension = new TimeSyncExtension();
      cd.registerExtension('timesync', extension);
      // cometd.d.ts declares the class with no members; these are in its JavaScript.
      const sync = extension as unknown as { getTimeOffset(): number; getServerTime(): number };
      const timesyncs: unknown[] = [];
      cd.addListener('/meta/connect', (m: CometDMessage) => {
        const ext = m.ext as Record<string, unknown> | undefined;
        if (ext?.['timesync']) timesyncs.push(ext['timesync']);
      });
      const reply = await cometdApi.handshake(cd);
      assert.equal(reply.successful, true);
      await waitConnected(cd);
      await waitFor(() => timesyncs.length > 0, { timeout: 5000, what: 'a connect reply with ext.timesync' });
      const answer = timesyncs[0] as Record<string, number>;
      for (const field of ['tc', 'ts', 'p', 'a']) assert.equal(typeof answer[field], 'number', field);
      // Same machine, same clock: the estimate is within a generous bound of the truth.
      assert.ok(Math.abs(sync.getTimeOffset()) < 1000, `offset ${sync.getTimeOffset()}`);
      assert.ok(Math.abs(sync.getServerTime() - Date.now()) < 1000);
    });

    it('presence: a CometD client that did not ask sees only the channel\'s messages; one that asks through subscribeProps gets the snapshot and notices', async () => {
      const spy = (cd: CometDClient, seen: CometDMessage[]) => cd.registerExtension('spy', { incoming: (m: CometDMessage) => (seen.push(m), m) });
      const plain = await connected();
      const plainSeen: CometDMessage[] = [];
      spy(plain, plainSeen);
      const got: CometDMessage[] = [];
      await cometdApi.subscribe(plain, '/presence/room', got);
      const asking = await connected();
      const askingSeen: CometDMessage[] = [];
      spy(asking, askingSeen);
      const reply = await within(new Promise<CometDMessage>((resolve) => {
        asking.subscribe('/presence/room', () => undefined, { ext: { presence: true } }, resolve);
      }), 5000, 'subscribe with ext.presence');
      assert.equal(reply.successful, true, JSON.stringify(reply));
      assert.deepEqual((reply.ext as { presence: { count: unknown } }).presence.count, { users: 2, clients: 2 });
      const joiner = await connected();
      await cometdApi.subscribe(joiner, '/presence/room', []);
      await waitFor(() => askingSeen.some((m) => (m.ext as { presence?: unknown } | undefined)?.presence !== undefined && m.channel === '/presence/room'), { timeout: 5000, what: 'a notice to the client that asked' });
      await cometdApi.publish(joiner, '/presence/room', 'hello');
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'the message' });
      assert.deepEqual(got.map((m) => m.data), ['hello']);
      const subscribeReply = plainSeen.find((m) => m.channel === '/meta/subscribe');
      assert.equal(subscribeReply?.ext, undefined, 'no snapshot for a client that did not ask');
      assert.deepEqual(plainSeen.filter((m) => (m.ext as { presence?: unknown } | undefined)?.presence !== undefined), [], 'no notice ever reaches it');
    });

    it('delivers a publish from one client to another', async () => {
      const a = await connected();
      const b = await connected();
      const got: CometDMessage[] = [];
      await cometdApi.subscribe(a, '/chat/room', got);
      const reply = await cometdApi.publish(b, '/chat/room', { text: 'hello' });
      assert.equal(reply.successful, true, JSON.stringify(reply));
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'delivery' });
      assert.deepEqual(got[0]?.data, { text: 'hello' });
      assert.equal(got[0]?.channel, '/chat/room');
      assert.equal(got[0]?.clientId, undefined, 'broadcast copies carry no clientId');
      const publishes = arrivals.filter((x) => x.channel === '/chat/room' && x.clientId === b.getClientId());
      assert.deepEqual(publishes.map((x) => x.transport), [mode]);
    });

    it('/* and /** wildcards', async () => {
      const sub = await connected();
      const pub = await connected();
      const one: CometDMessage[] = [];
      const deep: CometDMessage[] = [];
      await cometdApi.subscribe(sub, '/w/*', one);
      await cometdApi.subscribe(sub, '/d/**', deep);
      for (const channel of ['/w/a', '/w/a/b', '/d', '/d/a', '/d/a/b/c', '/dd/a', '/w/z', '/d/z']) {
        await cometdApi.publish(pub, channel, channel);
      }
      await waitFor(() => one.length === 2 && deep.length === 3, { timeout: 5000, what: 'wildcard deliveries' });
      assert.deepEqual(one.map((m) => m.data), ['/w/a', '/w/z']);
      assert.deepEqual(deep.map((m) => m.data), ['/d/a', '/d/a/b/c', '/d/z']);
      assert.deepEqual(one.map((m) => m.channel), ['/w/a', '/w/z']);
    });

    it('unsubscribe stops deliveries', async () => {
      const cd = await connected();
      const got: CometDMessage[] = [];
      const marker: CometDMessage[] = [];
      const handle = await cometdApi.subscribe(cd, '/unsub/a', got);
      await cometdApi.subscribe(cd, '/unsub/marker', marker);
      await server.cometd.publish('/unsub/a', 1);
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'first delivery' });
      const unsubscribed = nextEvent<[string, string]>(server, 'unsubscribe', (id, ch) => id === cd.getClientId() && ch === '/unsub/a');
      const reply = await cometdApi.unsubscribe(cd, handle);
      assert.equal(reply.successful, true, JSON.stringify(reply));
      await unsubscribed;
      await server.cometd.publish('/unsub/a', 2);
      await server.cometd.publish('/unsub/marker', 'm');
      await waitFor(() => marker.length === 1, { timeout: 5000, what: 'marker' });
      assert.deepEqual(got.map((m) => m.data), [1]);
    });

    it('disconnect ends the session with reason client', async () => {
      const cd = await connected();
      await waitConnected(cd);
      const clientId = cd.getClientId();
      const sessions = (await server.cometd.stats()).sessions;
      const disconnected = nextEvent<[string, string]>(server, 'disconnect', (id) => id === clientId);
      const reply = await cometdApi.disconnect(cd);
      assert.equal(reply.successful, true, JSON.stringify(reply));
      const [, reason] = await disconnected;
      assert.equal(reason, 'client');
      assert.equal((await server.cometd.stats()).sessions, sessions - 1);
      assert.deepEqual(
        arrivals.filter((a) => a.clientId === clientId && a.channel === '/meta/disconnect').map((a) => a.transport),
        [mode],
      );
    });

    it('a publish refused by middleware fails in the client', async () => {
      const cd = await connected();
      const got: CometDMessage[] = [];
      const marker: CometDMessage[] = [];
      await cometdApi.subscribe(cd, '/locked/room', got);
      await cometdApi.subscribe(cd, '/open/room', marker);
      const reply = await cometdApi.publish(cd, '/locked/room', 'secret');
      assert.equal(reply.successful, false);
      assert.equal(reply.error, '403:locked:Forbidden');
      assert.equal((await cometdApi.publish(cd, '/open/room', 'ok')).successful, true);
      await waitFor(() => marker.length === 1, { timeout: 5000, what: 'marker' });
      assert.deepEqual(got, []);
    });

    it('remoteCall reaches a service and only the caller gets the answer', async () => {
      const cd = await connected();
      const spy = await connected();
      const everything: CometDMessage[] = [];
      await cometdApi.subscribe(spy, '/**', everything);
      const reply = await cometdApi.remoteCall(cd, '/echo', { a: 1 });
      assert.equal(reply.successful, true, JSON.stringify(reply));
      assert.deepEqual(reply.data, { echo: { a: 1 }, transport: mode });
      // Without the leading slash CometD adds /service/ too.
      const again = await cometdApi.remoteCall(cd, 'echo', [2]);
      assert.deepEqual(again.data, { echo: [2], transport: mode });
      await server.cometd.publish('/marker', 'm');
      // (The CometD client also hands its own /meta/* replies to a /**
      // subscriber; only what came from the server as a broadcast counts.)
      const broadcasts = (): string[] => everything.map((m) => m.channel).filter((c) => !c.startsWith('/meta/'));
      await waitFor(() => broadcasts().length >= 1, { timeout: 5000, what: 'marker' });
      assert.deepEqual(broadcasts(), ['/marker'], '/service/* is never broadcast');
    });

    it('a throwing service gives an error reply, is logged, and the server keeps serving', async () => {
      const cd = await connected();
      const reply = await cometdApi.remoteCall(cd, '/boom', { a: 1 });
      assert.equal(reply.successful, false, JSON.stringify(reply));
      assert.match(String(reply.error), /^500:/);
      assert.ok(logged.some((line) => line.includes('boom in a service')), `logged: ${logged.join('')}`);
      const ok = await cometdApi.remoteCall(cd, '/echo', 'still here');
      assert.equal(ok.successful, true);
      assert.deepEqual(ok.data, { echo: 'still here', transport: mode });
      // And the session still receives.
      const got: CometDMessage[] = [];
      await cometdApi.subscribe(cd, '/after/boom', got);
      await server.cometd.publish('/after/boom', 1);
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'delivery after the failure' });
    });

    it('with the ack extension, deliveries arrive in order and are acknowledged', async () => {
      const cd = client();
      cd.registerExtension('ack', new AckExtension());
      const hs = await cometdApi.handshake(cd);
      assert.equal(hs.successful, true);
      assert.deepEqual(hs.ext, { ack: true });
      const got: CometDMessage[] = [];
      await cometdApi.subscribe(cd, '/acked/x', got);
      await waitConnected(cd);
      for (const n of [1, 2, 3]) await server.cometd.publish('/acked/x', n);
      await waitFor(() => got.length === 3, { timeout: 5000, what: 'acked deliveries' });
      assert.deepEqual(got.map((m) => m.data), [1, 2, 3]);
      // The client acknowledges batches on its next connects.
      await waitFor(
        () =>
          arrivals.some(
            (a) => a.clientId === cd.getClientId() && a.channel === '/meta/connect' && Number((a.ext as { ack?: unknown } | undefined)?.ack) > 0,
          ),
        { timeout: 5000, what: 'a connect acknowledging a batch' },
      );
      assert.ok(arrivals.filter((a) => a.clientId === cd.getClientId()).every((a) => a.transport === mode));
    });

    it('a Faye client and a CometD client talk to each other both ways', async () => {
      const cd = await connected();
      const f = fayeClient();
      const fromFaye: CometDMessage[] = [];
      const fromCometD: unknown[] = [];
      await cometdApi.subscribe(cd, '/bridge/to-cometd', fromFaye);
      await within(f.subscribe('/bridge/to-faye', (data) => fromCometD.push(data)), 5000, 'faye subscribe');

      const sent = await cometdApi.publish(cd, '/bridge/to-faye', { from: 'cometd', n: 1 });
      assert.equal(sent.successful, true);
      await waitFor(() => fromCometD.length === 1, { timeout: 5000, what: 'faye receives' });
      assert.deepEqual(fromCometD, [{ from: 'cometd', n: 1 }]);

      await within(f.publish('/bridge/to-cometd', { from: 'faye', n: 2 }), 5000, 'faye publish');
      await waitFor(() => fromFaye.length === 1, { timeout: 5000, what: 'cometd receives' });
      assert.deepEqual(fromFaye[0]?.data, { from: 'faye', n: 2 });
      assert.equal(fromFaye[0]?.channel, '/bridge/to-cometd');

      // Both really used the transport under test for their publishes.
      const bridged = arrivals.filter((a) => a.channel.startsWith('/bridge/to-')).map((a) => a.transport);
      assert.deepEqual(bridged, [mode, mode]);
    });
  });
}
