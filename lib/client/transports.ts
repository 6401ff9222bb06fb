/**
 * Which transport the client speaks over, and the two it has: long-polling
 * (always there; the handshake goes over it) and the session's WebSocket.
 *
 * At the handshake the client takes the first of its `transports` the
 * server offers and that can be opened. A WebSocket that has never opened
 * in this client (a proxy that drops upgrades, say) is not tried again
 * until no transport is left. After a network failure a WebSocket session
 * opens a new socket, or falls back to long-polling when the socket cannot
 * be opened and long-polling is allowed (it tells a dropped upgrade from a
 * server that is down).
 */

import { BayeuxClientError } from './errors.js';
import { LongPollingTransport, type FetchFunction } from './long-polling.js';
import type { BayeuxMessage, TransportName } from './message.js';
import type { ResolvedOptions } from './options.js';
import { WebSocketTransport, webSocketUrl, type WebSocketFactory, type WebSocketLike } from './websocket.js';

let fallbackWebSocket: WebSocketFactory | undefined;

/** @internal Used by the Node entry to supply `ws` (with `maxPayload`) when there is no global WebSocket. */
export function setFallbackWebSocket(factory: WebSocketFactory): void {
  fallbackWebSocket = factory;
}

/** What the transports need from the client. */
export interface TransportsHost {
  /** The client's epoch: a socket that opens after it changed is closed at once. */
  readonly epoch: number;
  /** The current socket received messages. */
  received(messages: BayeuxMessage[]): void;
  /**
   * The current socket failed (closed, sent garbage, or a frame too large);
   * `refusedFrame`: the server closed it because a frame sent was too large.
   */
  socketFailed(error: BayeuxClientError, refusedFrame: boolean): void;
  /** The transport in use changed (told once per change). */
  changed(name: TransportName): void;
}

export class Transports {
  readonly #url: URL;
  readonly #options: ResolvedOptions;
  readonly #host: TransportsHost;
  readonly #createWebSocket: WebSocketFactory | undefined;
  readonly #lp: LongPollingTransport;
  #ws: WebSocketTransport | undefined;
  /** The transport chosen at the handshake, and the one in use now. */
  #session: TransportName = 'long-polling';
  #current: TransportName | undefined;
  /** The transport last told to the host. */
  #announced: TransportName | undefined;
  #webSocketWorked = false;
  #webSocketBroken = false;
  /** What the server offered at the last handshake. */
  #offered: string[] = [];
  /** Why the last WebSocket could not be opened, for the `no-transport` error. */
  #webSocketFailure: Error | undefined;

  constructor(url: URL, options: ResolvedOptions, host: TransportsHost) {
    this.#url = url;
    this.#options = options;
    this.#host = host;
    const Socket = options.WebSocket
      ?? (typeof globalThis.WebSocket === 'function' ? globalThis.WebSocket : undefined);
    this.#createWebSocket = Socket ? function createWebSocket(socketUrl: string): WebSocketLike { return new Socket(socketUrl); } : fallbackWebSocket;
    const fetchFunction: FetchFunction | undefined = options.fetch
      ?? (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined);
    this.#lp = new LongPollingTransport({
      url: url.href,
      fetch: fetchFunction ?? function noFetch() {
        return Promise.reject(new TypeError('No fetch: pass the fetch option'));
      },
      headers: options.headers,
      credentials: options.credentials,
      maxResponseBytes: options.maxResponseBytes,
    });
  }

  /** The transport in use, while the client has a session. */
  get current(): TransportName | undefined {
    return this.#current;
  }

  /** The transport chosen at the last handshake. */
  get session(): TransportName {
    return this.#session;
  }

  /** What the server offered at the last handshake, for messages. */
  get offered(): readonly string[] {
    return this.#offered;
  }

  /** Why the last WebSocket could not be opened, if one could not. */
  get webSocketFailure(): Error | undefined {
    return this.#webSocketFailure;
  }

  /**
   * A handshake succeeded: choose the transport (opening the WebSocket if
   * that is the one) and use it. Resolves with its name, or undefined when
   * none can be used, or the epoch changed while a socket opened.
   */
  async choose(supported: unknown, epoch: number): Promise<TransportName | undefined> {
    this.#offered = Array.isArray(supported)
      ? supported.filter((name): name is string => typeof name === 'string')
      : ['long-polling'];
    let chosen: TransportName | undefined;
    for (const name of this.#options.transports) {
      if (!this.#offered.includes(name)) continue;
      if (name === 'long-polling') {
        chosen = name;
        break;
      }
      if (!this.#createWebSocket || this.#webSocketBroken) continue;
      try {
        await this.#openWebSocket(epoch);
        chosen = name;
        break;
      } catch (error) {
        if (epoch !== this.#host.epoch) return undefined;
        this.#webSocketFailure = error as Error;
        // Never opened in this client: a proxy that drops upgrades, say. Stop trying.
        if (!this.#webSocketWorked) this.#webSocketBroken = true;
      }
    }
    if (epoch !== this.#host.epoch) return undefined;
    if (!chosen) {
      // Nothing left: the next handshake tries the WebSocket again.
      this.#webSocketBroken = false;
      return undefined;
    }
    this.#session = chosen;
    this.use(chosen);
    return chosen;
  }

  /**
   * After a network failure, a WebSocket session needs a new socket: open
   * one, or fall back to long-polling. Rejects when neither is possible;
   * resolves without a change when the epoch changed meanwhile.
   */
  async reopen(epoch: number): Promise<void> {
    try {
      await this.#openWebSocket(epoch);
      this.use('websocket');
    } catch (error) {
      if (epoch !== this.#host.epoch) return;
      if (!this.#options.transports.includes('long-polling') || !this.#offered.includes('long-polling')) throw error;
      this.use('long-polling');
    }
  }

  /** Speak over `name` from now on (closing the socket when it is not the WebSocket). */
  use(name: TransportName): void {
    this.#current = name;
    if (name !== 'websocket') {
      this.#ws?.close();
      this.#ws = undefined;
    }
    if (this.#announced === name) return;
    this.#announced = name;
    this.#host.changed(name);
  }

  /** The session ended: no transport in use. */
  forget(): void {
    this.#current = undefined;
  }

  /** Send one WebSocket frame; returns its length. Throws a `BayeuxClientError` when the socket is not open. */
  sendFrame(messages: readonly BayeuxMessage[]): number {
    if (!this.#ws) throw new BayeuxClientError('network', 'The WebSocket is not open');
    return this.#ws.send(messages);
  }

  /** POST `messages`; resolves with what the server answered. */
  post(messages: readonly BayeuxMessage[], timeout: number): Promise<BayeuxMessage[]> {
    return this.#lp.send(messages, timeout).promise;
  }

  /** Close the socket and cancel every request: what is in flight is stale. */
  closeAll(): void {
    this.#ws?.close();
    this.#ws = undefined;
    this.#lp.cancelAll();
  }

  async #openWebSocket(epoch: number): Promise<void> {
    const create = this.#createWebSocket;
    if (!create) throw new BayeuxClientError('no-transport', 'No WebSocket constructor');
    const transport: WebSocketTransport = await WebSocketTransport.open(webSocketUrl(this.#url), create, this.#options.maxNetworkDelay, this.#options.maxResponseBytes, {
      messages: (messages) => {
        if (this.#ws === transport) this.#host.received(messages);
      },
      failed: (error, refusedFrame) => {
        if (this.#ws !== transport) return;
        this.#ws = undefined;
        this.#host.socketFailed(error, refusedFrame);
      },
    });
    if (epoch !== this.#host.epoch) {
      transport.close();
      throw new BayeuxClientError('cancelled', 'The session changed while the WebSocket opened');
    }
    this.#ws?.close();
    this.#ws = transport;
    this.#webSocketWorked = true;
    this.#webSocketFailure = undefined;
  }
}
