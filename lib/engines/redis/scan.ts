/** Scans: how much one call reads, and how many calls one operation makes at most. */
import { list, text, texts } from './replies.js';
import type { Runner } from './runner.js';

/** Entries per scan call or paging script (HSCAN, SSCAN, ZSCAN, SUBSCRIPTIONS, RESTORE_SCAN; subscriptions inline in TOUCH_OR_ADOPT): no command holds Redis for long. */
export const PAGE = 500;
/** Bound on pages read by one operation (PAGE × this entries). */
export const MAX_PAGES = 100_000;

/** Every member of a set, a page at a time (SSCAN, read-only: a replica may answer). */
export async function scanSet(runner: Runner, key: string): Promise<string[]> {
  const members = new Set<string>();
  let cursor = '0';
  for (let page = 0; page < MAX_PAGES; page++) {
    const reply = list(await runner.command(key, ['SSCAN', key, cursor, 'COUNT', String(PAGE)], true));
    cursor = text(reply[0]);
    for (const member of texts(reply[1])) members.add(member);
    if (cursor === '0') break;
  }
  return [...members];
}
