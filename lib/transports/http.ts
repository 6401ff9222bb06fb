/**
 * What the HTTP transports share: reading and decoding a request body,
 * turning `message` payloads into an array of messages, the Connection for
 * one request, and writing transport-level errors. Only Node's
 * `IncomingMessage`/`ServerResponse` are used, so every host works (Express
 * 5 and 4, connect, a bare `http` handler); Express's extras (`req.ip`,
 * `req.body` from an app-level parser) are read when present.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { HttpError } from '../errors.js';
import { messageList } from '../protocol/message.js';
import type { AbortListener, Connection, TransportName } from '../server/types.js';

/** A request as a host may hand it over: Node's, with the extras Express and connect add. */
export type HostRequest = IncomingMessage & {
  /** Express: the client address, `trust proxy` applied. */
  ip?: string;
  /** Express: the path the middleware is mounted at. */
  baseUrl?: string;
  /** Express and connect: the URL before the mount path was stripped. */
  originalUrl?: string;
  /** An app-level body parser's result. */
  body?: unknown;
};

/** Limits the HTTP transports enforce before the Server sees a message. */
export interface BatchLimits {
  /** Most messages in one request. */
  readonly maxBatch: number;
}

/** The query of a request URL. */
export function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

/** The media type of a request (`application/json`), lowercased, without parameters. */
export function mediaType(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  if (header === undefined) return undefined;
  return (header.split(';', 1)[0] as string).trim().toLowerCase();
}

/** The `charset` parameter of the request's Content-Type, lowercased. */
export function charsetOf(req: IncomingMessage): string | undefined {
  const header = req.headers['content-type'];
  const m = header === undefined ? undefined : /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(header);
  return m?.[1]?.toLowerCase();
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
    for (const m of messageList(parsed)) messages.push(m);
  }
  return messages;
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
 * The connection of each watched response, for the shared close listener.
 * A WeakMap, not a property: a property added to an Express response gives
 * it a hidden class of its own (Express has already changed its prototype).
 */
const CONNECTIONS = new WeakMap<ServerResponse, HttpConnection>();

/**
 * The Connection for one HTTP request. A held connect learns that its
 * client went away through one module-level `close` listener and a field:
 * no AbortController, no closure per request.
 */
class HttpConnection implements Connection {
  readonly transport: TransportName;
  readonly req: HostRequest;
  readonly res: ServerResponse;
  #listener: AbortListener | undefined;
  #watching = false;

  constructor(transport: TransportName, req: HostRequest, res: ServerResponse) {
    this.transport = transport;
    this.req = req;
    this.res = res;
  }

  get ip(): string | undefined {
    return this.req.ip ?? this.req.socket.remoteAddress;
  }

  aborted(): boolean {
    return this.res.destroyed && !this.res.writableFinished;
  }

  onAbort(listener: AbortListener): void {
    this.#listener = listener;
    if (this.#watching) return;
    this.#watching = true;
    CONNECTIONS.set(this.res, this);
    this.res.on('close', responseClosed);
  }

  offAbort(listener: AbortListener): void {
    if (this.#listener === listener) this.#listener = undefined;
  }

  /**
   * A drain hands the session off (or refuses a handshake): the answer
   * closes the connection, so the client's next request opens a new one,
   * which a balancer sends to another node.
   */
  drain(): void {
    if (!this.res.headersSent) this.res.setHeader('Connection', 'close');
  }

  /** @internal the response closed */
  closed(): void {
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener && !this.res.writableFinished) listener.handleEvent();
  }
}

function responseClosed(this: ServerResponse): void {
  CONNECTIONS.get(this)?.closed();
}

/**
 * What a host's router leaves on a request for its own later use: Express
 * keeps `req.next` (its routing state, with the closures of every router
 * the request went through), a parsed URL cache and `res.locals`. Once the
 * transport owns a request it answers it itself and never passes it on, so
 * it lets go of them: behind Express this is about 1.1 KiB per held
 * connect. Only fields that are there are touched, so a bare `http`
 * request keeps its shape.
 */
export function releaseRouterState(req: IncomingMessage, res: ServerResponse): void {
  const r = req as IncomingMessage & Record<string, unknown>;
  if (r['next'] !== undefined) r['next'] = undefined;
  if (r['_parsedUrl'] !== undefined) r['_parsedUrl'] = undefined;
  if (r['_parsedOriginalUrl'] !== undefined) r['_parsedOriginalUrl'] = undefined;
  const s = res as ServerResponse & Record<string, unknown>;
  if (s['locals'] !== undefined) s['locals'] = undefined;
}

/** The Connection for one HTTP request (long-polling, callback-polling). */
export function requestConnection(transport: TransportName, req: HostRequest, res: ServerResponse): Connection {
  return new HttpConnection(transport, req, res);
}

/** Whether the response can still be written (the client did not go away). */
export function writable(res: ServerResponse): boolean {
  return !res.destroyed && !res.writableEnded;
}

/** How a body is read: its size limit in bytes, and how long it may take in ms (`0`: no limit). */
export interface BodyLimits {
  limit: number;
  timeoutMs: number;
}

/**
 * Read a body up to `limit` bytes; 413 `entity.too.large` beyond it, 408
 * `request.timeout` if it has not arrived within `timeoutMs`, 400
 * `request.aborted` if the client went away.
 */
export function readBody(req: IncomingMessage, { limit, timeoutMs }: BodyLimits): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise(function reading(resolve, reject) {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = timeoutMs > 0
      ? setTimeout(() => fail(new HttpError(408, 'request.timeout', `request body not received within ${timeoutMs} ms`)), timeoutMs)
      : undefined;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        fail(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => fail(new HttpError(400, 'request.aborted', err.message));
    const onAborted = (): void => onError(new Error('request aborted'));
    function fail(err: HttpError): void {
      cleanup();
      // What is left of the body is not read: stop the stream, keep an error listener on it.
      req.pause();
      reject(err);
    }
    function cleanup(): void {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      req.on('error', ignore);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function ignore(): void {}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'entity.too.large', `request body larger than ${limit} bytes`);
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const brotli = promisify(zlib.brotliDecompress);

/**
 * Undo a `Content-Encoding` (`gzip`, `deflate`, `br`, `identity`), with the
 * inflated size held to `limit`. Others: 415 `encoding.unsupported`.
 */
export async function decodeBody(req: IncomingMessage, body: Buffer, limit: number): Promise<Buffer> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  try {
    switch (encoding) {
      case 'identity':
        return body;
      case 'gzip':
      case 'x-gzip':
        return await gunzip(body, { maxOutputLength: limit });
      case 'deflate':
        return await inflate(body, { maxOutputLength: limit });
      case 'br':
        return await brotli(body, { maxOutputLength: limit });
    }
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit);
    throw new HttpError(400, 'entity.parse.failed', `request body is not valid ${encoding}`);
  }
  throw new HttpError(415, 'encoding.unsupported', `unsupported content encoding "${encoding}"`);
}

/** Decode text in `charset` (UTF-8 when absent); others: 415 `charset.unsupported`. */
export function decodeText(body: Buffer, charset: string | undefined, allowed: readonly string[]): string {
  const name = charset ?? 'utf-8';
  if (!allowed.includes(name)) throw new HttpError(415, 'charset.unsupported', `unsupported charset "${name.toUpperCase()}"`);
  if (name === 'utf-8' || name === 'utf8') return body.toString('utf8');
  return new TextDecoder(name).decode(body);
}

/** Answer a transport-level failure with its status and stable `type`. */
export function sendHttpError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  // The rest of a body we stopped reading is not worth draining.
  if (err.type === 'entity.too.large' || err.type === 'request.timeout' || err.type === 'request.aborted') {
    res.setHeader('Connection', 'close');
  }
  res.statusCode = err.status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify({ error: { status: err.status, type: err.type, message: err.message } }));
  // Close the connection once the answer is out, so a trickling client is not read further.
  if (err.type === 'request.timeout') res.once('finish', () => res.socket?.destroySoon());
}

/** Map a body parser's errors (which carry `status` and `type`) and ours to an HttpError. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  const e = (err ?? {}) as { status?: unknown; statusCode?: unknown; type?: unknown; message?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
  const type = typeof e.type === 'string' ? e.type : status === 500 ? 'server.error' : 'request.invalid';
  const message = status === 500 ? 'internal error' : typeof e.message === 'string' ? e.message : 'bad request';
  return new HttpError(status, type, message);
}

/** Add `field` to the response's `Vary` header (Express's `res.vary`, for every host). */
export function vary(res: ServerResponse, field: string): void {
  const current = res.getHeader('Vary');
  const list = current === undefined ? '' : Array.isArray(current) ? current.join(', ') : String(current);
  if (list === '*' || list.split(',').some((f) => f.trim().toLowerCase() === field.toLowerCase())) return;
  res.setHeader('Vary', list ? `${list}, ${field}` : field);
}
