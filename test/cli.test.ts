/**
 * The `express-bayeux` command run as a user would: spawned processes
 * (with --unhandled-rejections=strict), on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { BayeuxError } from '../lib/index.js';
import { RedisEngine } from '../lib/engines/redis/index.js';
import { nextEvent, startServer } from './helpers/http-server.js';
import { finish, output, runNode, type Run } from './helpers/cli-run.js';
import { announceRedisSkip, findRedisServer, startRedisServer } from './helpers/redis-server.js';
import { waitFor } from './helpers/wait.js';

const BIN = fileURLToPath(new URL('../lib/cli/bin.js', import.meta.url));

function run(args: string[], input?: string): Run {
  return runNode(BIN, args, input);
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('express-bayeux CLI', () => {
  test('serve, sub and pub round trip; SIGTERM shuts serve down gracefully', async () => {
    const serve = run(['serve', '--port', '0', '--metrics', '--admin', '--admin-token', 's3cret']);
    const [, url] = await output(serve, 'stdout', /listening on (http:\/\/127\.0\.0\.1:\d+\/cometd)\n/);
    const origin = new URL(url as string).origin;
    await output(serve, 'stdout', /metrics http:\/\/127\.0\.0\.1:\d+\/metrics/);

    // One subscriber on long-polling (so serve holds its connect at shutdown), one on WebSocket.
    const polling = run(['sub', url as string, '/cli/a', '/cli/more/**', '--transport', 'long-polling']);
    const socket = run(['sub', url as string, '/cli/a']);
    await output(polling, 'stderr', /subscribed to \/cli\/a \/cli\/more\/\*\*/);
    await output(socket, 'stderr', /subscribed to \/cli\/a/);

    const one = await finish(run(['pub', url as string, '/cli/a', '{"n":1}']));
    assert.equal(one.code, 0, one.stderr);
    const lines = await finish(run(['pub', url as string, '/cli/more/x'], '"two"\n\n[3]\n'));
    assert.equal(lines.code, 0, lines.stderr);

    await output(polling, 'stdout', /\[3\]/);
    await output(socket, 'stdout', /\n/);
    assert.deepEqual(polling.stdout.trim().split('\n').map((line) => JSON.parse(line) as unknown), [
      { channel: '/cli/a', data: { n: 1 } },
      { channel: '/cli/more/x', data: 'two' },
      { channel: '/cli/more/x', data: [3] },
    ]);
    assert.deepEqual(JSON.parse(socket.stdout.trim()), { channel: '/cli/a', data: { n: 1 } });

    const health = await fetch(`${origin}/health`);
    assert.equal(health.status, 200);
    const metrics = await (await fetch(`${origin}/metrics`)).text();
    assert.match(metrics, /^bayeux_sessions 2$/m);
    assert.equal((await fetch(`${origin}/admin/`)).status, 401);
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` });
    assert.equal((await fetch(`${origin}/admin/`, { headers: basic('wrong') })).status, 401);
    assert.equal((await fetch(`${origin}/admin/`, { headers: basic('s3cret') })).status, 200);

    // Graceful: the held long-poll is answered and serve exits 0 without waiting out the 30 s hold.
    serve.child.kill('SIGTERM');
    const stopped = await finish(serve, 10_000);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stderr, /SIGTERM: shutting down[\s\S]*stopped/);

    for (const sub of [polling, socket]) {
      sub.child.kill('SIGINT');
      const done = await finish(sub, 10_000);
      assert.equal(done.code, 0, done.stderr);
    }
  });

  test('pub exits 1 when the server refuses the message', async () => {
    const s = await startServer();
    try {
      s.cometd.use('/private/**', (_message, _ctx, next) => next(new BayeuxError(403, 'Forbidden', ['private'])));
      const refused = await finish(run(['pub', s.url, '/private/x', '1']));
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /refused: 403:private:Forbidden/);

      // From stdin: every line published; a line that is not JSON is a usage error (2).
      const good = await finish(run(['pub', s.url, '/public/x'], '1\n2\n'));
      assert.equal(good.code, 0, good.stderr);
      const notJson = await finish(run(['pub', s.url, '/public/x'], '1\n{oops\n'));
      assert.equal(notJson.code, 2);
      assert.match(notJson.stderr, /line 2 is not JSON/);
    } finally {
      await s.close();
    }
  });

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`pub over ${transport}: a line larger than the server accepts exits 1 saying why, at once`, async () => {
      const s = await startServer({ maxBodyBytes: 65_536 });
      try {
        const big = `"${'x'.repeat(100_000)}"\n`;
        const refused = await finish(run(['pub', s.url, '/big', '--transport', transport], `1\n${big}2\n`));
        assert.equal(refused.code, 1, refused.stderr);
        assert.match(refused.stderr, transport === 'long-polling'
          ? /^pub: line 2 refused: The server refused the request as too large: HTTP 413 .*entity\.too\.large/m
          : /^pub: line 2 refused: The server closed the WebSocket \(1009[^)]*\): a message sent was larger than it accepts/m);
      } finally {
        await s.close();
      }
    });
  }

  for (const transport of ['long-polling', 'websocket'] as const) {
    test(`sub over ${transport}: a message larger than --max-response-bytes is skipped and reported; the next ones print`, async () => {
      const s = await startServer();
      try {
        const sub = run(['sub', s.url, '/feed', '--transport', transport, '--max-response-bytes', '65536']);
        await output(sub, 'stderr', /subscribed to \/feed/);
        await s.cometd.publish('/feed', 'z'.repeat(100_000));
        await output(sub, 'stderr', /maxResponseBytes \(65536 bytes\)/);
        for (let i = 0; i < 10; i++) await s.cometd.publish('/feed', i);
        await output(sub, 'stdout', /"data":9\}\n/, 15_000);
        sub.child.kill('SIGINT');
        const done = await finish(sub, 10_000);
        assert.equal(done.code, 0, done.stderr);
        assert.deepEqual(done.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { data: unknown }).data), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert.equal(done.stderr.match(/maxResponseBytes/g)?.length, 1, done.stderr);
      } finally {
        await s.close();
      }
    });
  }

  test('pub exits 1 when the server goes away after the handshake, saying what it waited for', async () => {
    const s = await startServer();
    let closed = false;
    try {
      const connected = nextEvent(s, 'connect', () => true, 10_000);
      const r = run(['pub', s.url, '/gone', '--timeout', '2000']);
      await connected;
      await s.close();
      closed = true;
      r.child.stdin?.write('1\n');
      const done = await finish(r, 20_000);
      assert.equal(done.code, 1, done.stderr);
      assert.match(done.stderr, /^pub: line 1 not accepted within 2000 ms: .*http:\/\/127\.0\.0\.1:\d+\/cometd/m);
    } finally {
      if (!closed) await s.close();
    }
  });

  test('sub exits 1 when a subscription is not answered within --timeout', async () => {
    const s = await startServer();
    try {
      // A middleware that never answers: the server holds the subscription for ever.
      s.cometd.use('/stuck/**', (_message, _ctx, _next) => undefined);
      const stuck = await finish(run(['sub', s.url, '/ok', '/stuck/a', '--timeout', '1500']));
      assert.equal(stuck.code, 1, stuck.stderr);
      assert.match(stuck.stderr, /^sub: subscription to \/stuck\/a not accepted within 1500 ms: no answer from http:\/\/127\.0\.0\.1:\d+\/cometd/m);
    } finally {
      await s.close();
    }
  });

  test('pub and sub to a URL that is not a Bayeux server: exit 1 naming the URL and the status', async () => {
    const s = await startServer();
    try {
      const wrong = `${s.origin}/wrong`;
      for (const command of [['pub', wrong, '/a', '1'], ['sub', wrong, '/a']]) {
        const done = await finish(run(command));
        assert.equal(done.code, 1, done.stderr);
        assert.ok(done.stderr.includes(`cannot connect to ${wrong}`), done.stderr);
        assert.match(done.stderr, /HTTP 404/);
      }
    } finally {
      await s.close();
    }
  });

  test('bad URLs and usage errors: clear messages and exit codes', async () => {
    const port = await closedPort();
    const unreachable = await finish(run(['pub', `http://127.0.0.1:${port}/cometd`, '/a', '1', '--timeout', '5000']));
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot connect to http:\/\/127\.0\.0\.1:\d+\/cometd/);

    const subUnreachable = await finish(run(['sub', `http://127.0.0.1:${port}/cometd`, '/a', '--timeout', '5000']));
    assert.equal(subUnreachable.code, 1);
    assert.match(subUnreachable.stderr, /cannot connect/);

    const notUrl = await finish(run(['sub', 'not a url', '/a']));
    assert.equal(notUrl.code, 2);
    assert.match(notUrl.stderr, /not a URL: not a url\nRun 'express-bayeux sub --help' for usage/);

    const wsUrl = await finish(run(['pub', 'ws://127.0.0.1/cometd', '/a', '1']));
    assert.equal(wsUrl.code, 2);
    assert.match(wsUrl.stderr, /must be http:\/\/ or https:\/\//);

    const badChannel = await finish(run(['pub', 'http://127.0.0.1:1/cometd', '/a/*', '1']));
    assert.equal(badChannel.code, 2);

    const unknown = await finish(run(['serve', '--nope']));
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown option '--nope'/);

    const exposedAdmin = await finish(run(['serve', '--admin', '--host', '0.0.0.0', '--port', '0']));
    assert.equal(exposedAdmin.code, 2);
    assert.match(exposedAdmin.stderr, /--admin on 0\.0\.0\.0 needs a password/);

    const noCommand = await finish(run([]));
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /Usage: express-bayeux <command>/);
    const unknownCommand = await finish(run(['frobnicate']));
    assert.equal(unknownCommand.code, 2);
    assert.match(unknownCommand.stderr, /unknown command 'frobnicate'/);
  });

  test('serve --redis loads the Redis engine; /health says 503 while Redis is away', async () => {
    const redisPort = await closedPort();
    const serve = run(['serve', '--port', '0', '--redis', `redis://127.0.0.1:${redisPort}`]);
    const [, url] = await output(serve, 'stdout', /listening on (http:\/\/127\.0\.0\.1:\d+\/cometd)\n/);
    const health = await fetch(`${new URL(url as string).origin}/health`, { signal: AbortSignal.timeout(8000) });
    assert.equal(health.status, 503);
    assert.equal(((await health.json()) as { status: string }).status, 'unavailable');
    // A graceful stop would wait for the engine's open timeout: not needed here.
    serve.child.kill('SIGKILL');
    await finish(serve);
  });

  test('--help on every command', async () => {
    const helps = await Promise.all([
      finish(run(['--help'])),
      finish(run(['serve', '--help'])),
      finish(run(['sub', '-h'])),
      finish(run(['pub', '--help'])),
      finish(run(['help', 'serve'])),
    ]);
    for (const help of helps) assert.equal(help.code, 0, help.stderr);
    assert.match(helps[0]?.stdout ?? '', /Commands:\n\s+serve/);
    assert.match(helps[1]?.stdout ?? '', /Usage: express-bayeux serve[\s\S]*SIGTERM[\s\S]*--redis URL/);
    assert.match(helps[2]?.stdout ?? '', /Usage: express-bayeux sub URL CHANNEL/);
    assert.match(helps[3]?.stdout ?? '', /Usage: express-bayeux pub URL CHANNEL \[JSON\]/);
    assert.equal(helps[4]?.stdout, helps[1]?.stdout);
  });
});

describe('express-bayeux pub --redis', () => {
  test('usage errors: a bad Redis URL, --transport or --prefix out of place', async () => {
    const notRedis = await finish(run(['pub', '--redis', 'http://127.0.0.1:6379', '/a', '1']));
    assert.equal(notRedis.code, 2);
    assert.match(notRedis.stderr, /--redis must be a redis:\/\/ or rediss:\/\/ URL/);
    const transport = await finish(run(['pub', '--redis', 'redis://127.0.0.1:1', '/a', '1', '--transport', 'websocket']));
    assert.equal(transport.code, 2);
    assert.match(transport.stderr, /--transport does not go with --redis/);
    const prefix = await finish(run(['pub', 'http://127.0.0.1:1/cometd', '/a', '1', '--prefix', 'x:']));
    assert.equal(prefix.code, 2);
    assert.match(prefix.stderr, /--prefix goes with --redis/);
    const service = await finish(run(['pub', '--redis', 'redis://127.0.0.1:1', '/service/x', '1']));
    assert.equal(service.code, 2);
    assert.match(service.stderr, /not a channel you can publish to: \/service\/x/);
    const emptyPrefix = await finish(run(['pub', '--redis', 'redis://127.0.0.1:1', '/a', '1', '--prefix', '']));
    assert.equal(emptyPrefix.code, 2);
    assert.match(emptyPrefix.stderr, /prefix must be a non-empty string/);
  });

  test('Redis out of reach: exit 1 within --timeout, saying so', async () => {
    const port = await closedPort();
    const done = await finish(run(['pub', '--redis', `redis://127.0.0.1:${port}`, '/a', '1', '--timeout', '1000']), 10_000);
    assert.equal(done.code, 1, done.stderr);
    assert.match(done.stderr, /pub: the message not published: .*Redis could not connect \(redis:\/\/127\.0\.0\.1:\d+\)/);
  });

  test('publishes without a server: a node on the same Redis delivers it, from the argument and from stdin', { skip: findRedisServer() ? false : announceRedisSkip() }, async () => {
    const redis = await startRedisServer();
    const prefix = `cli-${process.pid}:`;
    const s = await startServer({ engine: new RedisEngine({ url: redis.url }, { prefix }) });
    try {
      const got: Array<{ channel: string; data: unknown; client: string | undefined }> = [];
      await s.cometd.subscribe('/cli/**', (data, message, info) => got.push({ channel: message.channel, data, client: info.client })).ready;
      const one = await finish(run(['pub', '--redis', redis.url, '--prefix', prefix, '/cli/redis', '{"n":1}']));
      assert.equal(one.code, 0, one.stderr);
      const lines = await finish(run(['pub', '--redis', redis.url, '--prefix', prefix, '/cli/lines'], '2\n\n"three"\n'));
      assert.equal(lines.code, 0, lines.stderr);
      await waitFor(() => got.length >= 3, { timeout: 5000, what: 'three messages on the node' });
      assert.deepEqual(got, [
        { channel: '/cli/redis', data: { n: 1 }, client: undefined },
        { channel: '/cli/lines', data: 2, client: undefined },
        { channel: '/cli/lines', data: 'three', client: undefined },
      ]);
      // Another prefix is another application: nothing arrives.
      const other = await finish(run(['pub', '--redis', redis.url, '/cli/redis', '4']));
      assert.equal(other.code, 0, other.stderr);
      const bad = await finish(run(['pub', '--redis', redis.url, '--prefix', prefix, '/cli/lines'], '5\n{oops\n'));
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /line 2 is not JSON/);
      await waitFor(() => got.length >= 4, { timeout: 5000, what: 'line 1 of the bad input' });
      assert.deepEqual(got.map((m) => m.data), [{ n: 1 }, 2, 'three', 5]);
    } finally {
      await s.close();
      await redis.stop();
    }
  });
});
