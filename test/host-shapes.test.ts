/**
 * `attach(server)` gives long-polling requests under the mount path the
 * fields the host's router adds, before the router runs
 * (lib/transports/host-shapes.ts), so that behind Express held connects
 * share one hidden class instead of one each. What the hosts' own code
 * sees must not change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { HOSTS, startHost, type HostName } from './helpers/hosts.js';

const HOSTS_MODULE = new URL('./helpers/hosts.js', import.meta.url).href;
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * In a child with V8's natives syntax: K clients each hold a connect on
 * `host`; do the held requests (and responses) share a hidden class?
 */
const CHILD = `
const [hostsModule, host, attach, appFields] = process.argv.slice(1);
const { startHost } = await import(hostsModule);
const K = 6;
const seen = [];
// What an app's own middleware in front may add to every request (a login, a timer, a request id).
const app = (req, res, next) => { req.user = { id: 'u1' }; req.startedAt = Date.now(); res.requestId = 'r' + seen.length; next(); };
const server = await startHost(host, { timeout: 20000 }, {
  attach: attach === 'attach' ? undefined : false,
  before: [...(appFields === 'app-fields' ? [app] : []), (req, res, next) => { if (req.method === 'POST') seen.push([req, res]); next(); }],
});
const post = async (body) => (await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
const ids = [];
for (let i = 0; i < K; i++) {
  const [h] = await post([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
  await post([{ channel: '/meta/connect', clientId: h.clientId, connectionType: 'long-polling' }]);
  await post([{ channel: '/meta/subscribe', clientId: h.clientId, subscription: '/news' }]);
  ids.push(h.clientId);
}
// The responses as Node's writeHead sees them when the held connects are answered.
const { ServerResponse } = await import('node:http');
const answering = [];
const writeHead = ServerResponse.prototype.writeHead;
ServerResponse.prototype.writeHead = function (...args) { answering.push(this); return writeHead.apply(this, args); };
const from = seen.length;
const held = ids.map((clientId) => post([{ channel: '/meta/connect', clientId, connectionType: 'long-polling' }]).catch(() => undefined));
const deadline = Date.now() + 5000;
while (seen.length < from + K && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
await new Promise((r) => setTimeout(r, 100));
const pairs = seen.slice(from);
let req = pairs.length === K, res = pairs.length === K;
for (let i = 1; i < pairs.length; i++) {
  req &&= %HaveSameMap(pairs[0][0], pairs[i][0]);
  res &&= %HaveSameMap(pairs[0][1], pairs[i][1]);
}
const from2 = answering.length;
await server.cometd.publish('/news', { n: 1 });
await Promise.all(held);
const answered = answering.slice(from2);
let atAnswer = answered.length === K;
for (let i = 1; i < answered.length; i++) atAnswer &&= %HaveSameMap(answered[0], answered[i]);
console.log(JSON.stringify({ held: pairs.length, req, res, atAnswer }));
process.exit(0);
`;

interface Shapes {
  held: number;
  /** Held requests (responses) share one hidden class while they wait. */
  req: boolean;
  res: boolean;
  /** The responses still share one when Node writes their heads. */
  atAnswer: boolean;
}

function heldShapes(host: HostName, attach: boolean, appFields = false): Promise<Shapes> {
  return new Promise((resolve, reject) => {
    const args = [HOSTS_MODULE, host, attach ? 'attach' : 'none', appFields ? 'app-fields' : 'none'];
    execFile(process.execPath, ['--allow-natives-syntax', '--no-warnings', '--input-type=module', '-e', CHILD, ...args],
      { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as Shapes);
        } catch {
          reject(new Error(`no result from the child: ${stdout}\n${stderr}`));
        }
      });
  });
}

test('without attach(), held connects behind Express 5 each have a hidden class of their own (what the shaping is for)', async () => {
  const shapes = await heldShapes('express5', false);
  assert.equal(shapes.held, 6);
  assert.equal(shapes.req, false);
  assert.equal(shapes.res, false);
  assert.equal(shapes.atAnswer, false);
});

for (const host of HOSTS) {
  test(`${host}: with attach(), held connects share one hidden class, requests and responses, while held and when answered`, async () => {
    assert.deepEqual(await heldShapes(host, true), { held: 6, req: true, res: true, atAnswer: true });
  });
}

test('express5: with fields the app\'s own middleware adds to every request, held connects still share one hidden class', async () => {
  assert.deepEqual(await heldShapes('express5', true, true), { held: 6, req: true, res: true, atAnswer: true });
});

test("Express 5: the app's own code reads the same values (getters, prototype members, listeners); other paths are not touched", async () => {
  const onMount: Array<{ query: unknown; custom: unknown; listened: boolean; ownEventsCount: boolean }> = [];
  const elsewhere: boolean[] = [];
  const server = await startHost('express5', {}, {
    before: [
      (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => {
        const r = req as IncomingMessage & { query?: Record<string, unknown>; custom?: unknown };
        if ((req.url ?? '').startsWith('/cometd')) {
          // A member of the app's request prototype (as app.request.custom = ... would add),
          // set as an own field on the first request only: later ones must still read the prototype's.
          const proto = Object.getPrototypeOf(req) as { custom?: unknown };
          proto.custom ??= 'proto';
          const custom = r.custom;
          if (r.query?.['own'] === '1') r.custom = 'own';
          const ownEventsCount = Object.hasOwn(req, '_eventsCount');
          req.on('app-event', () => undefined);
          onMount.push({ query: r.query?.['tag'], custom, listened: req.eventNames().includes('app-event'), ownEventsCount });
          (res as ServerResponse & { locals: Record<string, unknown> }).locals['seen'] = true;
        } else {
          elsewhere.push(Object.hasOwn(req, '_eventsCount'));
        }
        next();
      },
    ],
  });
  try {
    const listeners = server.http.listenerCount('request');
    const handshake = JSON.stringify([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    for (let i = 0; i < 3; i++) {
      const reply = await fetch(`${server.url}?tag=t${i}${i === 0 ? '&own=1' : ''}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: handshake });
      assert.equal(reply.status, 200);
      const [h] = (await reply.json()) as Array<{ successful: boolean }>;
      assert.equal(h?.successful, true);
      assert.equal(await (await fetch(`${server.origin}/hello`)).text(), 'hello from the app');
    }
    // Express 5's req.query is a getter on its prototype: still read, never shadowed by an own field.
    assert.deepEqual(onMount.map((m) => m.query), ['t0', 't1', 't2']);
    // A prototype member an earlier request set as its own field is not learned, so not hidden.
    assert.deepEqual(onMount.map((m) => m.custom), ['proto', 'proto', 'proto']);
    // Listeners count as before (a learned _eventsCount starts at Node's 0, not undefined).
    assert.deepEqual(onMount.map((m) => m.listened), [true, true, true]);
    // After the first answered request, requests under the mount path arrive with the learned fields;
    // requests elsewhere never get them.
    assert.equal(onMount[0]?.ownEventsCount, false);
    assert.equal(onMount[2]?.ownEventsCount, true);
    assert.deepEqual(elsewhere, [false, false, false]);

    await server.cometd.close();
    assert.equal(server.http.listenerCount('request'), listeners - 1, 'close() takes its request listener off');
  } finally {
    await server.close();
  }
});
