/**
 * What `npm pack` makes installs and works, as the README tells users to
 * install the package before it is published: the tarball goes into an
 * empty project (from the npm cache, offline: `npm ci` has put every
 * dependency there), and in that project the ES module and CommonJS entry
 * points, the client entry, the types and the `express-bayeux` command work.
 *
 * It packs the build `npm test` has just made (`--ignore-scripts`): the
 * `prepack` script would rebuild dist/lib in place while other test files
 * run from it.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * The environment for the npm commands: this process's, without what an
 * enclosing npm (`npm test`, `npm exec`) put in it for its own run (the
 * package's fields, its prefix, its flags), so the commands act on the
 * project they run in; the user's npm cache and config stay.
 */
const KEEP_NPM = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_globalconfig', 'npm_config_registry']);
const childEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) || KEEP_NPM.has(key.toLowerCase())));
Object.assign(childEnv, { npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' });

/** Run a command to its end within `timeout` ms; rejects with its output on failure. */
function run(cmd: string, args: string[], cwd: string, timeout = 60_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env: childEnv },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${cmd} ${args.join(' ')} failed in ${cwd}: ${error.message}\n${stdout}\n${stderr}`));
        else resolve({ stdout, stderr });
      });
  });
}

test('npm pack makes a tarball that installs into an empty project and works there', { timeout: 120_000 }, async () => {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  const dir = await mkdtemp(join(tmpdir(), 'express-bayeux-pack-'));
  try {
    const packed = await run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root);
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    assert.ok(info, 'npm pack --json output');
    assert.equal(info.filename, `${pkg.name}-${pkg.version}.tgz`, 'the file name the README gives');
    const files = new Set(info.files.map((f) => f.path));
    for (const file of ['package.json', 'README.md', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'dist/lib/client/index.js', 'dist/lib/client/node.js',
      'dist/lib/engines/redis/index.js', 'dist/lib/engines/redis.d.ts', 'dist/lib/cli/bin.js', 'dist/browser/client.js',
      // The Redis engine reads its Lua scripts from files when it loads.
      'dist/lib/engines/redis/lua/scripts/publish.lua', 'dist/lib/engines/redis/lua/scripts/session-prelude.lua',
      // The README links into docs/: the pages ship with it, so the links work in an installed copy too.
      'docs/README.md', 'docs/history.md', 'docs/publishing.md']) {
      assert.ok(files.has(file), `the tarball has ${file}`);
    }
    assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('dist/bench/') || f.startsWith('dist/docs-snippets')), 'no tests or benchmarks in the tarball');

    const app = join(dir, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', version: '1.0.0', private: true }));
    await run(npm, ['install', '--offline', '--no-package-lock', join(dir, info.filename)], app, 90_000);

    await writeFile(join(app, 'esm.mjs'), [
      `import { bayeux, BayeuxError } from 'express-bayeux';`,
      `import { BayeuxClient } from 'express-bayeux/client';`,
      `const cometd = bayeux();`,
      `if (typeof cometd !== 'function' || typeof cometd.attach !== 'function') throw new Error('bayeux() is not a middleware');`,
      `if (typeof BayeuxClient !== 'function' || typeof BayeuxError !== 'function') throw new Error('missing exports');`,
      // Loading the Redis engine reads its .lua files (the redis client itself is loaded only when an engine opens).
      `const { RedisEngine } = await import('express-bayeux/redis');`,
      `if (typeof RedisEngine !== 'function') throw new Error('express-bayeux/redis lacks RedisEngine');`,
      `await cometd.close();`,
      `console.log('esm ok');`,
    ].join('\n'));
    await writeFile(join(app, 'cjs.cjs'), [
      `const { bayeux } = require('express-bayeux');`,
      `const { BayeuxClient } = require('express-bayeux/client');`,
      `if (typeof bayeux !== 'function' || typeof BayeuxClient !== 'function') throw new Error('require() lacks the exports');`,
      `console.log('cjs ok');`,
    ].join('\n'));
    assert.match((await run(process.execPath, ['esm.mjs'], app)).stdout, /esm ok/);
    assert.match((await run(process.execPath, ['cjs.cjs'], app)).stdout, /cjs ok/);

    const help = await run('npx', ['--offline', '--no-install', 'express-bayeux', '--help'], app);
    assert.match(help.stdout, /Usage: express-bayeux <command>/);
    assert.match(help.stdout, /\bserve\b/);

    // The types, as a TypeScript user gets them: an ES module and a CommonJS file under `module: nodenext`.
    await writeFile(join(app, 'types.mts'), [
      `import { bayeux, type BayeuxMiddleware } from 'express-bayeux';`,
      `import { BayeuxClient } from 'express-bayeux/client';`,
      `import type { RedisEngine } from 'express-bayeux/redis';`,
      `const cometd: BayeuxMiddleware = bayeux({ timeout: 30_000 });`,
      `const client = new BayeuxClient('http://127.0.0.1:8080/cometd');`,
      `export type T = [typeof cometd, typeof client, RedisEngine | undefined];`,
    ].join('\n'));
    await writeFile(join(app, 'types.cts'), [
      `import { bayeux } from 'express-bayeux';`,
      `export const cometd = bayeux();`,
    ].join('\n'));
    await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--skipLibCheck',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
      '--types', 'node', '--typeRoots', join(root, 'node_modules', '@types'), 'types.mts', 'types.cts'], app);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
