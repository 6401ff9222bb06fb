/**
 * What the operations handlers share: Node's own request and response types
 * (so they run under Express 4 and 5, connect and a bare `http` server), a
 * next callback that may be absent, and small response helpers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { withDeadline } from '../util/deadline.js';

/** The optional third argument of a handler, as Express and connect pass it. */
export type OpsNext = (err?: unknown) => void;

/** A request handler built on Node's http types only. */
export type OpsHandler = (req: IncomingMessage, res: ServerResponse, next?: OpsNext) => void;

/** Answer with a body of the given type, and no caching. */
export function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head = false): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(head ? undefined : body);
}

/** Answer with JSON. */
export function sendJson(res: ServerResponse, status: number, value: unknown, head = false): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), head);
}

/**
 * Only GET and HEAD are served: anything else goes to `next` when there is
 * one (so an app can mount other routes on the same path), or gets a 405.
 * Returns false when the request was passed on or answered.
 */
export function readOnly(req: IncomingMessage, res: ServerResponse, next: OpsNext | undefined): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  if (next) {
    next();
    return false;
  }
  res.setHeader('Allow', 'GET, HEAD');
  send(res, 405, 'text/plain; charset=utf-8', `${String(req.method)} not allowed\n`);
  return false;
}

/** Settles with `promise`, or rejects after `ms` saying `what` did not answer. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(promise, ms, () => new Error(`${what} did not answer within ${ms} ms`));
}

/** Validate a positive integer option; throws a `TypeError` naming it. */
export function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`option ${name} must be a positive integer`);
  }
  return value;
}

/** Throw a `TypeError` naming the first key of `options` that is not in `known`. */
export function checkKeys(options: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new TypeError(`Unknown ${what} option: ${key}`);
  }
}
