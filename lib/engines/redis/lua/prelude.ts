import { readLua } from './files.js';

/**
 * Lua shared by the session scripts. Every session script runs on one
 * bucket's hash slot: KEYS[1] is the bucket's base (`<prefix>{s<k>}`), and
 * a session's keys are `<base>:<id>` (hash), `…:subs` (pattern → acked
 * log position), `…:sent` (pattern → sent position, acked sessions),
 * `…:box` (stream of messages delivered to it alone), `…:bi` (the box's
 * index: `<stream id> <bytes>` per entry, oldest first; their sum is the
 * hash's `bb`) and `…:data`.
 * ARGV[1] is the node channel prefix (`<prefix>node:`), ARGV[2] the id.
 *
 * Statuses: 1 live, 0 unknown, -1 expired by this script, -2 expired by
 * this script with subscriptions left in `<base>:dead:<id>` for the caller
 * to remove from the pattern sets in chunks (they live in other slots).
 */
export const SESSION_PRELUDE = readLua('session-prelude');
