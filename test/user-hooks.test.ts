/**
 * User code cannot take the server down or slip a message past it: every
 * hook (message middleware, outgoing hooks, services, event listeners,
 * in-process subscribers) is driven with a synchronous throw, a rejection
 * and a rejection with `undefined`, on both transports; each time the
 * message is refused or the failure logged, and the server keeps serving.
 * The test process itself fails on any unhandled rejection.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BayeuxMiddleware } from '../lib/index.js';
import { post, startServer, type TestServer } from './helpers/http-server.js';
import { openWire, wireSession, type Kind, type Msg, type Wire } from './helpers/wire.js';
import { sleep, waitFor } from './helpers/wait.js';

const KINDS: Kind[] = ['long-polling', 'websocket'];
const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling', 'websocket'] };

type Failure = 'throw' | 'reject' | 'reject-undefined';
const FAILURES: Failure[] = ['throw', 'reject', 'reject-undefined'];

/** A function that fails the given way. */
function failing(how: Failure): (...args: unknown[]) => unknown {
  switch (how) {
    case 'throw':
      return () => {
        throw new Error('boom');
      };
    case 'reject':
      return async () => {
        throw new Error('boom');
      };
    case 'reject-undefined':
      return () => Promise.reject(undefined);
  }
}

class Lines {
  readonly errors: string[] = [];
  error = (m: string): void => void this.errors.push(m);
  warn = (): void => undefined;
  info = (): void => undefined;
  debug = (): void => undefined;
}

let unhandled = 0;
process.on('unhandledRejection', () => void unhandled++);

for (const kind of KINDS) {
  describe(`user hooks over ${kind}`, () => {
    const servers: TestServer[] = [];
    const wires: Wire[] = [];
    after(async () => {
      for (const w of wires) w.close();
      for (const s of servers) await s.close();
      assert.equal(unhandled, 0, 'no unhandled rejection');
    });

    async function serve(setup: (cometd: BayeuxMiddleware) => void): Promise<{ server: TestServer; lines: Lines }> {
      const lines = new Lines();
      const server = await startServer({ logger: lines, timeout: 1000 });
      setup(server.cometd);
      servers.push(server);
      return { server, lines };
    }

    async function client(server: TestServer, channels: string[] = []): Promise<{ wire: Wire; clientId: string }> {
      const wire = await openWire(kind, server.url);
      wires.push(wire);
      const clientId = await wireSession(wire);
      if (channels.length) await wire.send({ channel: '/meta/subscribe', clientId, subscription: channels });
      return { wire, clientId };
    }

    /** The server still answers a fresh handshake and a publish. */
    async function stillServes(server: TestServer): Promise<void> {
      const { wire, clientId } = await client(server);
      const [reply] = await wire.send({ channel: '/still', clientId, data: 1 });
      assert.ok(reply && 'successful' in reply, JSON.stringify(reply));
    }

    for (const how of FAILURES) {
      it(`middleware that fails (${how}) refuses the message, with or without next`, async () => {
        const { server } = await serve((cometd) => {
          const fail = failing(how);
          cometd.use('/two/**', (m, ctx) => fail.call(null, m, ctx));
          cometd.use('/three/**', (m, _ctx, next) => {
            void next;
            return fail.call(null, m);
          });
        });
        const { wire, clientId } = await client(server);
        for (const channel of ['/two/a', '/three/a']) {
          const [reply] = await wire.send({ channel, clientId, data: 1 });
          assert.equal(reply?.['successful'], false, `${channel}: ${JSON.stringify(reply)}`);
        }
        await stillServes(server);
      });

      it(`an outgoing hook that fails (${how}) costs that reply, not the server`, async () => {
        let armed = false;
        const { server } = await serve((cometd) => {
          const fail = failing(how);
          cometd.outgoing((message) => (armed && message.channel === '/boom' ? fail() : undefined) as never);
        });
        const { wire, clientId } = await client(server);
        armed = true;
        const [reply] = await wire.send({ channel: '/boom', clientId, data: 1 });
        assert.equal(reply?.['successful'], false);
        assert.match(String(reply?.['error']), /^500:/);
        await stillServes(server);
      });

      it(`event listeners and in-process subscribers that fail (${how}) are logged`, async () => {
        const { server, lines } = await serve((cometd) => {
          cometd.on('publish', failing(how));
          cometd.on('handshake', failing(how));
        });
        const sub = server.cometd.subscribe('/watched', failing(how));
        await sub.ready;
        const { wire, clientId } = await client(server);
        await wire.send({ channel: '/watched', clientId, data: 1 });
        await server.cometd.publish('/watched', 2);
        await waitFor(() => lines.errors.length >= 3, { timeout: 3000, what: 'three logged failures' });
        await stillServes(server);
        await sub.unsubscribe();
      });
    }

    it('an async outgoing hook is awaited: its changes are sent, not [{}]', async () => {
      const { server } = await serve((cometd) => {
        cometd.outgoing(async (message) => {
          await sleep(1);
          if (message.channel === '/meta/handshake') message.ext = { ...message.ext, greeting: 'hi' };
          if (message.channel === '/news') return { ...message, data: { wrapped: message.data } };
          return undefined;
        });
      });
      const wire = await openWire(kind, server.url);
      wires.push(wire);
      const [hs] = await wire.send({ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: [kind] });
      assert.equal(hs?.['successful'], true);
      assert.equal(hs?.['ext']?.greeting, 'hi');
      const clientId = hs?.['clientId'] as string;
      await wire.send({ channel: '/meta/connect', clientId, connectionType: kind, advice: { timeout: 0 } });
      await wire.send({ channel: '/meta/subscribe', clientId, subscription: '/news' });
      await server.cometd.publish('/news', 5);
      if (kind === 'long-polling') {
        for (let i = 0; i < 50 && wire.delivered.length === 0; i++) {
          await wire.send({ channel: '/meta/connect', clientId, connectionType: kind, advice: { timeout: 0 } });
        }
      }
      const got: Msg[] = await wire.waitDelivered(1, 3000);
      assert.deepEqual(got[0]?.['data'], { wrapped: 5 });
    });

    it("a layer on '/meta/subscribe' guards subscriptions (the Perl MessageACL way)", async () => {
      const { server } = await serve((cometd) => {
        cometd.use('/meta/subscribe', (message, _ctx, next) => {
          const subs = ([] as unknown[]).concat(message.subscription);
          next(subs.some((s) => String(s).startsWith('/private')) ? new Error('no') : undefined);
        });
      });
      const { wire, clientId } = await client(server);
      const [denied] = await wire.send({ channel: '/meta/subscribe', clientId, subscription: '/private/x' });
      assert.equal(denied?.['successful'], false);
      const [allowed] = await wire.send({ channel: '/meta/subscribe', clientId, subscription: '/public/x' });
      assert.equal(allowed?.['successful'], true);
    });
  });
}

describe('replies a hook spoils, and what handshake middleware sees', () => {
  it('a service answer that cannot be serialized gets a 500 reply', async () => {
    const s = await startServer({});
    s.cometd.service('/service/bigint', () => ({ n: 10n }));
    try {
      const w = await openWire('websocket', s.url);
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/service/bigint', clientId: id, data: 1, id: 'big' });
      assert.deepEqual(r, { channel: '/service/bigint', successful: false, error: '500::server_error', id: 'big' });
      const [ok] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/fine' });
      assert.equal(ok?.['successful'], true);
      w.close();
    } finally {
      await s.close();
    }
  });

  it('a throwing outgoing hook gets a 500 reply, not a dead socket', async () => {
    const s = await startServer({});
    s.cometd.outgoing((m) => {
      if (m.channel === '/meta/subscribe') throw new Error('hook bug');
    });
    try {
      const w = await openWire('websocket', s.url);
      const id = await wireSession(w);
      const [r] = await w.send({ channel: '/meta/subscribe', clientId: id, subscription: '/x' });
      assert.equal(r?.['error'], '500::server_error');
      const [ok] = await w.send({ channel: '/meta/unsubscribe', clientId: id, subscription: '/x' });
      assert.equal(ok?.['successful'], true);
      w.close();
    } finally {
      await s.close();
    }
  });

  it('middleware on a handshake sees no client, whatever clientId the message claims', async () => {
    const s = await startServer({});
    const seen: unknown[] = [];
    s.cometd.use('/meta/handshake', (_m, ctx) => void seen.push(ctx.client));
    try {
      await post(s.url, [{ ...hs, clientId: 'someone-else' }]);
      assert.deepEqual(seen, [undefined]);
    } finally {
      await s.close();
    }
  });
});
