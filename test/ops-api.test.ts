/**
 * The operating handlers under their contract names on the middleware
 * object: `cometd.metrics()`, `cometd.admin()`, `cometd.health()`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { get, startServer, type TestServer } from './helpers/http-server.js';
import { openWire, wireSession } from './helpers/wire.js';

let server: TestServer;
after(() => server?.close());

test('metrics(), admin() and health() serve on the app, and close with the server', async () => {
  // Mounted before Bayeux, as an app would; the handlers are made once, from the middleware object.
  let handlers: { metrics: ReturnType<TestServer['cometd']['metrics']>; admin: ReturnType<TestServer['cometd']['admin']>; health: ReturnType<TestServer['cometd']['health']> };
  server = await startServer({}, {
    configure(app) {
      app.get('/metrics', (req, res, next) => handlers.metrics(req, res, next));
      app.use('/admin', (req, res, next) => handlers.admin(req, res, next));
      app.get('/health', (req, res, next) => handlers.health(req, res, next));
    },
  });
  handlers = { metrics: server.cometd.metrics(), admin: server.cometd.admin(), health: server.cometd.health() };
  const wire = await openWire('long-polling', server.url);
  const clientId = await wireSession(wire);
  await wire.send({ channel: '/meta/subscribe', clientId, subscription: '/ops' });
  await server.cometd.publish('/ops', 1);

  const metrics = await get(server.origin + '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
  assert.match(metrics.text, /^bayeux_sessions \d+$/m);
  assert.match(metrics.text, /^bayeux_messages_in_total \d+$/m);

  const page = await get(server.origin + '/admin/');
  assert.equal(page.status, 200);
  assert.match(page.text, /<html/i);

  const health = await get(server.origin + '/health');
  assert.equal(health.status, 200);
});
