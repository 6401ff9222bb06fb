/** Scans: how much one call reads, and how many calls one operation makes at most. */

/** Entries per scan call or paging script (HSCAN, SSCAN, ZSCAN, SUBSCRIPTIONS, RESTORE_SCAN; subscriptions inline in TOUCH_OR_ADOPT): no command holds Redis for long. */
export const PAGE = 500;
/** Bound on pages read by one operation (PAGE × this entries). */
export const MAX_PAGES = 100_000;
