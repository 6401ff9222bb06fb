// Build step: remove the compiled package before a release build, so no
// output of a deleted source file is packed.
import { rm } from 'node:fs/promises';

for (const dir of ['../dist/lib', '../dist/browser']) {
  await rm(new URL(dir, import.meta.url), { recursive: true, force: true });
}
