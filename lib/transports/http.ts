/**
 * What the HTTP transports share: turning a request's `message` payloads
 * into an array of messages, the Connection for one request, and writing
 * transport-level errors.
 */
import type { Request, Response } from 'express';
import { HttpError } from '../errors.js';
import type { Connection, TransportName } from '../server/types.js';

/** Limits the HTTP transports enforce before the Server sees a message. */
export interface BatchLimits {
  maxBatch: number;
}

/**
 * Flatten `message` values (each a JSON text of one message or an array of
 * them, as form posts and JSONP send them) into one array.
 */
export function parseMessageParam(value: unknown): unknown[] {
  const values = Array.isArray(value) ? value : [value];
  const messages: unknown[] = [];
  for (const text of values) {
    if (typeof text !== 'string') throw new HttpError(400, 'message.missing', 'message parameter must be JSON text');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'entity.parse.failed', 'message parameter is not valid JSON');
    }
    if (Array.isArray(parsed)) for (const m of parsed) messages.push(m);
    else messages.push(parsed);
  }
  return messages;
}

/** A JSON body: one message or an array of them. */
export function fromJsonBody(body: unknown): unknown[] {
  return Array.isArray(body) ? body : [body];
}

/** Refuse empty and oversized batches. */
export function checkBatch(messages: unknown[], limits: BatchLimits): unknown[] {
  if (messages.length === 0) throw new HttpError(400, 'message.missing', 'no Bayeux message in the request');
  if (messages.length > limits.maxBatch) {
    throw new HttpError(413, 'batch.too.large', `more than ${limits.maxBatch} messages in one request`);
  }
  return messages;
}

/**
 * The Connection for one HTTP request. Its `signal` aborts if the client
 * goes away before the response is written; it is made on first use (only
 * a held connect needs it), so most requests pay nothing for it.
 */
export function requestConnection(transport: TransportName, req: Request, res: Response): Connection {
  let controller: AbortController | undefined;
  return {
    transport,
    req,
    ip: req.ip,
    get signal(): AbortSignal {
      if (!controller) {
        const c = (controller = new AbortController());
        if (res.destroyed) c.abort();
        else res.once('close', () => res.writableFinished || c.abort());
      }
      return controller.signal;
    },
  };
}

/** Whether the response can still be written (the client did not go away). */
export function writable(res: Response): boolean {
  return !res.destroyed && !res.writableEnded;
}

/** Read a body up to `limit` bytes; 413 `entity.too.large` beyond it. */
export function readBody(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new HttpError(400, 'request.aborted', err.message));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onAborted = (): void => onError(new Error('request aborted'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'entity.too.large', `request body larger than ${limit} bytes`);
}

/** Answer a transport-level failure with its status and stable `type`. */
export function sendHttpError(res: Response, err: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  // The rest of a body we stopped reading is not worth draining.
  if (err.type === 'entity.too.large') res.setHeader('Connection', 'close');
  res.status(err.status);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify({ error: { status: err.status, type: err.type, message: err.message } }));
}

/** Map body-parser's errors (which carry `status` and `type`) and ours to an HttpError. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const e = err as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  const type = typeof e.type === 'string' ? e.type : status === 500 ? 'server.error' : 'request.invalid';
  const message = status === 500 ? 'internal error' : typeof e.message === 'string' ? e.message : 'bad request';
  return new HttpError(status, type, message);
}

/** Join serialized messages into a JSON array text. */
export function jsonArray(messages: readonly string[]): string {
  return '[' + messages.join(',') + ']';
}
