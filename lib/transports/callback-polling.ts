/**
 * Callback-polling (JSONP): GET with `message=` (JSON text of a message or
 * an array) and `jsonp=` (the callback name). Answered as
 * `text/javascript`: `/**\/callback([...]);`. The callback name is
 * validated so the response cannot carry script of the caller's choosing.
 */
import type { ServerResponse } from 'node:http';
import { HttpError } from '../errors.js';
import { jsonArray } from '../protocol/message.js';
import type { MessageHandler } from './core.js';
import type { HostShapes } from './host-shapes.js';
import {
  type BatchLimits, checkBatch, type HostRequest, parseMessageParam, queryOf, releaseRouterState, requestConnection, sendHttpError, toHttpError, writable,
} from './http.js';

/** Letters, digits, `_`, `$` and `.`, at most 64 characters. */
const CALLBACK = /^[A-Za-z0-9_$.]{1,64}$/;

export function isValidCallback(name: unknown): name is string {
  return typeof name === 'string' && CALLBACK.test(name);
}

/** The options callback-polling reads. Its only limit is the batch: the messages come in the query, there is no body to bound. */
export interface CallbackPollingOptions extends BatchLimits {
  /** Learns what the host adds to requests (set when attached to a server). */
  readonly shapes?: HostShapes;
}

export class CallbackPollingTransport {
  readonly #server: MessageHandler;
  readonly #options: CallbackPollingOptions;

  constructor(server: MessageHandler, options: CallbackPollingOptions) {
    this.#server = server;
    this.#options = options;
  }

  /** Handle a GET with `message=` and `jsonp=`. Never rejects: failures are answered. */
  async handle(req: HostRequest, res: ServerResponse): Promise<void> {
    try {
      const query = queryOf(req);
      const callbacks = query.getAll('jsonp');
      const callback = callbacks.length === 1 ? callbacks[0] : undefined;
      if (!isValidCallback(callback)) {
        throw new HttpError(400, 'jsonp.callback.invalid', 'jsonp must be letters, digits, _ $ . and at most 64 characters');
      }
      const messages = checkBatch(parseMessageParam(query.getAll('message')), this.#options);
      releaseRouterState(req, res);
      this.#options.shapes?.learn(req, res);
      const conn = requestConnection('callback-polling', req, res);
      const replies = await new Promise<string[]>((resolve) => this.#server.handle(messages, conn, resolve));
      if (!writable(res)) return;
      res.statusCode = 200;
      res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache, no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.end(`/**/${callback}(${jsonArray(replies)});`);
      this.#options.shapes?.learn(req, res);
    } catch (err) {
      if (writable(res)) sendHttpError(res, toHttpError(err));
    }
  }
}
