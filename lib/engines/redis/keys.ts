/**
 * Key and channel names, and stream ids.
 *
 * Sessions are spread over {@link BUCKETS} hash slots by a hash of their
 * id (`<prefix>{s<k>}`): a bucket holds its sessions' keys, their expiry
 * index and their counts, so every session script touches one slot. Each
 * subscription pattern has a slot of its own (`<prefix>{p:<pattern>}`).
 */

/** How many hash slots the sessions are spread over. */
export const BUCKETS = 16;

/** FNV-1a of the id, modulo {@link BUCKETS}. */
export function bucketOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BUCKETS;
}

export class Keys {
  readonly #prefix: string;
  readonly #buckets: string[];
  /** Pub/Sub channels of the nodes start with this. */
  readonly nodeChannelPrefix: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.#buckets = Array.from({ length: BUCKETS }, (_, k) => `${prefix}{s${k}}`);
    this.nodeChannelPrefix = `${prefix}node:`;
  }

  /** The base of the bucket that holds `id`'s keys. */
  bucket(id: string): string {
    return this.#buckets[bucketOf(id)] as string;
  }

  /** Every bucket's base. */
  buckets(): readonly string[] {
    return this.#buckets;
  }

  /** The base of a pattern's keys, and its notification channel. */
  patternBase(pattern: string): string {
    return `${this.#prefix}{p:${pattern}}`;
  }

  /** The pattern whose base (and announcement channel) `base` is; undefined for anything else. */
  patternOf(base: string): string | undefined {
    const prefix = this.#prefix;
    if (base.length < prefix.length + 4 || !base.startsWith(prefix) || !base.startsWith('{p:', prefix.length) || !base.endsWith('}')) return undefined;
    return base.slice(prefix.length + 3, -1);
  }

  /**
   * The base of the shard log every channel is logged in (`channelLogs:
   * 'shard'`), and its announcement channel: one shard on a single Redis.
   */
  shardBase(): string {
    return `${this.#prefix}{t0}`;
  }

  /**
   * The prefix of the nodes' seen keys (`{t0}:seen:<node>`): with shard
   * logs, the shard position every session a node pushes to lazily had
   * when the node last wrote it (see `positions.ts`).
   */
  seenPrefix(): string {
    return `${this.#prefix}{t0}:seen:`;
  }

  /** The key prefix (a shard script builds a channel's subscriber set's name from it to count). */
  get prefix(): string {
    return this.#prefix;
  }

  /** The key of the session's subscriptions once it is gone (for chunked cleanup). */
  grave(id: string): string {
    return `${this.bucket(id)}:dead:${id}`;
  }

  /** The hash of the nodes' reports (node id → JSON), for `nodes()`. */
  nodes(): string {
    return `${this.#prefix}{nodes}`;
  }

  nodeChannel(nodeId: string): string {
    return this.nodeChannelPrefix + nodeId;
  }

  /** A data-loss marker (markers.ts); `n` picks its slot. */
  marker(n: number): string {
    return `${this.#prefix}{mk${n}}`;
  }
}

/** CRC16-CCITT (XMODEM), as Redis Cluster hashes keys. */
const CRC16 = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

/** The Redis Cluster slot of a key: its hash tag (`{…}`, when non-empty) or the whole key, in UTF-8. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed, 'utf8')) crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ byte) & 0xff] as number);
  return crc & 16383;
}

/**
 * Compare two stream ids (`<ms>-<seq>`, a missing seq counting as 0):
 * negative, zero or positive. It runs once per session for every message a
 * node fans out, so it compares in place, without slicing the strings.
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const ma = da < 0 ? a.length : da;
  const mb = db < 0 ? b.length : db;
  if (ma !== mb) return ma - mb;
  const ms = compareDigits(a, 0, b, 0, ma);
  if (ms !== 0) return ms;
  const sa = da < 0 ? 0 : a.length - da - 1;
  const sb = db < 0 ? 0 : b.length - db - 1;
  // A missing seq is 0: shorter digit strings are smaller (ids have no leading zeros).
  if (sa === 0 && sb === 0) return 0;
  if (sa === 0) return b.charCodeAt(db + 1) === 48 /* '0' */ && sb === 1 ? 0 : -1;
  if (sb === 0) return a.charCodeAt(da + 1) === 48 && sa === 1 ? 0 : 1;
  if (sa !== sb) return sa - sb;
  return compareDigits(a, da + 1, b, db + 1, sa);
}

function compareDigits(a: string, i: number, b: string, j: number, n: number): number {
  for (let k = 0; k < n; k++) {
    const d = a.charCodeAt(i + k) - b.charCodeAt(j + k);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * A stream id with its two numbers read once (exact below 2^53, which ids
 * Redis makes with `*` stay under), so a node that hands one entry to many
 * sessions compares numbers, not text, for each of them.
 */
export interface Position {
  readonly id: string;
  readonly ms: number;
  readonly seq: number;
}

/** The position of a stream id (`<ms>-<seq>`, a missing seq counting as 0). */
export function positionOf(id: string): Position {
  const dash = id.indexOf('-');
  if (dash < 0) return { id, ms: Number(id) || 0, seq: 0 };
  return { id, ms: Number(id.slice(0, dash)) || 0, seq: Number(id.slice(dash + 1)) || 0 };
}

/**
 * Positions in a shard log (`channelLogs: 'shard'`). One stream entry holds
 * a tick's publishes (at most 100, `MAX_BATCH`); each publish gets a
 * position of its own, so a session's position may fall inside an entry:
 * the entry's id with its seq times {@link SHARD_SPAN}, plus the
 * publish's place counted so that the entry's last publish is at
 * `SHARD_SPAN - 1`. So an entry's last publish and the entry itself have
 * one position ({@link shardEnd}), and positions order as the publishes
 * do. Positions stay below 2^53 while a millisecond holds fewer than
 * 2^43 entries.
 */
export const SHARD_SPAN = 1024;

/** The position of the publish at `index` of `count` in the shard entry `entry`. */
export function shardPosition(entry: string, index: number, count: number): string {
  const dash = entry.indexOf('-');
  const seq = dash < 0 ? 0 : Number(entry.slice(dash + 1)) || 0;
  return `${dash < 0 ? entry : entry.slice(0, dash)}-${seq * SHARD_SPAN + SHARD_SPAN - count + index}`;
}

/** The position of a shard entry's last publish: where a reader that applied the entry is ('0-0' stays '0-0': nothing yet). */
export function shardEnd(entry: string): string {
  return entry === '0-0' ? entry : shardPosition(entry, 0, 1);
}

/** The shard entry a position falls in (read from it, inclusive, to resume after the position). */
export function shardEntryOf(position: string): string {
  const dash = position.indexOf('-');
  if (dash < 0) return position;
  return `${position.slice(0, dash)}-${Math.floor((Number(position.slice(dash + 1)) || 0) / SHARD_SPAN)}`;
}

/** Whether `a` comes after `b` in a stream. */
export function isAfter(a: Position, b: Position): boolean {
  return a.ms > b.ms || (a.ms === b.ms && a.seq > b.seq);
}
