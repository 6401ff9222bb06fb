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
  session(id: string): string {
    return this.#buckets[bucketOf(id)] as string;
  }

  /** Every bucket's base. */
  buckets(): readonly string[] {
    return this.#buckets;
  }

  /** The base of a pattern's keys, and its notification channel. */
  pattern(pattern: string): string {
    return `${this.#prefix}{p:${pattern}}`;
  }

  /** The key of the session's subscriptions once it is gone (for chunked cleanup). */
  grave(id: string): string {
    return `${this.session(id)}:dead:${id}`;
  }

  nodeChannel(nodeId: string): string {
    return this.nodeChannelPrefix + nodeId;
  }
}

/** Compare two stream ids (`<ms>-<seq>`): negative, zero or positive. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const da = a.indexOf('-');
  const db = b.indexOf('-');
  const ma = da < 0 ? a : a.slice(0, da);
  const mb = db < 0 ? b : b.slice(0, db);
  if (ma.length !== mb.length) return ma.length - mb.length;
  if (ma !== mb) return ma < mb ? -1 : 1;
  const sa = da < 0 ? '0' : a.slice(da + 1);
  const sb = db < 0 ? '0' : b.slice(db + 1);
  if (sa.length !== sb.length) return sa.length - sb.length;
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}
