/**
 * The WebSocket transport: one socket per session, each frame a JSON array
 * of messages in either direction. Uses the `WebSocket` constructor it is
 * given (the browser's, Node 22's, or the `ws` package's).
 */

import { timerDelay } from './constants.js';
import { BayeuxClientError } from './errors.js';
import { parseMessages } from './long-polling.js';
import type { BayeuxMessage } from './message.js';

/** The part of the WHATWG `WebSocket` interface the client uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: WebSocketEventLike) => void): void;
}

/** The fields of WebSocket events the client reads. */
export interface WebSocketEventLike {
  readonly type: string;
  data?: unknown;
  code?: number;
  reason?: string;
}

/** A WebSocket constructor: the global `WebSocket` or `ws`'s. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** @internal Makes a socket: the `WebSocket` option's constructor, or `ws` with `maxPayload` set. */
export type WebSocketFactory = (url: string, maxPayload: number) => WebSocketLike;

export interface WebSocketHandlers {
  /** A frame arrived. */
  messages(messages: BayeuxMessage[]): void;
  /**
   * The socket closed without {@link WebSocketTransport.close} being called,
   * or sent garbage. `refusedFrame`: the server closed it with 1009, because
   * a frame the client sent was larger than it accepts.
   */
  failed(error: BayeuxClientError, refusedFrame: boolean): void;
}

const OPEN = 1;

export class WebSocketTransport {
  #socket: WebSocketLike;
  #handlers: WebSocketHandlers;
  #closed = false;

  private constructor(socket: WebSocketLike, handlers: WebSocketHandlers) {
    this.#socket = socket;
    this.#handlers = handlers;
  }

  /**
   * Open a socket to `url` (ws: or wss:). Rejects with a `BayeuxClientError`
   * when it cannot be opened within `timeout` ms. A frame longer than
   * `maxBytes` closes the socket as a failure of type `too-large`.
   */
  static open(url: string, create: WebSocketFactory, timeout: number, maxBytes: number, handlers: WebSocketHandlers): Promise<WebSocketTransport> {
    return new Promise(function openWebSocket(resolve, reject) {
      let socket: WebSocketLike;
      try {
        socket = create(url, maxBytes);
      } catch (error) {
        reject(new BayeuxClientError('network', 'Could not open a WebSocket', { cause: error }));
        return;
      }
      const transport = new WebSocketTransport(socket, handlers);
      let opened = false;
      let settled = false;
      const fail = (error: BayeuxClientError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        transport.#closed = true;
        try { socket.close(); } catch { /* already closing */ }
        reject(error);
      };
      const timer = setTimeout(function webSocketOpenTimedOut() {
        fail(new BayeuxClientError('timeout', `The WebSocket ${url} did not open within ${timeout} ms`));
      }, timerDelay(timeout));
      socket.addEventListener('open', function onOpen() {
        if (settled) return;
        settled = true;
        opened = true;
        clearTimeout(timer);
        resolve(transport);
      });
      // Registered for the socket's whole life: an error with no listener would crash Node.
      socket.addEventListener('error', function onError(event) {
        const said = (event as { message?: unknown }).message;
        const text = typeof said === 'string' ? said : '';
        if (!opened) {
          // `ws` says why ("Unexpected server response: 404"); a browser's WebSocket never does.
          fail(new BayeuxClientError('network', `The WebSocket ${url} could not be opened${text ? ` (${text})` : ''}`));
          return;
        }
        // `ws` reports an oversized frame (maxPayload) as an error, then closes.
        if (/max(imum)? ?payload|too (big|large)/i.test(text)) {
          transport.#lost(new BayeuxClientError('too-large', `A WebSocket frame is longer than maxResponseBytes (${maxBytes} bytes)`));
        }
      });
      socket.addEventListener('close', function onClose(event) {
        if (!opened) {
          fail(new BayeuxClientError('network', `The WebSocket ${url} closed before it opened${event.code ? ` (${event.code})` : ''}`));
          return;
        }
        if (event.code === 1009) {
          // Not ours (an oversized frame we refuse closes the transport before this): the server's.
          transport.#lost(new BayeuxClientError('too-large',
            `The server closed the WebSocket (1009${event.reason ? `: ${event.reason}` : ''}): a message sent was larger than it accepts`), true);
          return;
        }
        transport.#lost(new BayeuxClientError('network', `The WebSocket closed (${event.code ?? 'no code'}${event.reason ? `: ${event.reason}` : ''})`));
      });
      socket.addEventListener('message', function onMessage(event) {
        if (transport.#closed) return;
        if (typeof event.data !== 'string') {
          transport.#lost(new BayeuxClientError('protocol', 'The server sent a binary WebSocket frame'));
          return;
        }
        // A UTF-16 unit is at least one byte on the wire, so this never refuses a frame within the limit.
        if (event.data.length > maxBytes) {
          transport.#lost(new BayeuxClientError('too-large',
            `A WebSocket frame of ${event.data.length} characters is longer than maxResponseBytes (${maxBytes} bytes)`));
          return;
        }
        let messages: BayeuxMessage[];
        try {
          messages = parseMessages(event.data);
        } catch (error) {
          transport.#lost(error as BayeuxClientError);
          return;
        }
        transport.#handlers.messages(messages);
      });
    });
  }

  /** Whether the socket is open and not closed by us. */
  get isOpen(): boolean {
    return !this.#closed && this.#socket.readyState === OPEN;
  }

  /** Send one frame; returns its length in characters. Throws a `BayeuxClientError` when the socket is not open. */
  send(messages: readonly BayeuxMessage[]): number {
    if (!this.isOpen) throw new BayeuxClientError('network', 'The WebSocket is not open');
    const frame = JSON.stringify(messages);
    this.#socket.send(frame);
    return frame.length;
  }

  /** Close the socket; the `failed` handler is not called for it. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try { this.#socket.close(1000); } catch { /* already closed */ }
  }

  #lost(error: BayeuxClientError, refusedFrame = false): void {
    if (this.#closed) return;
    this.close();
    this.#handlers.failed(error, refusedFrame);
  }
}

/** The WebSocket URL for a Bayeux HTTP URL: http: becomes ws:, https: becomes wss:. */
export function webSocketUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.protocol === 'http:') copy.protocol = 'ws:';
  else if (copy.protocol === 'https:') copy.protocol = 'wss:';
  copy.hash = '';
  return copy.href;
}
