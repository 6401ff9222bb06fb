/**
 * Wildcard expansion: the subscription patterns that match a published
 * channel, as engines index subscribers by them. The channel grammar itself
 * (shared with the client) is in `lib/protocol/channel.ts`.
 */
import { LRUCache } from 'lru-cache';

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
