/**
 * Run a Redis test file a second time on node-redis v5, the oldest major
 * in the peer range (`redis` ^5.6.0 || ^6.0.0; the dev dependency is the
 * newest, v6). Each `test/redis-v5-*.test.ts` is one line:
 *
 *   await onRedis5('./engine-redis.test.js', import.meta.url);
 *
 * It registers the resolve hook (`redis` → the `redis5` alias) in this
 * process and, through NODE_OPTIONS, in the processes the tests fork
 * (helpers/redis-node.ts), checks that `redis` now resolves to v5, and
 * imports the test file, whose tests then run in this file's process as
 * if they were its own. `npm test` runs both files: one command, one
 * summary.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The major of node-redis that the specifier `redis` resolves to from here. */
export function redisMajor(): number {
  const main = fileURLToPath(import.meta.resolve('redis'));
  const at = main.lastIndexOf('/node_modules/');
  const dir = main.slice(0, main.indexOf('/', at + '/node_modules/'.length));
  const version = (JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { version: string }).version;
  return Number(version.split('.')[0]);
}

export async function onRedis5(file: string, from: string): Promise<void> {
  register('./redis-v5-hooks.js', import.meta.url);
  const loader = fileURLToPath(new URL('./redis-v5-register.js', import.meta.url));
  process.env['NODE_OPTIONS'] = `${process.env['NODE_OPTIONS'] ?? ''} --import=${loader}`.trim();
  assert.equal(redisMajor(), 5, 'redis resolves to node-redis v5 (the redis5 alias)');
  await import(new URL(file, from).href);
}
