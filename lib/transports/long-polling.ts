/**
 * Long-polling: POST a JSON array (or one JSON object), or a form with one
 * or more `message=` fields, to the mount path or any path under it (the
 * CometD client posts to `/cometd/connect` and friends). GET with `message=`
 * and no `jsonp` is answered the same way. The reply is a JSON array.
 */
import bodyParser from 'body-parser';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { HttpError } from '../errors.js';
import type { Server } from '../server/server.js';
import {
  checkBatch, fromJsonBody, jsonArray, parseMessageParam, readBody, requestConnection, sendHttpError, toHttpError, writable,
} from './http.js';

const JSON_TYPES = ['application/json', 'text/json', 'application/*+json'];
const FORM_TYPE = 'application/x-www-form-urlencoded';

export class LongPollingTransport {
  readonly #server: Server;
  readonly #json: RequestHandler;
  readonly #form: RequestHandler;

  constructor(server: Server) {
    this.#server = server;
    const limit = server.options.maxBodyBytes;
    this.#json = bodyParser.json({ limit, strict: false, type: JSON_TYPES });
    this.#form = bodyParser.urlencoded({ limit, extended: false, type: FORM_TYPE, parameterLimit: server.options.maxBatch + 10 });
  }

  /** Handle a POST (or a GET with `message=`). */
  async handle(req: Request, res: Response): Promise<void> {
    try {
      const messages = checkBatch(await this.#messages(req, res), this.#server.options);
      const conn = requestConnection('long-polling', req, res);
      const replies = await this.#server.process(messages, conn);
      if (!writable(res)) return;
      res.writeHead(200, RESPONSE_HEADERS);
      res.end(jsonArray(replies));
    } catch (err) {
      sendHttpError(res, toHttpError(err));
    }
  }

  async #messages(req: Request, res: Response): Promise<unknown[]> {
    if (req.method === 'GET') return parseMessageParam(req.query['message']);
    // An app-level express.json() or urlencoded() may have read the body already.
    if (req.body === undefined || req.readable) {
      if (isPlainJson(req)) return fromJsonBody(parseJson(await readBody(req, this.#server.options.maxBodyBytes)));
      if (req.is(JSON_TYPES)) await run(this.#json, req, res); // compressed or non-UTF-8 bodies
      else if (req.is(FORM_TYPE)) await run(this.#form, req, res);
      else throw new HttpError(415, 'content.type.unsupported', 'send application/json or application/x-www-form-urlencoded');
    }
    const body: unknown = req.body;
    if (req.is(FORM_TYPE)) {
      const form = body as Record<string, unknown> | undefined;
      return parseMessageParam(form?.['message']);
    }
    if (body === undefined) throw new HttpError(400, 'message.missing', 'empty request body');
    return fromJsonBody(body);
  }
}

const RESPONSE_HEADERS = {
  'Content-Type': 'application/json; charset=utf-8',
  'Cache-Control': 'no-cache, no-store',
} as const;

/**
 * The common case, read here without body-parser: `application/json`,
 * uncompressed, UTF-8. Anything else JSON-typed goes through body-parser,
 * which inflates and decodes (or refuses with 415).
 */
function isPlainJson(req: Request): boolean {
  const type = req.headers['content-type'];
  if (type === undefined || !/^application\/json\s*(;|$)/i.test(type)) return false;
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type)?.[1];
  return charset === undefined || /^utf-?8$/i.test(charset);
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw new HttpError(400, 'message.missing', 'empty request body');
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'entity.parse.failed', 'request body is not valid JSON');
  }
}

function run(handler: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    const next: NextFunction = (err?: unknown) => (err ? reject(err) : resolve());
    void handler(req, res, next);
  });
}
