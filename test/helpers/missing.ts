/**
 * One rule for tests that need a program npm does not bring (redis-server,
 * haproxy, nginx, Chromium): on a developer's machine without it they are
 * skipped, loudly; in CI (`CI` set, as `.ci/run` runs) a missing program is
 * a defect of the set-up, so the test file fails instead of skipping.
 */

/** `false` when `present`; otherwise the skip reason (or, in CI, an error). */
export function skipWithout(present: unknown, what: string, install: string): string | false {
  if (present) return false;
  const reason = `${what} not installed: these tests are SKIPPED (${install})`;
  if (process.env['CI']) throw new Error(`${what} not installed, and CI must run every test: ${install}`);
  const line = '!'.repeat(reason.length + 8);
  process.stderr.write(`\n${line}\n!!! ${reason} !!!\n${line}\n\n`);
  return reason;
}
