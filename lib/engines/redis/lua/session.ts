/**
 * The session scripts (see prelude.ts for the keys and statuses). Each
 * touches the keys of one session bucket only, so it runs on Redis
 * Cluster, and costs O(1) apart from the state returned on adoption.
 */
import { int, list, text, texts } from '../replies.js';
import { Gone, SessionStatus } from './contract.js';
import { readLua } from './files.js';

/** ARGV: nodech, id, ack, ttl, node, dataSize, [key, value, size]... → 1 created, 0 id taken (sizes in JS characters) */
export const CREATE = readLua('create');

/** ARGV: nodech, id → status */
export const EXISTS = readLua('exists');

/**
 * Touch (ttl a number) or adopt (ttl '-'): this node becomes the session's
 * holder. When the holder changes the generation grows and the old holder
 * is told to forget its copy. ARGV: nodech, id, ttl, node, full ('1': send
 * the state even if this node already held it), most subscriptions sent
 * inline (beyond it, false: the caller pages through them) →
 * { status, gen[, ack, batch, bp, bs, { pattern, acked }..., { pattern, sent }...] }
 */
export const TOUCH_OR_ADOPT = readLua('touch-or-adopt');

/** ARGV: nodech, id → status (1 or 2: destroyed; 2 with subscriptions to clean) */
export const DESTROY = readLua('destroy');

/**
 * Step 1 of subscribe. ARGV: nodech, id, pattern, max ('' none) →
 * 1 may subscribe, 3 already subscribed, 4 limit reached, or a status ≤ 0
 */
export const SUBSCRIBE_CHECK = readLua('subscribe-check');

/**
 * Step 3 of subscribe, after the pattern's subscriber set took the id.
 * ARGV: nodech, id, pattern, position, max, node → { status (1, 4 limit), added, gen }
 */
export const SUBSCRIBE_COMMIT = readLua('subscribe-commit');

/** ARGV: nodech, id, pattern, node → { status, removed } */
export const UNSUBSCRIBE = readLua('unsubscribe');

/** ARGV: nodech, id, cursor, count → { status, cursor, patterns } (HSCAN: never blocks for long) */
export const SUBSCRIPTIONS = readLua('subscriptions');

/**
 * ARGV: nodech, id, message, maxlen ('' none), node, maxbytes ('' none) →
 * { status, stream id, previous stream id, 1 if \`node\` holds it }; another
 * holder is told. The box is trimmed exactly, oldest first, to maxlen
 * entries and maxbytes bytes (the message plus 100 per entry); the newest
 * stays.
 */
export const DELIVER = readLua('deliver');

/**
 * Record what a take on the holder did. ARGV: nodech, id, gen, batch ('-'
 * unchanged), then triples (kind 'a' acked | 's' sent, pattern ('' the
 * box), position) → status (3: another node adopted the session since)
 */
export const RECORD_TAKE = readLua('record-take');

/**
 * Positions of many sessions, written lazily after takes without acks
 * (WebSocket pushes). KEYS: bucket bases, one on Redis Cluster (one slot
 * per script), all of them on a single Redis. ARGV: nodech, then for each
 * session: its bucket's index in KEYS, id, gen, n, then n pairs (pattern
 * ('' the box), position). A session gone or taken over by another node
 * is skipped. → number written
 */
export const POSITIONS = readLua('positions');

/** ARGV: nodech, limit → { id, status }... for the sessions this call expired */
export const SWEEP = readLua('sweep');

/** ARGV: nodech → { live sessions, subscriptions } of this bucket */
export const STATS = readLua('stats');

/** ARGV: nodech, id, key → { status, value or false } */
export const DATA_GET = readLua('data-get');

/**
 * ARGV: nodech, id, key, value, delete ('1'), max ('' none), size (key
 * plus value in JS characters) → status (4: over max, nothing changed)
 */
export const DATA_SET = readLua('data-set');

/** ARGV: nodech, id → { status, { key, value }... } */
export const DATA_ALL = readLua('data-all');

/**
 * A page of the bucket's sessions and the patterns each subscribes to,
 * to put them back in the patterns' subscriber sets after a shard lost
 * its data (markers.ts). ARGV: nodech, cursor, count →
 * { cursor, id, { pattern... }, id, { pattern... }, ... }
 */
export const RESTORE_SCAN = readLua('restore-scan');

// ---------------------------------------------------------------------------
// The TypeScript side of each script: its statuses (every meaning its own
// name; the values are the wire values), the ARGV it takes after nodech
// and id (`RedisEngine.#session` adds those two), and its reply, parsed.
// ---------------------------------------------------------------------------

/** CREATE's reply. */
export const CreateStatus = { Created: 1, IdTaken: 0 } as const;
export type CreateStatus = (typeof CreateStatus)[keyof typeof CreateStatus];

/** CREATE's full ARGV (it takes nodech and id itself: it runs before the session exists). */
export function createArgs(nodech: string, id: string, ack: boolean, ttl: number, node: string, dataSize: number, user: string | undefined, data: readonly string[]): string[] {
  return [nodech, id, ack ? '1' : '0', String(ttl), node, String(dataSize), user ?? '', ...data];
}

export function parseCreate(reply: unknown): CreateStatus {
  return int(reply) === CreateStatus.Created ? CreateStatus.Created : CreateStatus.IdTaken;
}

/** A status a session script answers alone (EXISTS, or the `{ gone }` of the others). */
export function parseStatus(reply: unknown): SessionStatus {
  return int(reply) as SessionStatus;
}

/** TOUCH_OR_ADOPT: `ttl` in ms, or `'-'` to adopt without moving the deadline. */
/** @param seenPrefix with shard logs, the prefix of the nodes' seen keys (`Keys.seenPrefix`); '' without. */
export function touchOrAdoptArgs(ttl: string, node: string, full: boolean, inlineMax: number, seenPrefix = ''): string[] {
  return [ttl, node, full ? '1' : '0', String(inlineMax), seenPrefix];
}

/** What an adopting or full TOUCH_OR_ADOPT returns besides the generation: the session's state. */
export interface TouchState {
  readonly ack: boolean;
  readonly batch: number;
  readonly boxAcked: string;
  readonly boxSent: string;
  /** pattern → acked position; undefined when there were too many to send inline (scan `:subs`). */
  readonly subs: ReadonlyArray<readonly [string, string]> | undefined;
  /** pattern → sent position; undefined when not inline (scan `:sent`). */
  readonly sent: ReadonlyArray<readonly [string, string]> | undefined;
}

export interface TouchOrAdoptReply {
  readonly status: SessionStatus;
  /** The holder's generation (0 when not live). */
  readonly gen: number;
  /** Present when the caller was not the holder, or asked for it (`full`). */
  readonly state: TouchState | undefined;
}

export function parseTouchOrAdopt(value: unknown): TouchOrAdoptReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  if (status !== SessionStatus.Live) return { status, gen: 0, state: undefined };
  const gen = int(r[1]);
  if (r.length <= 2) return { status, gen, state: undefined };
  return {
    status,
    gen,
    state: {
      ack: text(r[2]) === '1',
      batch: int(r[3]),
      boxAcked: text(r[4]),
      boxSent: text(r[5]),
      subs: Array.isArray(r[6]) ? pairs(r[6]) : undefined,
      sent: Array.isArray(r[7]) ? pairs(r[7]) : undefined,
    },
  };
}

/** DESTROY's reply. */
export const DestroyStatus = { Destroyed: 1, DestroyedWithGrave: 2, ...Gone } as const;
export type DestroyStatus = (typeof DestroyStatus)[keyof typeof DestroyStatus];

export function parseDestroy(reply: unknown): DestroyStatus {
  return int(reply) as DestroyStatus;
}

/** SUBSCRIBE_CHECK's reply. */
export const SubscribeCheckStatus = { May: 1, AlreadySubscribed: 3, Limit: 4, ...Gone } as const;
export type SubscribeCheckStatus = (typeof SubscribeCheckStatus)[keyof typeof SubscribeCheckStatus];

export function subscribeCheckArgs(pattern: string, max: string): string[] {
  return [pattern, max];
}

export function parseSubscribeCheck(reply: unknown): SubscribeCheckStatus {
  return int(reply) as SubscribeCheckStatus;
}

/** SUBSCRIBE_COMMIT's status. */
export const SubscribeCommitStatus = { Done: 1, Limit: 4, ...Gone } as const;
export type SubscribeCommitStatus = (typeof SubscribeCommitStatus)[keyof typeof SubscribeCommitStatus];

/** @param seenPrefix with shard logs, the prefix of the nodes' seen keys (`Keys.seenPrefix`); '' without. */
export function subscribeCommitArgs(pattern: string, position: string, max: string, node: string, seenPrefix = ''): string[] {
  return [pattern, position, max, node, seenPrefix];
}

export interface SubscribeCommitReply {
  readonly status: SubscribeCommitStatus;
  /** The subscription is new (false: it was already there). */
  readonly added: boolean;
  /** The holder's generation when added (0 otherwise). */
  readonly gen: number;
}

export function parseSubscribeCommit(value: unknown): SubscribeCommitReply {
  const r = list(value);
  const status = int(r[0]) as SubscribeCommitStatus;
  const added = status === SubscribeCommitStatus.Done && int(r[1]) === 1;
  return { status, added, gen: added ? int(r[2]) : 0 };
}

export function unsubscribeArgs(pattern: string, node: string): string[] {
  return [pattern, node];
}

export interface UnsubscribeReply {
  readonly status: SessionStatus;
  /** The session was subscribed. */
  readonly removed: boolean;
}

export function parseUnsubscribe(value: unknown): UnsubscribeReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  return { status, removed: status === SessionStatus.Live && int(r[1]) === 1 };
}

export function subscriptionsArgs(cursor: string, count: number): string[] {
  return [cursor, String(count)];
}

export interface SubscriptionsReply {
  readonly status: SessionStatus;
  /** '0' when the scan is done. */
  readonly cursor: string;
  readonly patterns: string[];
}

export function parseSubscriptions(value: unknown): SubscriptionsReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  if (status !== SessionStatus.Live) return { status, cursor: '0', patterns: [] };
  return { status, cursor: text(r[1]), patterns: texts(r[2]) };
}

export function deliverArgs(message: string, maxlen: string, node: string, maxbytes: string): string[] {
  return [message, maxlen, node, maxbytes];
}

export interface DeliverReply {
  readonly status: SessionStatus;
  /** The box entry's stream id. */
  readonly id: string;
  /** The box's last entry before it. */
  readonly prev: string;
  /** The caller holds the session (else the holder was told). */
  readonly held: boolean;
}

export function parseDeliver(value: unknown): DeliverReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  if (status !== SessionStatus.Live) return { status, id: '', prev: '', held: false };
  return { status, id: text(r[1]), prev: text(r[2]), held: int(r[3]) === 1 };
}

/** RECORD_TAKE's reply. */
export const RecordTakeStatus = { Recorded: 1, StaleGeneration: 3, ...Gone } as const;
export type RecordTakeStatus = (typeof RecordTakeStatus)[keyof typeof RecordTakeStatus];

/** RECORD_TAKE: `writes` are triples (PositionKind, source ('' the box), position). */
export function recordTakeArgs(gen: number, batch: number | undefined, writes: readonly string[]): string[] {
  return [String(gen), batch === undefined ? '-' : String(batch), ...writes];
}

export function parseRecordTake(reply: unknown): RecordTakeStatus {
  return int(reply) as RecordTakeStatus;
}

/**
 * What POSITIONS does with a session's field `sn` (whose seen applies to
 * its channels): nothing, set it to the writing node (join), or remove it
 * after the session's own positions are written (leave).
 */
export const SeenMark = { None: '', Join: 'j', Leave: 'l' } as const;
export type SeenMark = (typeof SeenMark)[keyof typeof SeenMark];

/** A join's mark: with the number of subscriptions the node knows of (POSITIONS joins only if Redis has as many). */
export function joinMark(subscriptions: number): string {
  return `${SeenMark.Join}${subscriptions}`;
}

/** A node's seen, written by POSITIONS after its sessions: the key, the shard position, its ttl (ms). */
export interface SeenWrite {
  readonly key: string;
  readonly position: string;
  readonly ttl: number;
}

/** POSITIONS's ARGV before the sessions (no session id); {@link pushPositions} adds each. */
export function positionsArgs(nodech: string, node = '', seen?: SeenWrite): string[] {
  return [nodech, node, seen?.key ?? '', seen?.position ?? '', seen ? String(seen.ttl) : ''];
}

/** Make POSITIONS's ARGV (from {@link positionsArgs}) write the node's seen after its sessions. */
export function setPositionsSeen(args: string[], seen: SeenWrite): void {
  args.splice(2, 3, seen.key, seen.position, String(seen.ttl));
}

/** One session's ARGV for POSITIONS: its bucket's index in KEYS (1-based), id, gen, seen mark, then its (source, position) pairs. */
export function pushPositions(args: string[], keyIndex: number, id: string, gen: number, positions: ReadonlyMap<string, string>, mark: string = SeenMark.None): void {
  args.push(String(keyIndex), id, String(gen), mark, String(positions.size));
  for (const [src, position] of positions) args.push(src, position);
}

/** POSITIONS's reply: how many sessions it wrote (the others were gone or taken over). */
export function parsePositions(reply: unknown): number {
  return int(reply);
}

/** SWEEP's full ARGV (no session id). */
export function sweepArgs(nodech: string, limit: number): string[] {
  return [nodech, String(limit)];
}

export interface SweptSession {
  readonly id: string;
  /** Subscriptions are left in the grave to remove. */
  readonly grave: boolean;
}

export function parseSweep(value: unknown): SweptSession[] {
  const flat = texts(value);
  const swept: SweptSession[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) swept.push({ id: flat[i] as string, grave: Number(flat[i + 1]) === Gone.ExpiredWithGrave });
  return swept;
}

export interface BucketStats {
  readonly sessions: number;
  readonly subscriptions: number;
}

export function parseStats(value: unknown): BucketStats {
  const [sessions, subscriptions] = list(value);
  return { sessions: int(sessions), subscriptions: int(subscriptions ?? 0) };
}

export function dataGetArgs(key: string): string[] {
  return [key];
}

export interface DataGetReply {
  readonly status: SessionStatus;
  /** undefined when the key is not set. */
  readonly value: string | undefined;
}

export function parseDataGet(value: unknown): DataGetReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  const v = r[1];
  return { status, value: status !== SessionStatus.Live || v === null || v === undefined || v === false ? undefined : text(v) };
}

/** DATA_SET's reply. */
export const DataSetStatus = { Set: 1, OverMax: 4, ...Gone } as const;
export type DataSetStatus = (typeof DataSetStatus)[keyof typeof DataSetStatus];

/** DATA_SET: `value` undefined deletes the key; `size` is key plus value in JS characters. */
export function dataSetArgs(key: string, value: string | undefined, max: string, size: number): string[] {
  return [key, value ?? '', value === undefined ? '1' : '0', max, String(size)];
}

export function parseDataSet(reply: unknown): DataSetStatus {
  return int(reply) as DataSetStatus;
}

export interface DataAllReply {
  readonly status: SessionStatus;
  readonly data: Map<string, string>;
}

export function parseDataAll(value: unknown): DataAllReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  const data = new Map<string, string>();
  if (status !== SessionStatus.Live) return { status, data };
  const flat = texts(r[1]);
  for (let i = 0; i + 1 < flat.length; i += 2) data.set(flat[i] as string, flat[i + 1] as string);
  return { status, data };
}

/** RESTORE_SCAN's full ARGV (no session id). */
export function restoreScanArgs(nodech: string, cursor: string, count: number): string[] {
  return [nodech, cursor, String(count)];
}

export interface RestoreScanReply {
  /** '0' when the scan is done. */
  readonly cursor: string;
  readonly sessions: ReadonlyArray<{ readonly id: string; readonly patterns: string[] }>;
}

export function parseRestoreScan(value: unknown): RestoreScanReply {
  const r = list(value);
  const sessions: Array<{ id: string; patterns: string[] }> = [];
  for (let i = 1; i + 1 < r.length; i += 2) sessions.push({ id: text(r[i]), patterns: texts(r[i + 1]) });
  return { cursor: text(r[0]), sessions };
}

/** A hash's flat fields and values as pairs. */
export function pairs(value: unknown): Array<[string, string]> {
  const flat = value === undefined ? [] : texts(value);
  const result: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) result.push([flat[i] as string, flat[i + 1] as string]);
  return result;
}
