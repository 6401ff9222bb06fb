/**
 * A connection with nothing behind it, for tests that hand messages to the
 * server core directly (as Faye's specs do): no socket, no HTTP request.
 * It is a long-polling connection that cannot push, so every message a
 * client gets travels in a reply; and its client can be made to go away,
 * as an HTTP client that closes its socket during a held connect.
 */
import type { AbortListener, Connection } from '../../lib/server/types.js';

/** A long-polling connection without a socket. */
export class FakeConnection implements Connection {
  readonly transport = 'long-polling' as const;
  readonly ip: string;
  #gone = false;
  #listener: AbortListener | undefined;

  constructor(ip = '127.0.0.1') {
    this.ip = ip;
  }

  aborted(): boolean {
    return this.#gone;
  }

  onAbort(listener: AbortListener): void {
    this.#listener = listener;
  }

  offAbort(listener: AbortListener): void {
    if (this.#listener === listener) this.#listener = undefined;
  }

  /** The client goes away: whoever listens is told, once. */
  abort(): void {
    this.#gone = true;
    const listener = this.#listener;
    this.#listener = undefined;
    listener?.handleEvent();
  }
}
