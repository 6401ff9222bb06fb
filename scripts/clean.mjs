// Build step: remove compiled output before a build, so nothing compiled
// from a deleted source file is packed or run (a deleted test would still
// be picked up by the test glob). `--all` also clears dist/test and
// dist/bench; without it only what a release packs is removed.
import { rm } from 'node:fs/promises';

const dirs = process.argv.includes('--all') ? ['../dist'] : ['../dist/lib', '../dist/browser'];
for (const dir of dirs) {
  await rm(new URL(dir, import.meta.url), { recursive: true, force: true });
}
