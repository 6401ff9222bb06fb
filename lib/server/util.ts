/** Small helpers the server's modules share. */

/** A plain object (what a Bayeux message must be). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A clientId cut short for logs: enough to tell sessions apart, not enough to use one. */
export function shortId(clientId: string | undefined): string {
  return clientId === undefined ? '-' : clientId.slice(0, 6) + '…';
}
