/**
 * The mount path: which request URLs are Bayeux's. One answer for the
 * HTTP router, the WebSocket upgrade listener and the request shaping.
 */

/** The path of a request URL, without its query. */
export function pathnameOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

/** Whether `url` (a path, with or without a query) is `mount` or below it; everything is under the root. */
export function isUnderMount(url: string | undefined, mount: string | undefined): boolean {
  if (mount === undefined || url === undefined) return false;
  if (mount === '/' || url === mount) return true;
  if (!url.startsWith(mount)) return false;
  const next = url.charCodeAt(mount.length);
  return next === 0x2f /* / */ || next === 0x3f /* ? */;
}
