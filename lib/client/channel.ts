/**
 * Channel names, as the client checks them before sending and matches them
 * when dispatching. Segments are letters, digits and `- _ ! ~ ( ) $ @ .`;
 * the wildcards `*` (one segment) and `**` (one or more) may only be the
 * last segment, and only in subscriptions.
 */

const SEGMENT = /^[A-Za-z0-9\-_!~()$@.]+$/;

/** The segments of a channel name, or null when it is not a valid name or pattern. */
function segmentsOf(name: unknown): string[] | null {
  if (typeof name !== 'string' || name.length < 2 || name[0] !== '/') return null;
  const segments = name.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    const last = i === segments.length - 1;
    if (SEGMENT.test(segment)) continue;
    if (last && (segment === '*' || segment === '**')) continue;
    return null;
  }
  return segments;
}

/** Whether `name` is a valid channel name with no wildcard. */
export function isValidChannel(name: unknown): name is string {
  const segments = segmentsOf(name);
  return segments !== null && !isWildcard(segments);
}

/** Whether `name` is a valid channel name or wildcard pattern (`/a/*`, `/a/**`). */
export function isValidPattern(name: unknown): name is string {
  return segmentsOf(name) !== null;
}

/** Whether `name` is a meta channel (`/meta/...`). */
export function isMetaChannel(name: string): boolean {
  return name === '/meta' || name.startsWith('/meta/');
}

/** Whether `name` is a service channel (`/service/...`). */
export function isServiceChannel(name: string): boolean {
  return name === '/service' || name.startsWith('/service/');
}

function isWildcard(segments: readonly string[]): boolean {
  const last = segments[segments.length - 1];
  return last === '*' || last === '**';
}

/**
 * Whether a subscription `pattern` matches `channel`: equal names, `/a/*`
 * for exactly one more segment, `/a/**` for one or more.
 */
export function channelMatches(pattern: string, channel: string): boolean {
  if (pattern === channel) return true;
  if (pattern.endsWith('/**')) {
    const prefix = pattern.slice(0, -2);
    return channel.length > prefix.length && channel.startsWith(prefix);
  }
  if (pattern.endsWith('/*')) {
    const prefix = pattern.slice(0, -1);
    return channel.length > prefix.length && channel.startsWith(prefix) && !channel.includes('/', prefix.length);
  }
  return false;
}
