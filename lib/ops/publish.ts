/**
 * `cometd.publishHandler({ token } | { authorize })`: publish over HTTP from
 * any language. A POST of `{ channel, data, ext?, id? }`, or an array of
 * them, is published as `cometd.publish` publishes (outgoing hooks, the
 * engine, every node) and answered `{ "published": n }`. Never open: a
 * handler needs a Bearer token (compared in constant time) or an
 * `authorize` function. Runs under Express 4 and 5, connect and a bare
 * `http` server; a body an app-level `express.json()` already parsed is
 * used as it is, otherwise it is read here under `maxBodyBytes`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../errors.js';
import { EngineUnavailableError } from '../engines/engine.js';
import { isMeta, isService, isValidChannel, isValidPattern } from '../protocol/channel.js';
import { BayeuxError, describeError } from '../protocol/error.js';
import type { Logger } from '../options.js';
import type { PublishOptions } from '../server/types.js';
import {
  charsetOf, decodeBody, decodeText, type HostRequest, mediaType, readBody, sendHttpError, toHttpError, writable,
} from '../transports/http.js';
import { checkKeys, type OpsHandler, type OpsNext, positiveInt } from './http.js';

/** Options of `cometd.publishHandler()`: `token` or `authorize` (or both) is required. */
export interface PublishHandlerOptions {
  /**
   * The Bearer token a request must carry (`Authorization: Bearer <token>`),
   * compared in constant time. Visible ASCII, no spaces; use a long random
   * one (`openssl rand -base64 32`). No default: without `token` or
   * `authorize` the handler is not made.
   */
  token?: string;
  /**
   * Decides whether a request may publish (`true`; anything else answers
   * 403 `auth.denied`), from its headers, address, or whatever your auth
   * middleware left on it. A rejection or a throw answers 500 (logged).
   * With `token` too, both must pass. No default.
   */
  authorize?: (req: IncomingMessage) => boolean | Promise<boolean>;
  /** Largest request body, in bytes, before and after decompression; larger gets 413 `entity.too.large`. Default: the server's `maxBodyBytes` (1 MiB unless set). */
  maxBodyBytes?: number;
  /** Most messages in one request; more gets 413 `batch.too.large`. Default: the server's `maxBatch` (1000 unless set). */
  maxBatch?: number;
}

/** What the handler needs of the server: its publish, its limits, its logger. */
export interface PublishSource {
  /** `cometd.publish`. */
  publish(channel: string, data: unknown, options: PublishOptions): Promise<number>;
  /** Whether publishes issued back to back reach the engine in call order (no outgoing hook may make one wait). */
  inOrder(): boolean;
  readonly limits: { readonly maxBodyBytes: number; readonly maxBatch: number; readonly bodyTimeout: number };
  readonly logger: Logger;
  /** True once the server's `close()` was called. */
  readonly closed: boolean;
}

/** One message of a request, checked. */
interface Publish {
  channel: string;
  data: unknown;
  options: PublishOptions;
}

const FIELDS = new Set(['channel', 'data', 'ext', 'id']);
const JSON_CHARSETS = ['utf-8', 'utf8', 'utf-16le', 'utf-16be', 'utf-16'];
/** A Bearer token: visible ASCII, no spaces (RFC 6750 allows fewer characters; this refuses none a client may send). */
const TOKEN = /^[\x21-\x7e]+$/;

/** Create the handler; throws a `TypeError` naming a bad option, or when neither `token` nor `authorize` is given. */
export function createPublishHandler(source: PublishSource, options: PublishHandlerOptions): OpsHandler {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('publishHandler needs { token } or { authorize }: a publish endpoint is never open');
  }
  checkKeys(options, ['token', 'authorize', 'maxBodyBytes', 'maxBatch'], 'publishHandler');
  const { token, authorize } = options;
  if (token === undefined && authorize === undefined) {
    throw new TypeError('publishHandler needs { token } or { authorize }: a publish endpoint is never open');
  }
  if (token !== undefined && (typeof token !== 'string' || !TOKEN.test(token))) {
    throw new TypeError('publishHandler option token must be a non-empty string of visible ASCII characters, without spaces');
  }
  if (authorize !== undefined && typeof authorize !== 'function') {
    throw new TypeError('publishHandler option authorize must be a function (req) => boolean | Promise<boolean>');
  }
  const maxBodyBytes = positiveInt(options.maxBodyBytes, 'maxBodyBytes', source.limits.maxBodyBytes);
  const maxBatch = positiveInt(options.maxBatch, 'maxBatch', source.limits.maxBatch);
  const bodyTimeout = source.limits.bodyTimeout;
  // Digests of equal length, so the comparison takes the same time whatever the length of what was sent.
  const expected = token === undefined ? undefined : digest(token);

  /**
   * Whether the request may publish: the token (when set), then
   * `authorize` (when set). `token`: no valid Bearer token (401);
   * `denied`: `authorize` said no (403).
   */
  async function allowed(req: IncomingMessage): Promise<'ok' | 'token' | 'denied'> {
    if (expected) {
      const given = /^Bearer +([\x21-\x7e]+) *$/i.exec(req.headers.authorization ?? '')?.[1];
      // Compared even when absent, against a digest of nothing: the same work either way.
      const ok = timingSafeEqual(digest(given ?? ''), expected);
      if (!ok || given === undefined) return 'token';
    }
    if (authorize && (await authorize(req)) !== true) return 'denied';
    return 'ok';
  }

  async function handle(req: HostRequest, res: ServerResponse): Promise<void> {
    let verdict: 'ok' | 'token' | 'denied';
    try {
      verdict = await allowed(req);
    } catch (err) {
      source.logger.error(`publishHandler: authorize failed: ${describeError(err)}`);
      answerError(res, new HttpError(500, 'server.error', 'internal error'));
      return;
    }
    if (verdict !== 'ok') {
      // Nothing of the body is read for a stranger.
      res.setHeader('Connection', 'close');
      if (verdict === 'token') {
        res.setHeader('WWW-Authenticate', 'Bearer realm="express-bayeux publish"');
        answerError(res, new HttpError(401, 'auth.failed', 'a valid Authorization: Bearer token is required'));
      } else {
        answerError(res, new HttpError(403, 'auth.denied', 'not allowed to publish'));
      }
      return;
    }
    if (source.closed) {
      answerError(res, new HttpError(503, 'server.closing', 'the server is closing; try again'));
      return;
    }
    let publishes: Publish[];
    try {
      publishes = checkMessages(await body(req), maxBatch);
    } catch (err) {
      answerError(res, toHttpError(err));
      return;
    }
    let published = 0;
    try {
      if (source.inOrder()) {
        // Issued back to back, as a client's run of publishes: they reach the engine in order, together.
        const results = await Promise.allSettled(publishes.map((p) => source.publish(p.channel, p.data, p.options)));
        const failed = results.find((r) => r.status === 'rejected');
        published = results.filter((r) => r.status === 'fulfilled').length;
        if (failed) throw failed.reason;
      } else {
        // An outgoing hook may make a publish wait: the next one must not overtake it.
        for (const p of publishes) {
          await source.publish(p.channel, p.data, p.options);
          published++;
        }
      }
    } catch (err) {
      answerError(res, publishError(err, source.logger), published);
      return;
    }
    if (!writable(res)) return;
    const text = JSON.stringify({ published });
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
    });
    res.end(text);
  }

  /** The request's JSON: what an app-level parser left, or the body read here. */
  async function body(req: HostRequest): Promise<unknown> {
    if (req.body !== undefined && !req.readable) {
      if (!isJsonType(mediaType(req))) throw unsupportedType();
      // Read by the app's parser under its own limit; the declared length still holds to ours.
      if (Number(req.headers['content-length']) > maxBodyBytes) throw new HttpError(413, 'entity.too.large', `request body larger than ${maxBodyBytes} bytes`);
      return req.body;
    }
    if (!isJsonType(mediaType(req))) throw unsupportedType();
    const raw = await readBody(req, { limit: maxBodyBytes, timeoutMs: bodyTimeout });
    const text = decodeText(await decodeBody(req, raw, maxBodyBytes), charsetOf(req), JSON_CHARSETS);
    if (text.length === 0) throw new HttpError(400, 'message.missing', 'empty request body');
    try {
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch {
      throw new HttpError(400, 'entity.parse.failed', 'request body is not valid JSON');
    }
  }

  return function publishHandler(req: IncomingMessage, res: ServerResponse, next?: OpsNext): void {
    if (req.method !== 'POST') {
      if (next) {
        next();
        return;
      }
      res.setHeader('Allow', 'POST');
      answerError(res, new HttpError(405, 'method.not.allowed', `${req.method ?? ''} is not allowed: POST the messages to publish`));
      return;
    }
    handle(req, res).catch(function publishFailed(err: unknown) {
      source.logger.error(`publishHandler failed: ${describeError(err)}`);
      answerError(res, new HttpError(500, 'server.error', 'internal error'));
    });
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function isJsonType(type: string | undefined): boolean {
  return type === 'application/json' || type === 'text/json' || (type !== undefined && /^application\/[^/]+\+json$/.test(type));
}

function unsupportedType(): HttpError {
  return new HttpError(415, 'content.type.unsupported', 'send the messages as application/json');
}

/**
 * Check every message before any is published: an object or an array of
 * 1 to `maxBatch` objects, each `{ channel, data, ext?, id? }` on a channel
 * anyone may publish to (no wildcard, not `/meta/`, not `/service/`).
 */
function checkMessages(value: unknown, maxBatch: number): Publish[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) throw new HttpError(400, 'message.missing', 'no message in the request');
  if (list.length > maxBatch) throw new HttpError(413, 'batch.too.large', `more than ${maxBatch} messages in one request`);
  return list.map((item, i) => checkMessage(item, list.length > 1 ? `message ${i}` : 'the message'));
}

function checkMessage(item: unknown, which: string): Publish {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw new HttpError(400, 'message.invalid', `${which} is not an object { channel, data, ext?, id? }`);
  }
  const m = item as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!FIELDS.has(key)) throw new HttpError(400, 'message.invalid', `${which} has an unknown field "${key}" (known: channel, data, ext, id)`);
  }
  const channel = m['channel'];
  if (typeof channel !== 'string') throw new HttpError(400, 'channel.invalid', `${which} has no channel`);
  const named = JSON.stringify(channel.length > 100 ? channel.slice(0, 100) + '…' : channel);
  if (!isValidPattern(channel)) throw new HttpError(400, 'channel.invalid', `${which}: ${named} is not a channel name`);
  if (!isValidChannel(channel)) throw new HttpError(400, 'channel.invalid', `${which}: ${named} is a wildcard; publish to one channel`);
  if (isMeta(channel)) throw new HttpError(400, 'channel.invalid', `${which}: ${named} is a /meta/ channel; those carry the protocol only`);
  if (isService(channel)) throw new HttpError(400, 'channel.invalid', `${which}: ${named} is a /service/ channel; those are never broadcast`);
  if (!('data' in m)) throw new HttpError(400, 'message.invalid', `${which} has no data`);
  const options: PublishOptions = {};
  const { ext, id } = m;
  if (ext !== undefined) {
    if (typeof ext !== 'object' || ext === null || Array.isArray(ext)) throw new HttpError(400, 'message.invalid', `${which}: ext must be an object`);
    options.ext = ext as Record<string, unknown>;
  }
  if (id !== undefined) {
    if (typeof id !== 'string' && typeof id !== 'number') throw new HttpError(400, 'message.invalid', `${which}: id must be a string or a number`);
    options.id = id;
  }
  return { channel, data: m['data'], options };
}

/** What a failed publish answers: 413 over `maxMessageBytes`, 503 with the engine out of reach, else 500 (logged). */
function publishError(err: unknown, logger: Logger): HttpError {
  if (err instanceof BayeuxError && err.code === 413) return new HttpError(413, 'message.too.large', `a message is larger than maxMessageBytes (${err.args[0] ?? '?'} bytes)`);
  if (err instanceof BayeuxError && err.code === 405) return new HttpError(400, 'channel.invalid', err.message);
  if (err instanceof EngineUnavailableError) return new HttpError(503, 'engine.unavailable', 'the engine is out of reach; try again');
  logger.error(`publishHandler: publish failed: ${describeError(err)}`);
  return new HttpError(500, 'server.error', 'internal error');
}

/** The transport error JSON; after a partial failure, with how many were published before it. */
function answerError(res: ServerResponse, err: HttpError, published?: number): void {
  if (!writable(res)) return;
  if (published === undefined || published === 0) {
    sendHttpError(res, err);
    return;
  }
  const text = JSON.stringify({ error: { status: err.status, type: err.type, message: err.message }, published });
  res.writeHead(err.status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}
