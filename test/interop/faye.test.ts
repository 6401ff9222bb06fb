/**
 * Interop: the real `faye` Node client (1.4) against the server, over
 * long-polling (`client.disable('websocket')`) and over WebSocket (Faye's
 * default), with the same cases on both.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { BayeuxError, type TransportName } from '../../lib/index.js';
import { nextEvent, startServer, type TestServer } from '../helpers/http-server.js';
import { waitFor } from '../helpers/wait.js';
import { within } from '../helpers/within.js';

/** The parts of Faye's (untyped, CommonJS) client API these tests use. */
interface FayeMessage {
  channel: string;
  clientId?: string;
  successful?: boolean;
  [key: string]: unknown;
}
interface FayeThenable extends PromiseLike<unknown> {
  cancel?(): void;
}
interface FayeClient {
  disable(feature: string): void;
  addExtension(ext: { incoming?(m: FayeMessage, cb: (m: FayeMessage) => void): void; outgoing?(m: FayeMessage, cb: (m: FayeMessage) => void): void }): void;
  connect(callback?: () => void): void;
  subscribe(channel: string, callback: (data: unknown) => void): FayeThenable;
  unsubscribe(channel: string): void;
  publish(channel: string, data: unknown): PromiseLike<unknown>;
  disconnect(): PromiseLike<unknown> | undefined;
}
interface FayeModule {
  Client: new (url: string, options?: Record<string, unknown>) => FayeClient;
}

const require = createRequire(import.meta.url);
const faye = require('faye') as FayeModule;

type Mode = 'long-polling' | 'websocket';

for (const mode of ['long-polling', 'websocket'] as const satisfies readonly Mode[]) {
  describe(`faye client over ${mode}`, () => {
    let server: TestServer;
    /** Which transport each message reached the server on, by channel. */
    let arrivals: Array<{ channel: string; transport: TransportName; clientId: string | undefined }>;
    let clients: FayeClient[] = [];

    before(async () => {
      server = await startServer({ timeout: 2000, maxInterval: 3000 });
      arrivals = [];
      server.cometd.use((message, ctx, next) => {
        arrivals.push({ channel: message.channel, transport: ctx.transport, clientId: ctx.client });
        next();
      });
      // Scoped middleware also sees (un)subscribes about matching channels:
      // /locked/** refuses publishes only, /private/** everything.
      server.cometd.use('/locked/**', (message, _ctx, next) => {
        if (message.channel.startsWith('/meta/')) next();
        else next(new BayeuxError(403, 'Forbidden', ['locked']));
      });
      server.cometd.use('/private/**', (_message, _ctx, next) => next(new BayeuxError(403, 'denied', ['private'])));
    });

    after(async () => {
      await server.close();
    });

    afterEach(async () => {
      const open = clients;
      clients = [];
      await Promise.all(open.map((c) => within(Promise.resolve(c.disconnect()), 3000, 'faye disconnect').catch(() => undefined)));
    });

    /** A Faye client for this mode, and a promise of its clientId once handshaken. */
    function client(): { c: FayeClient; id: Promise<string> } {
      // `retry` (s): Faye retries a message whose socket closed under it
      // (its held /meta/connect, once it disconnected) after this long; the
      // default 5 s timer would keep the process alive after the tests.
      const c = new faye.Client(server.url, { retry: 0.2 });
      if (mode === 'long-polling') c.disable('websocket');
      let resolveId!: (id: string) => void;
      const id = new Promise<string>((resolve) => (resolveId = resolve));
      c.addExtension({
        incoming(message, cb) {
          if (message.channel === '/meta/handshake' && message.successful && typeof message.clientId === 'string') {
            resolveId(message.clientId);
          }
          cb(message);
        },
      });
      clients.push(c);
      return { c, id };
    }

    /** Subscribe and wait until the server acknowledged it; collect what arrives. */
    async function subscribed(c: FayeClient, channel: string): Promise<{ got: unknown[]; sub: FayeThenable }> {
      const got: unknown[] = [];
      const sub = c.subscribe(channel, (data) => got.push(data));
      await within(sub, 5000, `subscribe ${channel}`);
      return { got, sub };
    }

    function transportsOf(clientId: string, channel: string): TransportName[] {
      return arrivals.filter((a) => a.clientId === clientId && a.channel === channel).map((a) => a.transport);
    }

    it('handshakes and connects, on the transport asked for', async () => {
      const { c, id } = client();
      const handshake = nextEvent<[string, { transport: TransportName }]>(server, 'handshake', () => true);
      const connected = new Promise<void>((resolve) => c.connect(resolve));
      await within(connected, 5000, 'faye connect');
      const clientId = await id;
      const [hsId] = await handshake;
      assert.equal(hsId, clientId);
      assert.match(clientId, /^[A-Za-z0-9_-]{16,}$/);
      // A subscribe makes Faye pick its transport for good and use it.
      await subscribed(c, '/hello/world');
      const used = transportsOf(clientId, '/meta/subscribe');
      assert.deepEqual(used, [mode]);
      const stats = await server.cometd.stats();
      if (mode === 'websocket') assert.ok(stats.sockets >= 1, `a socket is open (stats ${JSON.stringify(stats)})`);
      else assert.equal(stats.sockets, 0, 'long-polling opens no socket');
    });

    it('delivers a publish from one client to another, without the sender clientId on the wire', async () => {
      const a = client();
      const b = client();
      const seen: FayeMessage[] = [];
      a.c.addExtension({
        incoming(message, cb) {
          if (message.channel === '/chat/room') seen.push(message);
          cb(message);
        },
      });
      const { got } = await subscribed(a.c, '/chat/room');
      const publishEvent = nextEvent<[string | undefined, string, unknown]>(server, 'publish', (_id, channel) => channel === '/chat/room');
      await within(b.c.publish('/chat/room', { text: 'hi', n: 1 }), 5000, 'publish');
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'delivery to a' });
      assert.deepEqual(got, [{ text: 'hi', n: 1 }]);
      const [publisher, , data] = await publishEvent;
      assert.equal(publisher, await b.id);
      assert.deepEqual(data, { text: 'hi', n: 1 });
      assert.equal(seen.length, 1);
      assert.equal(seen[0]?.clientId, undefined, 'broadcast copies carry no clientId');
      assert.deepEqual(transportsOf(await b.id, '/chat/room'), [mode]);
    });

    it('a publisher subscribed to its own channel gets its message back', async () => {
      const { c } = client();
      const { got } = await subscribed(c, '/echo/self');
      await within(c.publish('/echo/self', 'me'), 5000, 'publish');
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'own message' });
      assert.deepEqual(got, ['me']);
    });

    it('/* matches one segment only', async () => {
      const sub = client();
      const pub = client();
      const { got } = await subscribed(sub.c, '/wild/*');
      for (const channel of ['/wild/a', '/wild/a/b', '/wildx/a', '/wild/z']) {
        await within(pub.c.publish(channel, channel), 5000, `publish ${channel}`);
      }
      await waitFor(() => got.includes('/wild/z'), { timeout: 5000, what: 'the last one' });
      assert.deepEqual(got, ['/wild/a', '/wild/z']);
    });

    it('/** matches any depth below, not the parent or a sibling', async () => {
      const sub = client();
      const pub = client();
      const { got } = await subscribed(sub.c, '/deep/**');
      for (const channel of ['/deep/a', '/deep/a/b/c', '/deep', '/deeper/a', '/other/x', '/deep/z']) {
        await within(pub.c.publish(channel, channel), 5000, `publish ${channel}`);
      }
      await waitFor(() => got.includes('/deep/z'), { timeout: 5000, what: 'the last one' });
      assert.deepEqual(got, ['/deep/a', '/deep/a/b/c', '/deep/z']);
    });

    it('one copy on the wire when several subscriptions of a client match', async () => {
      const sub = client();
      const wire: unknown[] = [];
      sub.c.addExtension({
        incoming(message, cb) {
          if (!message.channel.startsWith('/meta/')) wire.push(message['data']);
          cb(message);
        },
      });
      for (const pattern of ['/multi/a', '/multi/*', '/multi/**']) {
        await within(sub.c.subscribe(pattern, () => undefined), 5000, `subscribe ${pattern}`);
      }
      await server.cometd.publish('/multi/a', 'once');
      await server.cometd.publish('/multi/zz', 'marker');
      await waitFor(() => wire.includes('marker'), { timeout: 5000, what: 'marker' });
      assert.deepEqual(wire, ['once', 'marker']);
    });

    it('unsubscribe stops deliveries', async () => {
      const { c, id } = client();
      const { got, sub } = await subscribed(c, '/unsub/a');
      const marker = await subscribed(c, '/unsub/marker');
      await server.cometd.publish('/unsub/a', 1);
      await waitFor(() => got.length === 1, { timeout: 5000, what: 'first delivery' });
      const unsubscribed = nextEvent<[string, string]>(server, 'unsubscribe', (_id, channel) => channel === '/unsub/a');
      sub.cancel?.();
      const [unsubId] = await unsubscribed;
      assert.equal(unsubId, await id);
      await server.cometd.publish('/unsub/a', 2);
      await server.cometd.publish('/unsub/marker', 'm');
      await waitFor(() => marker.got.length === 1, { timeout: 5000, what: 'marker' });
      assert.deepEqual(got, [1]);
    });

    it('disconnect ends the session on the server with reason client', async () => {
      const { c, id } = client();
      await subscribed(c, '/bye/now');
      const clientId = await id;
      const before = await server.cometd.stats();
      const disconnected = nextEvent<[string, string]>(server, 'disconnect', (cid) => cid === clientId);
      await within(Promise.resolve(c.disconnect()), 5000, 'disconnect');
      const [, reason] = await disconnected;
      assert.equal(reason, 'client');
      const afterStats = await server.cometd.stats();
      assert.equal(afterStats.sessions, before.sessions - 1);
      assert.deepEqual(transportsOf(clientId, '/meta/disconnect'), [mode]);
      if (mode === 'websocket') {
        // Faye closes its socket once the disconnect is answered.
        await waitFor(async () => (await server.cometd.stats()).sockets < before.sockets, { timeout: 3000, what: 'the socket to close', every: 20 });
      }
      // The session is gone: a server publish to its channel reaches no one.
      assert.equal(await server.cometd.publish('/bye/now', 'x'), 0);
    });

    it('a publish refused by middleware reaches the client as an error and is not delivered', async () => {
      const sub = client();
      const pub = client();
      const locked = await subscribed(sub.c, '/locked/room');
      const marker = await subscribed(sub.c, '/open/room');
      const error = await within(
        Promise.resolve(pub.c.publish('/locked/room', 'secret')).then(
          () => undefined,
          (err: unknown) => err,
        ),
        5000,
        'refused publish',
      );
      assert.ok(error, 'the publish was refused');
      const e = error as { code?: unknown; params?: unknown; message?: unknown };
      assert.equal(e.code, 403);
      assert.deepEqual(e.params, ['locked']);
      assert.equal(e.message, 'Forbidden');
      await within(pub.c.publish('/open/room', 'ok'), 5000, 'allowed publish');
      await waitFor(() => marker.got.length === 1, { timeout: 5000, what: 'allowed delivery' });
      assert.deepEqual(locked.got, []);
    });

    it('a subscribe refused by middleware fails in the client and delivers nothing', async () => {
      const { c } = client();
      const got: unknown[] = [];
      const error = await within(
        Promise.resolve(c.subscribe('/private/room', (data) => got.push(data))).then(
          () => undefined,
          (err: unknown) => err,
        ),
        5000,
        'refused subscribe',
      );
      const e = error as { code?: unknown; params?: unknown; message?: unknown } | undefined;
      assert.equal(e?.code, 403);
      assert.deepEqual(e?.params, ['private']);
      assert.equal(e?.message, 'denied');
      const marker = await subscribed(c, '/public/room');
      await server.cometd.publish('/private/room', 'no');
      await server.cometd.publish('/public/room', 'yes');
      await waitFor(() => marker.got.length === 1, { timeout: 5000, what: 'marker' });
      assert.deepEqual(got, []);
    });

    it('a server-side publish and an in-process subscriber meet the client', async () => {
      const { c } = client();
      const { got } = await subscribed(c, '/mixed/a');
      const local: unknown[] = [];
      const unsubscribe = server.cometd.subscribe('/mixed/b', (data) => local.push(data));
      await unsubscribe.ready;
      try {
        assert.equal(await server.cometd.publish('/mixed/a', { from: 'server' }), 1);
        await waitFor(() => got.length === 1, { timeout: 5000, what: 'server publish' });
        assert.deepEqual(got, [{ from: 'server' }]);
        await within(c.publish('/mixed/b', { from: 'faye' }), 5000, 'publish');
        await waitFor(() => local.length === 1, { timeout: 5000, what: 'local subscriber' });
        assert.deepEqual(local, [{ from: 'faye' }]);
      } finally {
        await unsubscribe();
      }
    });
  });
}
