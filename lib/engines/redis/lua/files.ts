/**
 * The Lua scripts' text, read once when the engine's modules load, from
 * `scripts/<name>.lua` beside this module: lib/engines/redis/lua/scripts/
 * in the sources, dist/lib/engines/redis/lua/scripts/ in a build and in
 * the package (`tsc` copies no `.lua` file: `npm run build` and `prepack`
 * run scripts/copy-lua.mjs after it).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The folder that holds the `.lua` files. */
export const LUA_DIR = new URL('./scripts/', import.meta.url);

/** The text of `scripts/<name>.lua`, as it is in the file. */
export function readLua(name: string): string {
  const file = new URL(`${name}.lua`, LUA_DIR);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`express-bayeux: cannot read the Redis engine's Lua script ${fileURLToPath(file)} (a build that did not run scripts/copy-lua.mjs?)`, { cause: err });
  }
}
