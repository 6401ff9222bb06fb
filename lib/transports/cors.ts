/**
 * Cross-origin rules, shared by the HTTP transports (CORS headers and
 * preflights) and the WebSocket transport (the upgrade's Origin).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../errors.js';
import type { CorsOptions } from '../options.js';
import { sendHttpError, vary } from './http.js';

/** Set CORS headers; false when the request was refused and answered. */
export function applyCors(cors: CorsOptions, req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  vary(res, 'Origin');
  if (!originAllowed(cors.origin ?? '*', origin)) {
    if (req.method === 'OPTIONS') {
      sendHttpError(res, new HttpError(403, 'cors.origin.denied', 'origin not allowed'));
      return false;
    }
    return true; // no CORS headers: the browser keeps the response from the page
  }
  res.setHeader('Access-Control-Allow-Origin', cors.origin === '*' && !cors.credentials ? '*' : origin);
  if (cors.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', req.headers['access-control-request-headers'] ?? 'Content-Type');
    res.setHeader('Access-Control-Max-Age', String(cors.maxAge ?? 86400));
  }
  return true;
}

export function originAllowed(allowed: NonNullable<CorsOptions['origin']>, origin: string): boolean {
  if (allowed === '*') return true;
  if (typeof allowed === 'string') return allowed === origin;
  if (allowed instanceof RegExp) return allowed.test(origin);
  if (typeof allowed === 'function') return allowed(origin) === true;
  return allowed.includes(origin);
}

/**
 * May a browser page from the upgrade's Origin open a socket? Requests
 * without an Origin (non-browser clients) may. Without `cors`, only pages
 * from the same host may, as long-polling without CORS headers would
 * allow; with `cors`, the origins it allows.
 */
export function upgradeOriginAllowed(cors: CorsOptions | false, req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (cors) return originAllowed(cors.origin ?? '*', origin);
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
