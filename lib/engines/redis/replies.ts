/**
 * Reading Redis replies and errors (URL redaction is in redact.ts).
 *
 * Every major of node-redis in the peer range is read alike: v5 speaks
 * RESP2 by default, v6 RESP3, where a hash (`HGETALL`) comes as a map
 * (an object, or a `Map` with a type mapping), a verbatim string (`INFO`)
 * as a `String` object and a script's `false` as a boolean. An error
 * reply is recognised whichever copy of the package made the client.
 */

/** Errors Redis answers with that mean "not now" rather than "wrong". */
export const TRANSIENT_REPLIES = new Set([
  'LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'OOM',
  'NOAUTH', 'WRONGPASS', 'NOPERM', 'NOREPLICAS', 'MISCONF', 'UNBLOCKED', 'MOVED', 'ASK',
]);

export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  // A RESP3 verbatim string (v6: a String object with a format) reads as its text.
  return String(value);
}

export function int(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(text(value));
  if (!Number.isFinite(n)) throw new Error(`Redis engine: unexpected reply ${text(value)}`);
  return n;
}

/**
 * An array reply. A RESP3 map (a hash's fields, as v6 answers `HGETALL`)
 * comes as its RESP2 form, `[field, value, ...]`, so one parser reads both.
 */
export function list(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value instanceof Map) {
    const flat: unknown[] = [];
    for (const [k, v] of value) flat.push(k, v);
    return flat;
  }
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof String)) {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto === Object.prototype || proto === null) {
      const flat: unknown[] = [];
      for (const [k, v] of Object.entries(value)) flat.push(k, v);
      return flat;
    }
  }
  throw new Error(`Redis engine: unexpected reply, not an array (${value === null ? 'null' : typeof value})`);
}

export function texts(value: unknown): string[] {
  return list(value).map(text);
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** Names of node-redis's error-reply classes (v5 and v6), and of their subclasses seen so far. */
const ERROR_REPLY_NAMES = new Set(['ErrorReply', 'SimpleError', 'BlobError', 'MultiErrorReply']);

export function isErrorReply(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  // By name, anywhere in its class chain: the client may come from another copy or major of the package (a v5 client
  // given to an engine built on v6), and the engine does not import node-redis until it makes a client of its own.
  let proto = Object.getPrototypeOf(err) as { constructor?: { name?: string } } | null;
  for (let depth = 0; proto && proto !== Error.prototype && depth < 8; depth++) {
    if (ERROR_REPLY_NAMES.has(proto.constructor?.name ?? '')) return true;
    proto = Object.getPrototypeOf(proto) as { constructor?: { name?: string } } | null;
  }
  return false;
}
