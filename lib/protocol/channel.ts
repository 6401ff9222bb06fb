/**
 * Channel names, one grammar for the server and the client (both entry
 * points export these, and give the same answer for every name).
 *
 * A channel is `/` followed by one or more segments separated by `/`. A
 * segment is letters, digits and `- _ ! ~ ( ) $ @ .`. The last segment of a
 * subscription pattern may instead be `*` (exactly one segment) or `**` (one
 * or more segments). Names are at most 1,024 characters.
 *
 * Imports nothing: the browser bundle uses this file as it is.
 */

const SEGMENT = /^[A-Za-z0-9\-_!~()$@.]+$/;

/** Longest channel name or pattern accepted, in characters. */
export const MAX_CHANNEL_LENGTH = 1024;

/** True when `name` is a channel name or a subscription pattern (`/a/*`, `/a/**`). */
export function isValidPattern(name: unknown): name is string {
  if (typeof name !== 'string' || name.length < 2 || name.length > MAX_CHANNEL_LENGTH) return false;
  if (name.charCodeAt(0) !== 47 /* / */) return false;
  const segments = name.slice(1).split('/');
  const last = segments.length - 1;
  for (let i = 0; i <= last; i++) {
    const segment = segments[i] as string;
    if (SEGMENT.test(segment)) continue;
    if (i === last && (segment === '*' || segment === '**')) continue;
    return false;
  }
  return true;
}

/** True when `name` is a channel name: a valid name with no wildcard. */
export function isValidChannel(name: unknown): name is string {
  return isValidPattern(name) && !isWildcard(name);
}

/** True for `/a/*` and `/a/**` (the name is assumed valid). */
export function isWildcard(name: string): boolean {
  return name.endsWith('/*') || name.endsWith('/**');
}

/** True for `/meta` and anything under `/meta/`. */
export function isMeta(name: string): boolean {
  return name === '/meta' || name.startsWith('/meta/');
}

/** True for `/service` and anything under `/service/`. */
export function isService(name: string): boolean {
  return name === '/service' || name.startsWith('/service/');
}

/** A channel a client can publish to: a valid name, not a wildcard, not under `/meta/`. */
export function isPublishable(name: unknown): name is string {
  return isValidChannel(name) && !isMeta(name);
}

/**
 * True when subscription `pattern` matches `channel`: equal names, `/a/*`
 * for exactly one more segment, `/a/**` for one or more.
 */
export function channelMatches(pattern: string, channel: string): boolean {
  if (pattern === channel) return true;
  if (pattern.endsWith('/**')) {
    const base = pattern.slice(0, -2);
    return channel.length > base.length && channel.startsWith(base);
  }
  if (pattern.endsWith('/*')) {
    const base = pattern.slice(0, -1);
    return channel.length > base.length && channel.startsWith(base) && !channel.includes('/', base.length);
  }
  return false;
}

/**
 * True when some channel matches both patterns (either may be a plain
 * channel). Message middleware scoped to a pattern uses it for
 * subscriptions, so that `/**` cannot slip past a layer on `/private/**`.
 */
export function overlaps(a: string, b: string): boolean {
  const x = a.slice(1).split('/');
  const y = b.slice(1).split('/');
  for (let i = 0; ; i++) {
    const s = x[i];
    const t = y[i];
    if (s === undefined || t === undefined) return s === t;
    // `**` matches one or more segments from here on, whatever the other has.
    if (s === '**' || t === '**') return true;
    if (s === '*' || t === '*' || s === t) continue;
    return false;
  }
}
