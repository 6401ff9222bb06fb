/**
 * The package as a consumer gets it: `npm pack`, install the tarball into a
 * fresh project, compile a strict TypeScript app against it
 * (`skipLibCheck: false`, no `@types/express`, no express at all) under
 * every `moduleResolution` (node16, nodenext, bundler, node), and run an ESM
 * and a CommonJS consumer (`require('express-bayeux')`) on this Node, which
 * must be one `engines` names. The tarball is packed from the build the
 * test run made (`--ignore-scripts`: `prepack` would rebuild `dist/` under
 * the other test files).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const APP_TS = `
import { createServer } from 'node:http';
import { bayeux, BayeuxError, MemoryEngine, type BayeuxMiddleware, type Context, type UpgradeMiddleware } from 'express-bayeux';
import { BayeuxClient, type BayeuxMessage } from 'express-bayeux/client';
import type { RedisEngine } from 'express-bayeux/redis';

const cometd: BayeuxMiddleware = bayeux({ timeout: 5000, engine: new MemoryEngine() });
const server = createServer(function handler(req, res) {
  cometd(req, res, () => {
    res.statusCode = 404;
    res.end();
  });
});
const auth: UpgradeMiddleware = (req, _res, next) => next(req.headers.origin === 'http://evil' ? new Error('no') : undefined);
cometd.attach(server, { path: '/cometd', middleware: [auth] });
cometd.use('/private/**', (_message, ctx: Context, next) => next(ctx.req ? undefined : new BayeuxError(403, 'Forbidden')));
const client = new BayeuxClient('http://127.0.0.1:1/cometd', { transports: ['long-polling'] });
client.on('connected', () => undefined);
export type Engine = RedisEngine;
export const seen: BayeuxMessage[] = [];
`;

/** A consumer: a server with the middleware on a bare http handler, and the package's client talking to it. */
function consumer(kind: 'esm' | 'cjs'): string {
  const imports = kind === 'esm'
    ? `import { createServer } from 'node:http';
import { bayeux } from 'express-bayeux';
import { BayeuxClient } from 'express-bayeux/client';`
    : `const { createServer } = require('node:http');
const { bayeux } = require('express-bayeux');
const { BayeuxClient } = require('express-bayeux/client');`;
  return `${imports}
const cometd = bayeux({ logLevel: 'error' });
const server = createServer((req, res) => cometd(req, res));
cometd.attach(server, { path: '/cometd' });
server.listen(0, '127.0.0.1', () => {
  const url = 'http://127.0.0.1:' + server.address().port + '/cometd';
  const timer = setTimeout(() => { console.error('timed out'); process.exit(2); }, 15000);
  (async () => {
    const script = await fetch(url + '/client.js');
    if (script.status !== 200 || !(await script.text()).includes('BayeuxClient')) throw new Error('no client.js');
    for (const transports of [['websocket'], ['long-polling']]) {
      const client = new BayeuxClient(url, { transports });
      let arrived;
      const received = new Promise((resolve) => (arrived = resolve));
      await client.subscribe('/c/y', (data) => arrived(data));
      await client.publish('/c/y', { hi: transports[0] });
      const data = await received;
      if (client.transport !== transports[0]) throw new Error('used ' + client.transport);
      if (data.hi !== transports[0]) throw new Error('wrong data ' + JSON.stringify(data));
      await client.disconnect();
    }
    clearTimeout(timer);
    await cometd.close();
    server.close();
    console.log('${kind} consumer ok');
  })().catch((err) => { console.error(err); process.exit(1); });
});
`;
}

describe('the packed package in a fresh consumer project', () => {
  let dir: string;
  let pkg: { engines: { node: string }; scripts?: Record<string, string> };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'express-bayeux-consumer-'));
    const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, maxBuffer: 16 << 20 });
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    assert.ok(info);
    const paths = info.files.map((f) => f.path);
    assert.ok(paths.includes('dist/browser/client.js'), 'the client bundle is packed');
    assert.ok(!paths.some((p) => p.startsWith('dist/test/') || p.startsWith('node_modules/')), 'no tests or dependencies packed');
    for (const map of paths.filter((p) => p.endsWith('.js.map'))) {
      const source = map.replace(/^dist\//, '').replace(/\.js\.map$/, '.ts');
      assert.ok(paths.includes(source), `${map} points at ${source}, which is packed`);
    }
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await run(npm, ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, info.filename), '@types/node@^20.19.0'], {
      cwd: dir,
      maxBuffer: 16 << 20,
    });
    pkg = JSON.parse(await readFile(join(dir, 'node_modules', 'express-bayeux', 'package.json'), 'utf8')) as typeof pkg;
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('installs without install scripts and without express', () => {
    for (const script of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(pkg.scripts?.[script], undefined, script);
    assert.equal(existsSync(join(dir, 'node_modules', 'express')), false, 'express is an optional peer, not installed');
    assert.equal(existsSync(join(dir, 'node_modules', 'body-parser')), false);
  });

  for (const resolution of ['node16', 'nodenext', 'bundler', 'node'] as const) {
    test(`a strict TypeScript app compiles with moduleResolution ${resolution}, skipLibCheck false`, async () => {
      const module = resolution === 'bundler' ? 'esnext' : resolution === 'node' ? 'esnext' : resolution;
      await writeFile(join(dir, 'app.ts'), APP_TS);
      await writeFile(join(dir, `tsconfig.${resolution}.json`), JSON.stringify({
        compilerOptions: {
          target: 'ES2022', module, moduleResolution: resolution, strict: true, skipLibCheck: false,
          noEmit: true, types: ['node'], lib: ['ES2022'], esModuleInterop: true, ignoreDeprecations: '5.0',
        },
        files: ['app.ts'],
      }));
      try {
        await run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], { cwd: dir, maxBuffer: 16 << 20 });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        assert.fail(`tsc (${resolution}) failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
      }
    });
  }

  for (const kind of ['esm', 'cjs'] as const) {
    test(`a${kind === 'esm' ? 'n ESM' : ' CommonJS'} consumer runs on Node ${process.versions.node}, which engines (${'>=20.19'}) names`, async () => {
      const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
      assert.equal(pkg.engines.node, '>=20.19');
      assert.ok(major > 20 || (major === 20 && minor >= 19), 'this Node is one engines names');
      const file = join(dir, kind === 'esm' ? 'consumer.mjs' : 'consumer.cjs');
      await writeFile(file, consumer(kind));
      const { stdout, stderr } = await run(process.execPath, ['--unhandled-rejections=strict', file], { cwd: dir, timeout: 30_000 });
      assert.match(stdout, new RegExp(`${kind} consumer ok`));
      if (stderr) console.log(`${kind} consumer stderr: ${stderr}`);
    });
  }
});
