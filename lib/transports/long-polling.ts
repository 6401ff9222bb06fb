/**
 * Long-polling: POST a JSON array (or one JSON object), or a form with one
 * or more `message=` fields, to the mount path or any path under it (the
 * CometD client posts to `/cometd/connect` and friends). GET with `message=`
 * and no `jsonp` is answered the same way. The reply is a JSON array.
 *
 * Bodies are read here, on Node's request alone: JSON and forms, `gzip`,
 * `deflate` or `br` encoded, JSON in UTF-8 or UTF-16. A body an app-level
 * parser (`express.json()`, `express.urlencoded()`) already read is used as
 * it left it.
 */
import type { ServerResponse } from 'node:http';
import { HttpError } from '../errors.js';
import { jsonArray, messageList } from '../protocol/message.js';
import type { MessageHandler } from './core.js';
import type { HostShapes } from './host-shapes.js';
import {
  type BatchLimits, charsetOf, checkBatch, decodeBody, decodeText, type HostRequest, mediaType,
  parseMessageParam, queryOf, readBody, releaseRouterState, requestConnection, sendHttpError, toHttpError, writable,
} from './http.js';

const FORM_TYPE = 'application/x-www-form-urlencoded';
const JSON_CHARSETS = ['utf-8', 'utf8', 'utf-16le', 'utf-16be', 'utf-16'];
const FORM_CHARSETS = ['utf-8', 'utf8'];

function isJsonType(type: string | undefined): boolean {
  return type === 'application/json' || type === 'text/json' || (type !== undefined && /^application\/[^/]+\+json$/.test(type));
}

/** The options long-polling reads: its body and batch limits. */
export interface LongPollingOptions extends BatchLimits {
  /** Largest request body, in bytes, before and after decompression. */
  readonly maxBodyBytes: number;
  /** How long a body may take to arrive, in ms; 0: no limit. */
  readonly bodyTimeout: number;
  /** Learns what the host adds to requests (set when attached to a server). */
  readonly shapes?: HostShapes;
}

export class LongPollingTransport {
  readonly #server: MessageHandler;
  readonly #options: LongPollingOptions;

  constructor(server: MessageHandler, options: LongPollingOptions) {
    this.#server = server;
    this.#options = options;
  }

  /**
   * Handle a POST (or a GET with `message=`). Never rejects: failures are
   * answered. Once the messages are read nothing waits here: a held
   * connect is answered through the callback.
   */
  async handle(req: HostRequest, res: ServerResponse): Promise<void> {
    let messages: unknown[];
    try {
      messages = checkBatch(await this.#messages(req), this.#options);
    } catch (err) {
      if (writable(res)) sendHttpError(res, toHttpError(err));
      return;
    }
    releaseRouterState(req, res);
    const { shapes } = this.#options;
    shapes?.learn(req, res);
    this.#server.handle(messages, requestConnection('long-polling', req, res), (replies) => {
      answer(res, replies);
      // Writing the head adds Node's own fields (statusCode, statusMessage): learn those too.
      shapes?.learn(req, res);
    });
  }

  async #messages(req: HostRequest): Promise<unknown[]> {
    if (req.method === 'GET' || req.method === 'HEAD') return parseMessageParam(queryOf(req).getAll('message'));
    const type = mediaType(req);
    const json = isJsonType(type);
    if (!json && type !== FORM_TYPE) {
      throw new HttpError(415, 'content.type.unsupported', 'send application/json or application/x-www-form-urlencoded');
    }
    // An app-level express.json() or urlencoded() may have read the body already.
    if (req.body !== undefined && !req.readable) {
      if (type === FORM_TYPE) return parseMessageParam((req.body as Record<string, unknown> | undefined)?.['message']);
      return messageList(req.body);
    }
    const { maxBodyBytes, bodyTimeout, maxBatch } = this.#options;
    const raw = await readBody(req, { limit: maxBodyBytes, timeoutMs: bodyTimeout });
    const body = await decodeBody(req, raw, maxBodyBytes);
    if (json) return messageList(parseJson(decodeText(body, charsetOf(req), JSON_CHARSETS)));
    const form = new URLSearchParams(decodeText(body, charsetOf(req), FORM_CHARSETS));
    const values = form.getAll('message');
    if (values.length > maxBatch) {
      throw new HttpError(413, 'batch.too.large', `more than ${maxBatch} messages in one request`);
    }
    return parseMessageParam(values);
  }
}

function answer(res: ServerResponse, replies: readonly string[]): void {
  if (!writable(res)) return;
  const body = jsonArray(replies);
  // A length, not chunked encoding: one write, and the client knows where the reply ends.
  res.writeHead(200, { ...RESPONSE_HEADERS, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const RESPONSE_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-cache, no-store',
} as const;

function parseJson(text: string): unknown {
  if (text.length === 0) throw new HttpError(400, 'message.missing', 'empty request body');
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    throw new HttpError(400, 'entity.parse.failed', 'request body is not valid JSON');
  }
}
