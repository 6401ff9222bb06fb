/**
 * Channel names: grammar, classification and wildcard expansion.
 *
 * A channel is `/` followed by one or more segments separated by `/`. A
 * segment is letters, digits and `- _ ! ~ ( ) $ @ .`. The last segment of a
 * subscription pattern may instead be `*` (exactly one segment) or `**` (one
 * or more segments).
 */
import { LRUCache } from 'lru-cache';

const SEGMENT = /^[A-Za-z0-9\-_!~()$@.]+$/;

/** Longest channel name accepted, in characters. */
export const MAX_CHANNEL_LENGTH = 1024;

/** True when `name` is a valid channel name or subscription pattern. */
export function isValidChannel(name: unknown): name is string {
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

/** True for `/a/*` and `/a/**`. */
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

/** A channel that can be published to: valid, not a wildcard, not `/meta/*`. */
export function isPublishable(name: unknown): name is string {
  return isValidChannel(name) && !isWildcard(name) && !isMeta(name);
}

/**
 * Expansions of recently published channels. Bounded in characters, not
 * entries: an expansion of an n-segment channel of length L holds about
 * n·L characters, so publishes to many long, deep channels cannot grow it
 * past about 2 MiB of text.
 */
const EXPANSION_CACHE_CHARS = 1 << 20;
const expansions = new LRUCache<string, readonly string[]>({
  maxSize: EXPANSION_CACHE_CHARS,
  sizeCalculation: function expansionSize(patterns, channel) {
    let size = channel.length;
    for (const p of patterns) size += p.length;
    return size;
  },
});

/**
 * The subscription patterns that match a (non-wildcard) channel:
 * `/a/b/c` → `/a/b/c`, `/a/b/*`, `/a/b/**`, `/a/**`, `/**`.
 * Results are cached and frozen; do not modify them.
 */
export function expand(channel: string): readonly string[] {
  const cached = expansions.get(channel);
  if (cached) return cached;
  const segments = channel.slice(1).split('/');
  const patterns: string[] = [channel];
  let prefix = '/' + segments.slice(0, -1).join('/');
  if (prefix !== '/') prefix += '/';
  patterns.push(prefix + '*');
  for (let n = segments.length - 1; n >= 0; n--) {
    const head = segments.slice(0, n).join('/');
    patterns.push((head ? '/' + head : '') + '/**');
  }
  const result = Object.freeze(patterns);
  expansions.set(channel, result);
  return result;
}

/** True when subscription `pattern` matches `channel`. */
export function matches(pattern: string, channel: string): boolean {
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
