/** Reading Redis replies and errors; keeping credentials out of messages. */
import { ErrorReply } from 'redis';

/** Errors Redis answers with that mean "not now" rather than "wrong". */
export const TRANSIENT_REPLIES = new Set([
  'LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'OOM',
  'NOAUTH', 'WRONGPASS', 'NOPERM', 'NOREPLICAS', 'MISCONF', 'UNBLOCKED', 'MOVED', 'ASK',
]);

export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

export function int(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(text(value));
  if (!Number.isFinite(n)) throw new Error(`Redis engine: unexpected reply ${text(value)}`);
  return n;
}

export function list(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error('Redis engine: unexpected reply, not an array');
  return value;
}

export function texts(value: unknown): string[] {
  return list(value).map(text);
}

/** `url` with its password replaced by `***`; never the password itself. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable Redis URL>';
  }
}

/** The password of a URL, as written and decoded, to scrub from messages. */
export function passwordOf(url: string): string[] {
  try {
    const { password } = new URL(url);
    if (!password) return [];
    const decoded = decodeURIComponent(password);
    return decoded === password ? [password] : [password, decoded];
  } catch {
    return [];
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export function isErrorReply(err: unknown): err is Error {
  if (err instanceof ErrorReply) return true;
  // A client from another copy of the package.
  const name = (err as { constructor?: { name?: string } } | null)?.constructor?.name;
  return name === 'ErrorReply' || name === 'SimpleError' || name === 'BlobError';
}
