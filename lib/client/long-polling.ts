/**
 * The long-polling transport: each request is one HTTP POST of a JSON array
 * of messages (`Content-Type: application/json`); the response body is the
 * JSON array of replies and deliveries. Uses the `fetch` it is given.
 */

import { timerDelay } from './constants.js';
import { BayeuxClientError } from './errors.js';
import { isMessage, messageList } from '../protocol/message.js';
import type { BayeuxMessage } from './message.js';

/** The `fetch` the transport calls (the global one by default). */
export type FetchFunction = (input: string, init: {
  method: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
  credentials?: 'omit' | 'same-origin' | 'include';
}) => Promise<FetchResponse>;

/**
 * The part of a `fetch` Response the transport reads. With a `body` stream
 * the body is read chunk by chunk and abandoned past `maxResponseBytes`;
 * without one, `text()` reads it whole.
 */
export interface FetchResponse {
  ok: boolean;
  status: number;
  statusText?: string;
  text(): Promise<string>;
  headers?: { get(name: string): string | null } | undefined;
  body?: ReadableStream<Uint8Array> | null | undefined;
}

/** One POST in flight. */
export interface LongPollingRequest {
  /** The messages the server answered with; rejects with a `BayeuxClientError`. */
  readonly promise: Promise<BayeuxMessage[]>;
  /** Abort the request; its promise rejects with type `cancelled`. */
  cancel(): void;
}

export interface LongPollingOptions {
  url: string;
  fetch: FetchFunction;
  headers: Readonly<Record<string, string>>;
  credentials: 'omit' | 'same-origin' | 'include' | undefined;
  /** Longest response body read, in bytes. */
  maxResponseBytes: number;
}

export class LongPollingTransport {
  #options: LongPollingOptions;
  #open = new Set<LongPollingRequest>();

  constructor(options: LongPollingOptions) {
    this.#options = options;
  }

  /** POST `messages`; the request fails with type `timeout` after `timeout` ms. */
  send(messages: readonly BayeuxMessage[], timeout: number): LongPollingRequest {
    const controller = new AbortController();
    let why: 'timeout' | 'cancelled' | undefined;
    const timer = setTimeout(function requestTimedOut() {
      why = 'timeout';
      controller.abort();
    }, timerDelay(timeout));
    const { url, fetch, headers, credentials, maxResponseBytes } = this.#options;
    const open = this.#open;
    const request = {
      promise: Promise.resolve<BayeuxMessage[]>([]),
      cancel() {
        if (why) return;
        why = 'cancelled';
        controller.abort();
      },
    };
    open.add(request);
    request.promise = (async function postMessages(): Promise<BayeuxMessage[]> {
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/json' },
          body: JSON.stringify(messages),
          signal: controller.signal,
          ...(credentials ? { credentials } : {}),
        });
        if (!response.ok) throw await httpError(response, maxResponseBytes);
        const text = await readBody(response, maxResponseBytes);
        try {
          return parseMessages(text);
        } catch (error) {
          const type = response.headers?.get('content-type') ?? 'no Content-Type';
          throw new BayeuxClientError('protocol', `${(error as Error).message} (HTTP ${response.status}, ${type})`,
            { status: response.status, cause: error });
        }
      } catch (error) {
        if (why === 'timeout') throw new BayeuxClientError('timeout', `No answer within ${timeout} ms`, { cause: error });
        if (why === 'cancelled') throw new BayeuxClientError('cancelled', 'Request cancelled', { cause: error });
        if (error instanceof BayeuxClientError) throw error;
        throw new BayeuxClientError('network', `Request failed: ${describe(error)}`, { cause: error });
      } finally {
        clearTimeout(timer);
        open.delete(request);
      }
    })();
    // The caller may never look at a cancelled request's outcome.
    request.promise.catch(function ignore() {});
    return request;
  }

  /** Cancel every request in flight. */
  cancelAll(): void {
    for (const request of [...this.#open]) request.cancel();
  }
}

/** Read a response body as text, giving up (and cancelling the stream) past `limit` bytes. */
async function readBody(response: FetchResponse, limit: number): Promise<string> {
  const declared = Number(response.headers?.get('content-length') ?? Number.NaN);
  const tooLarge = (): BayeuxClientError => new BayeuxClientError('too-large',
    `The server's response${Number.isFinite(declared) ? ` (${declared} bytes)` : ''} is longer than maxResponseBytes (${limit} bytes)`);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel().catch(function ignoreCancelFailure() {});
    throw tooLarge();
  }
  const body = response.body;
  if (!body || typeof body.getReader !== 'function') {
    const text = await response.text();
    // Each UTF-16 unit is at least one byte on the wire.
    if (text.length > limit) throw tooLarge();
    return text;
  }
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > limit) {
      await reader.cancel().catch(function ignoreCancelFailure() {});
      throw tooLarge();
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  return parts.join('');
}

/** Statuses whose answer is kept short: an HTTP error body worth reading is small. */
const ERROR_BODY_BYTES = 16_384;

/**
 * The error for a non-2xx answer: type `http` with the status, or
 * `too-large` for 413 (the server refused what was sent as too large), with
 * the `type` and message of the server's error body when it has one
 * (`{ "error": { "status", "type", "message" } }`, as this package's server
 * and body-parser answer).
 */
async function httpError(response: FetchResponse, limit: number): Promise<BayeuxClientError> {
  let httpType: string | undefined;
  let detail: string | undefined;
  try {
    const body = JSON.parse(await readBody(response, Math.min(limit, ERROR_BODY_BYTES))) as { error?: { type?: unknown; message?: unknown } } | null;
    const error = body?.error;
    if (typeof error?.type === 'string') httpType = error.type;
    if (typeof error?.message === 'string') detail = error.message;
  } catch {
    // Not our server's error body (an HTML page, a proxy's text): the status says enough.
  }
  const status = response.status;
  const statusText = typeof response.statusText === 'string' && response.statusText ? ` ${response.statusText}` : '';
  const why = [httpType, detail].filter(Boolean).join(': ');
  const text = `HTTP ${status}${statusText}${why ? ` (${why})` : ''}`;
  const options = httpType === undefined ? { status } : { status, httpType };
  if (status === 413) return new BayeuxClientError('too-large', `The server refused the request as too large: ${text}`, options);
  return new BayeuxClientError('http', `The server answered ${text}`, options);
}

/** Parse a response body: a JSON array of messages, or a single message. */
export function parseMessages(text: string): BayeuxMessage[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new BayeuxClientError('protocol', 'The server sent something that is not JSON', { cause: error });
  }
  const list = messageList(value);
  if (!list.every(isMessage)) throw new BayeuxClientError('protocol', 'The server sent something that is not a Bayeux message');
  return list;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${error.message} (${cause.message})`;
    return error.message;
  }
  return String(error);
}
