// Build step, after tsc: copy the Lua scripts (lib/**/*.lua, today the
// Redis engine's lua/scripts/) to the same place under dist/lib, where the
// compiled modules read them when they load. tsc copies only what it
// compiles; `build`, `prepack` and the bench scripts run this after it.
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../lib/', import.meta.url));
const to = fileURLToPath(new URL('../dist/lib/', import.meta.url));
let copied = 0;
for (const path of await readdir(from, { recursive: true })) {
  if (!path.endsWith('.lua')) continue;
  await mkdir(dirname(join(to, path)), { recursive: true });
  await copyFile(join(from, path), join(to, path));
  copied++;
}
if (copied === 0) throw new Error(`copy-lua: no .lua file under ${from}`);
