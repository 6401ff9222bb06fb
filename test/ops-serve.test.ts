/**
 * What `express-bayeux serve` does for operators, run as a user would
 * (spawned processes on 127.0.0.1): the password-less loopback admin page
 * answers only loopback `Host` names (DNS rebinding), and `--redis`
 * without the 'redis' package says how to install it (in a copy of the
 * package whose node_modules lacks it).
 */
import assert from 'node:assert/strict';
import { cpSync, writeFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { finish, output, runNode, type Run } from './helpers/cli-run.js';

const BIN = fileURLToPath(new URL('../lib/cli/bin.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const temporary: string[] = [];
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function run(bin: string, args: string[]): Run {
  return runNode(bin, args);
}

/** Exit code of `r`, which must end within `ms`. */
async function exitCode(r: Run, ms = 15_000): Promise<number | null> {
  return (await finish(r, ms)).code;
}

/** GET `path` from 127.0.0.1:`port` with the given `Host` header (fetch does not let us set it). */
function getWithHost(port: number, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { ...headers, host }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
    req.end();
  });
}

describe('serve --admin without a password', () => {
  test('answers only loopback Host names at its port, and says why to the others (403)', async () => {
    const serve = run(BIN, ['serve', '--port', '0', '--admin']);
    const [, portText] = await output(serve, 'stdout', /admin {3}http:\/\/127\.0\.0\.1:(\d+)\/admin\//);
    const port = Number(portText);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LocalHost:${port}`]) {
      const res = await getWithHost(port, '/admin/data.json', host);
      assert.equal(res.status, 200, `Host ${host}: ${res.body}`);
      assert.equal(typeof (JSON.parse(res.body) as { now: number }).now, 'number');
    }
    for (const host of [`evil.example:${port}`, `localhost.evil.example:${port}`, `127.0.0.1:${port + 1}`, 'localhost']) {
      const res = await getWithHost(port, '/admin/data.json', host);
      assert.equal(res.status, 403, `Host ${host}`);
      assert.match(res.body, /Host .* refused\. Without --admin-token the admin page answers only requests for localhost, 127\.0\.0\.1 or \[::1\]/);
      assert.doesNotMatch(res.body, /"sessions"/);
    }
    // The rest of the server is not affected.
    assert.equal((await getWithHost(port, '/health', `evil.example:${port}`)).status, 200);
    serve.child.kill('SIGTERM');
    assert.equal(await exitCode(serve), 0, serve.stderr);
  });

  test('with --admin-token the password decides, whatever the Host', async () => {
    const serve = run(BIN, ['serve', '--port', '0', '--admin', '--admin-token', 's3cret']);
    const [, portText] = await output(serve, 'stdout', /admin {3}http:\/\/127\.0\.0\.1:(\d+)\/admin\//);
    const port = Number(portText);
    const basic = { authorization: `Basic ${Buffer.from('ops:s3cret').toString('base64')}` };
    assert.equal((await getWithHost(port, '/admin/data.json', `admin.example:${port}`)).status, 401);
    assert.equal((await getWithHost(port, '/admin/data.json', `admin.example:${port}`, basic)).status, 200);
    serve.child.kill('SIGTERM');
    assert.equal(await exitCode(serve), 0, serve.stderr);
  });
});

describe('serve drains on SIGTERM', () => {
  test('health says draining, the held connect is handed off with retry advice, and the process exits 0', async () => {
    const serve = run(BIN, ['serve', '--port', '0', '--drain', '3000']);
    const [, portText] = await output(serve, 'stdout', /listening on http:\/\/127\.0\.0\.1:(\d+)\/cometd/);
    const origin = `http://127.0.0.1:${portText}`;
    const post = async (body: unknown): Promise<Array<Record<string, any>>> => {
      const res = await fetch(`${origin}/cometd`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000),
      });
      return (await res.json()) as Array<Record<string, any>>;
    };
    const [hs] = await post([{ channel: '/meta/handshake', version: '1.0', supportedConnectionTypes: ['long-polling'] }]);
    const clientId = hs?.['clientId'] as string;
    await post([{ channel: '/meta/connect', clientId, connectionType: 'long-polling', advice: { timeout: 0 } }]);
    const held = post([{ channel: '/meta/connect', clientId, connectionType: 'long-polling' }]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the connect is held by now (it would be answered at the drain either way)

    serve.child.kill('SIGTERM');
    await output(serve, 'stderr', /SIGTERM: draining for up to 3000 ms/);
    const health = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(5000) });
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'draining' });
    const [answer] = await held;
    assert.equal(answer?.['successful'], true);
    assert.equal(answer?.['advice']?.reconnect, 'retry');
    assert.ok(answer?.['advice']?.interval >= 0 && answer?.['advice']?.interval <= 3000);
    assert.equal(await exitCode(serve, 20_000), 0, serve.stderr);
    assert.match(serve.stderr, /serve: stopped/);
  });

  test('--drain takes a number of ms', async () => {
    const bad = await finish(run(BIN, ['serve', '--port', '0', '--drain', 'soon']));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--drain must be a number of ms from 0 to 2147483647, got soon/);
  });
});

/** A copy of the built package whose node_modules has everything but redis. */
function packageWithoutRedis(): string {
  const dir = mkdtempSync(join(tmpdir(), 'express-bayeux-noredis-'));
  temporary.push(dir);
  cpSync(join(ROOT, 'dist', 'lib'), join(dir, 'dist', 'lib'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name === 'redis' || name === 'redis5' || name === '@redis' || name.startsWith('.')) continue;
    symlinkSync(join(ROOT, 'node_modules', name), join(dir, 'node_modules', name));
  }
  return dir;
}

describe('the redis package missing', () => {
  test('express-bayeux/redis imports, and opening the engine says to install it', async () => {
    const dir = packageWithoutRedis();
    const script = [
      "const { RedisEngine } = await import('./dist/lib/engines/redis/index.js');",
      "const engine = new RedisEngine({ url: 'redis://127.0.0.1:1' }, { openTimeout: 500 });",
      "try { await engine.open({ wake() {}, expired() {} }, { maxQueue: 10, maxQueueBytes: 1024, sessionTtl: 1000 }); console.log('opened'); }",
      'catch (err) { console.log(err.constructor.name + ": " + err.message); }',
    ].join('\n');
    const file = join(dir, 'open.mjs');
    writeFileSync(file, script);
    const child = run(file, []);
    assert.equal(await exitCode(child), 0, child.stderr);
    assert.match(child.stdout, /^Error: RedisEngine needs the 'redis' package, which is not installed: install the redis package: npm install redis\n$/);
  });

  test('serve --redis says to install it', async () => {
    const dir = packageWithoutRedis();
    const serve = run(join(dir, 'dist', 'lib', 'cli', 'bin.js'), ['serve', '--port', '0', '--redis', 'redis://127.0.0.1:1']);
    assert.equal(await exitCode(serve), 1, `stdout: ${serve.stdout}; stderr: ${serve.stderr}`);
    assert.match(serve.stderr, /install the redis package: npm install redis/);
    assert.doesNotMatch(serve.stderr, /ERR_MODULE_NOT_FOUND| {4}at /, 'a sentence, not a stack trace');
    assert.equal(serve.stdout, '', 'it did not start');
  });
});
