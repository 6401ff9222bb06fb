/**
 * One suite for every host the middleware runs on (Express 5, Express 4,
 * connect, a bare `http` handler): good and bad requests over long-polling
 * and JSONP, WebSocket upgrades on the mount path, on other paths and on the
 * app's own endpoint beside Bayeux, the browser client at `<mount>/client.js`,
 * and the body-read timeout. Any uncaught exception or unhandled rejection
 * in the server ends this file's process, and so fails it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import session from 'express-session';
import WebSocket from 'ws';
import type { Logger } from '../lib/options.js';
import { get, post, read } from './helpers/http-server.js';
import { HOSTS, startHost, type HostServer } from './helpers/hosts.js';
import { openWire, wireHandshake, type Msg } from './helpers/wire.js';
import { waitFor } from './helpers/wait.js';

const hs = { channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'], id: 'h' };

/** Open a WebSocket; resolve with 'open' or the HTTP status it was refused with. */
function upgrade(url: string, headers: Record<string, string> = {}, ms = 8000): Promise<{ ws?: WebSocket; status?: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the upgrade of ${url} within ${ms} ms`));
    }, ms);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Write raw bytes to the server; resolve with all it answered once it closes the connection. */
function raw(port: number, chunks: string[], ms = 8000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${ms} ms; got ${JSON.stringify(text.slice(0, 200))}`));
    }, ms);
    socket.on('data', (d) => (text += d.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    for (const chunk of chunks) socket.write(chunk);
  });
}

for (const host of HOSTS) {
  describe(`on ${host}`, () => {
    let s: HostServer;
    before(async () => {
      s = await startHost(host, { bodyTimeout: 1000 });
    });
    after(() => s.close());

    test('long-polling: JSON, form, GET message=, sub-paths, and JSONP', async () => {
      const json = await post(s.url, [hs]);
      assert.equal(json.status, 200);
      assert.equal(json.json[0].successful, true);
      const form = await post(s.url + '/handshake', 'message=' + encodeURIComponent(JSON.stringify(hs)), 'application/x-www-form-urlencoded');
      assert.equal(form.json[0].successful, true);
      const viaGet = await get(`${s.url}?message=${encodeURIComponent(JSON.stringify([hs]))}`);
      assert.equal(viaGet.json[0].successful, true);
      const jsonp = await get(`${s.url}?jsonp=cb&message=${encodeURIComponent(JSON.stringify([hs]))}`);
      assert.match(jsonp.text, /^\/\*\*\/cb\(\[\{.*"successful":true/);
    });

    test('bad requests get stable error types; other requests go on to the app', async () => {
      const cases: Array<[string, Promise<{ status: number; json: any }>, number, string | undefined]> = [
        ['malformed JSON', post(s.url, '[{"channel":', 'application/json'), 400, 'entity.parse.failed'],
        ['bad form', post(s.url, 'message=%7Bnope', 'application/x-www-form-urlencoded'), 400, 'entity.parse.failed'],
        ['form without message', post(s.url, 'other=1', 'application/x-www-form-urlencoded'), 400, 'message.missing'],
        ['text/plain', post(s.url, JSON.stringify([hs]), 'text/plain'), 415, 'content.type.unsupported'],
        ['bad JSONP callback', get(`${s.url}?jsonp=alert(1)&message=${encodeURIComponent(JSON.stringify(hs))}`), 400, 'jsonp.callback.invalid'],
        ['bad GET message', get(`${s.url}?message=%7B`), 400, 'entity.parse.failed'],
        ['PUT', fetch(s.url, { method: 'PUT', body: '[]' }).then(read), 405, 'method.not.allowed'],
        ['DELETE', fetch(s.url + '/x', { method: 'DELETE' }).then(read), 405, 'method.not.allowed'],
        ['GET without message', get(s.url), 404, undefined],
        ['GET under the mount', get(s.url + '/elsewhere'), 404, undefined],
      ];
      for (const [what, pending, status, type] of cases) {
        const res = await pending;
        assert.equal(res.status, status, what);
        if (type) assert.equal(res.json?.error?.type, type, what);
      }
      const app = await get(s.origin + '/hello');
      assert.equal(app.text, 'hello from the app');
      assert.equal((await post(s.url, [hs])).json[0].successful, true, 'still serving');
    });

    test('WebSocket: Bayeux on the mount path, the app\'s own endpoint beside it, other paths left alone', async () => {
      const wire = await openWire('websocket', s.url);
      try {
        assert.match(await wireHandshake(wire), /./);
      } finally {
        wire.close();
      }
      const mine = await upgrade(s.origin + '/app-ws');
      assert.ok(mine.ws, 'the app answers its own upgrades');
      const echoed = new Promise<string>((resolve) => mine.ws?.once('message', (d) => resolve(String(d))));
      mine.ws.send('ping');
      assert.equal(await echoed, 'echo:ping');
      mine.ws.close();
      // Nobody answers this one: after a grace period for other listeners, 404.
      assert.equal((await upgrade(s.origin + '/nowhere')).status, 404);
    });

    test('the browser client at <mount>/client.js, with an ETag', async () => {
      const res = await fetch(s.url + '/client.js');
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/javascript/);
      const etag = res.headers.get('etag');
      assert.ok(etag);
      assert.match(res.headers.get('cache-control') ?? '', /must-revalidate/);
      assert.match(await res.text(), /BayeuxClient/);
      const again = await fetch(s.url + '/client.js', { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304);
      await again.arrayBuffer();
    });

    test('a body that does not arrive within bodyTimeout: 408 request.timeout, connection closed', async () => {
      const path = new URL(s.url).pathname;
      const answer = await raw(Number(new URL(s.origin).port), [
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[`,
      ]);
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /"type":"request\.timeout"/);
    });
  });
}


describe('mounted at the root of an app', () => {
  for (const host of ['express5', 'express4', 'connect'] as const) {
    test(`${host}: Bayeux POSTs are answered, the app's GETs still reach the app`, async () => {
      const s = await startHost(host, {}, { mount: '/', attach: false });
      try {
        assert.equal((await post(s.origin + '/', [hs])).json[0].successful, true);
        assert.equal((await get(s.origin + '/hello')).text, 'hello from the app');
        assert.equal((await get(s.origin + '/some/page')).status, 404);
      } finally {
        await s.close();
      }
    });
  }
});

describe('the WebSocket mount path without attach({ path })', () => {
  function recording(): Logger & { warnings: string[] } {
    const warnings: string[] = [];
    return { warnings, error() {}, info() {}, debug() {}, warn: (m: string) => warnings.push(m) };
  }

  for (const host of ['express4', 'connect'] as const) {
    test(`${host}: learned from the first HTTP request; before it, upgrades are left alone with one warning`, async () => {
      const logger = recording();
      const s = await startHost(host, { logger }, { attach: {} });
      try {
        if (host === 'express4') {
          assert.equal((await upgrade(s.url)).status, 404);
          assert.equal(logger.warnings.filter((w) => w.includes('mount path')).length, 1);
        }
        assert.equal((await post(s.url, [hs])).json[0].successful, true);
        const wire = await openWire('websocket', s.url);
        try {
          assert.match(await wireHandshake(wire), /./);
        } finally {
          wire.close();
        }
      } finally {
        await s.close();
      }
    });
  }

  test('bare http: attach() options are validated', async () => {
    const s = await startHost('http', {}, { attach: false });
    try {
      assert.throws(() => s.cometd.attach(s.http, { path: 'cometd' }), TypeError);
      assert.throws(() => s.cometd.attach(s.http, { middleware: [42 as never] }), TypeError);
      assert.throws(() => s.cometd.attach(s.http, { pth: '/x' } as never), /unknown attach option pth/);
    } finally {
      await s.close();
    }
  });
});

describe('attach(server, { middleware }): express-session over WebSocket', () => {
  let s: HostServer;
  let seen: Array<{ transport: string; user: unknown; sessionID: unknown }>;
  const sessions = session({ secret: 'test secret', resave: false, saveUninitialized: false });
  before(async () => {
    seen = [];
    s = await startHost('express5', {}, {
      before: [
        sessions,
        function login(req, res, next) {
          if (req.url !== '/login') return next();
          (req as unknown as { session: { user?: string } }).session.user = 'ann';
          res.end('logged in');
        },
      ],
      attach: {
        path: '/cometd',
        middleware: [
          sessions,
          function requireUser(req, _res, next) {
            const user = (req as unknown as { session?: { user?: string } }).session?.user;
            next(user ? undefined : Object.assign(new Error('log in first'), { status: 401 }));
          },
        ],
      },
    });
    s.cometd.use('/meta/handshake', (_message, ctx, next) => {
      const req = ctx.req as unknown as { session?: { user?: string }; sessionID?: string } | undefined;
      seen.push({ transport: ctx.transport, user: req?.session?.user, sessionID: req?.sessionID });
      next();
    });
  });
  after(() => s.close());

  test('ctx.req.session is the same over WebSocket as over long-polling; no session, no upgrade', async () => {
    const login = await fetch(s.origin + '/login');
    await login.text();
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
    assert.match(cookie, /^connect\.sid=/);
    const lp = await fetch(s.url, { method: 'POST', headers: { 'Content-Type': 'application/json', Cookie: cookie }, body: JSON.stringify([hs]) });
    assert.equal(((await lp.json()) as Msg[])[0]?.['successful'], true);
    const { ws } = await upgrade(s.url, { Cookie: cookie });
    assert.ok(ws);
    const reply = new Promise<Msg[]>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)) as Msg[])));
    ws.send(JSON.stringify([{ ...hs, supportedConnectionTypes: ['websocket'] }]));
    assert.equal((await reply)[0]?.['successful'], true);
    ws.close();
    assert.deepEqual(seen.map((x) => x.transport), ['long-polling', 'websocket']);
    assert.equal(seen[0]?.user, 'ann');
    assert.equal(seen[1]?.user, 'ann');
    assert.equal(seen[1]?.sessionID, seen[0]?.sessionID);
    assert.equal((await upgrade(s.url)).status, 401, 'refused with the status of the middleware error');
  });
});

describe('attach(server, { middleware }): refusals', () => {
  test('a middleware that ends the response, throws, or rejects refuses the upgrade with its status; the server keeps serving', async () => {
    let mode = 'end';
    const s = await startHost('connect', {}, {
      attach: {
        path: '/cometd',
        middleware: async function gate(_req, res, next) {
          if (mode === 'end') {
            res.statusCode = 429;
            res.end('slow down');
          } else if (mode === 'throw') {
            throw Object.assign(new Error('teapot'), { statusCode: 418 });
          } else if (mode === 'status200') {
            res.end();
          } else next();
        },
      },
    });
    try {
      assert.equal((await upgrade(s.url)).status, 429);
      mode = 'throw';
      assert.equal((await upgrade(s.url)).status, 418);
      mode = 'status200';
      assert.equal((await upgrade(s.url)).status, 403, 'ended without an error status: 403');
      mode = 'pass';
      const { ws } = await upgrade(s.url);
      assert.ok(ws);
      ws.close();
    } finally {
      await s.close();
    }
  });
});

describe('forgetting attach()', () => {
  function recording(): Logger & { warnings: string[] } {
    const warnings: string[] = [];
    return { warnings, error() {}, info() {}, debug() {}, warn: (m: string) => warnings.push(m) };
  }

  for (const host of HOSTS) {
    test(`${host}: the first request logs once, as a warning, that WebSocket is unavailable and how to fix it`, async () => {
      const logger = recording();
      const s = await startHost(host, { logger }, { attach: false });
      try {
        assert.deepEqual(logger.warnings, []);
        assert.equal((await post(s.url, [hs])).json[0].successful, true);
        assert.equal((await post(s.url, [hs])).json[0].successful, true);
        assert.equal(logger.warnings.length, 1, logger.warnings.join('\n'));
        const warning = logger.warnings.join('\n');
        assert.match(warning, /no HTTP server was attached/);
        assert.match(warning, /WebSocket is unavailable/);
        assert.match(warning, /fall back to long-polling/);
        assert.match(warning, /cometd\.attach\(server, \{ path: '\/cometd' \}\)/);
      } finally {
        await s.close();
      }
    });
  }

  test('attached: no such warning', async () => {
    const logger = recording();
    const s = await startHost('express5', { logger });
    try {
      assert.equal((await post(s.url, [hs])).json[0].successful, true);
      assert.deepEqual(logger.warnings, []);
    } finally {
      await s.close();
    }
  });
});

/** How many connections `http` has open now. */
function connections(s: HostServer): Promise<number> {
  return new Promise((resolve, reject) => s.http.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** A raw upgrade request on a new connection; resolves once it is written. */
function rawUpgrade(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write('GET /cometd HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Hang: 1\r\n\r\n', () => resolve(socket));
    });
    socket.once('error', reject);
  });
}

describe('attach(server, { middleware }): a middleware that never calls next', () => {
  /** Upgrade middleware that never answers requests with `x-hang`, and keeps their sockets. */
  function hanging() {
    const held: Array<import('node:stream').Duplex> = [];
    return {
      held,
      middleware(req: import('node:http').IncomingMessage, _res: unknown, next: () => void): void {
        if (req.headers['x-hang'] !== undefined) held.push(req.socket);
        else next();
      },
    };
  }

  test('the upgrade is refused with 503 at upgradeTimeout and its socket freed; the server keeps serving', async () => {
    const gate = hanging();
    const s = await startHost('express5', { upgradeTimeout: 200 }, { attach: { path: '/cometd', middleware: gate.middleware } });
    try {
      const tries = 40;
      const answers = await Promise.all(Array.from({ length: tries }, () => upgrade(s.url, { 'x-hang': '1' }, 20_000)));
      assert.deepEqual(answers.map((a) => a.status), Array(tries).fill(503));
      assert.equal(gate.held.length, tries);
      await waitFor(() => gate.held.every((socket) => socket.destroyed), { timeout: 10_000, what: 'every refused upgrade socket destroyed' });
      await waitFor(async () => (await connections(s)) === 0, { timeout: 10_000, what: 'no connection left open' });
      // A client whose middleware answers is still served.
      const wire = await openWire('websocket', s.url);
      try {
        assert.match(await wireHandshake(wire), /./);
      } finally {
        wire.close();
      }
    } finally {
      await s.close();
    }
  });

  test('a client that goes away while the middleware runs has its socket closed at once', async () => {
    const gate = hanging();
    // A deadline far beyond the test: only the client's leaving can free the sockets.
    const s = await startHost('connect', { upgradeTimeout: 600_000 }, { attach: { path: '/cometd', middleware: gate.middleware } });
    try {
      const tries = 20;
      const clients = await Promise.all(Array.from({ length: tries }, () => rawUpgrade((s.http.address() as net.AddressInfo).port)));
      await waitFor(() => gate.held.length === tries, { timeout: 10_000, what: `${tries} upgrades in the middleware` });
      assert.equal(await connections(s), tries);
      // Half end their side (FIN: the server's socket would sit in CLOSE_WAIT), half reset.
      clients.forEach((c, i) => (i % 2 === 0 ? c.end() : c.resetAndDestroy()));
      await waitFor(() => gate.held.every((socket) => socket.destroyed), { timeout: 10_000, what: 'every abandoned upgrade socket destroyed' });
      await waitFor(async () => (await connections(s)) === 0, { timeout: 10_000, what: 'no connection left open' });
      for (const c of clients) c.destroy();
    } finally {
      await s.close();
    }
  });
});
