/**
 * A lean raw Socket.IO subscriber for load generation, the counterpart of
 * bench/wire.ts's Bayeux sessions: Engine.IO 4 over a bare `ws` socket
 * (no polling, no upgrade), the Socket.IO 5 protocol's main-namespace
 * CONNECT, one `join` event with an acknowledgement, pings answered.
 * Event frames (`42["m",{...}]`) are not parsed: deliveries are found by
 * the marker keys every benchmark message's data starts with, as for
 * Bayeux frames. socket.io-client would cost the load clients a Manager,
 * an engine and timers per socket; the server sees the same frames.
 */
import { WebSocket, type RawData } from 'ws';
import { nowUs } from './common.js';
import { scanDeliveries, type SessionHooks } from './wire.js';

const OPEN_TIMEOUT_MS = 15_000;
const ACK_TIMEOUT_MS = 45_000;

export class SioSubscriber {
  /** There is no connect loop: never "connecting" (for the load client's status). */
  readonly connecting = false;
  readonly #ws: WebSocket;
  readonly #hooks: SessionHooks;
  #nextAck = 0;
  readonly #acks = new Map<number, { resolve: () => void; timer: NodeJS.Timeout }>();
  #connected: (() => void) | undefined;

  private constructor(ws: WebSocket, hooks: SessionHooks) {
    this.#ws = ws;
    this.#hooks = hooks;
    ws.on('message', (data) => this.#frame(data));
    ws.on('error', (err) => hooks.error(`socket: ${err.message}`));
    ws.on('close', () => {
      for (const [id, a] of this.#acks) {
        clearTimeout(a.timer);
        this.#acks.delete(id);
      }
    });
  }

  /** Open the socket and connect to the main namespace. */
  static open(port: number, path: string, hooks: SessionHooks): Promise<SioSubscriber> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?EIO=4&transport=websocket`, { perMessageDeflate: false });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error('socket.io open timed out'));
      }, OPEN_TIMEOUT_MS);
      const s = new SioSubscriber(ws, hooks);
      s.#connected = () => {
        clearTimeout(timer);
        resolve(s);
      };
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('close', () => {
        clearTimeout(timer);
        reject(new Error('socket.io socket closed during open'));
      });
    });
  }

  /** Join `room` (the server's `join` handler) and wait for its acknowledgement. */
  join(room: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const id = ++this.#nextAck;
      const timer = setTimeout(() => {
        this.#acks.delete(id);
        reject(new Error('join timed out'));
      }, ACK_TIMEOUT_MS);
      this.#acks.set(id, { resolve, timer });
      this.#ws.send(`42${id}${JSON.stringify(['join', room])}`);
    });
  }

  #frame(data: RawData): void {
    const now = nowUs();
    const text = data.toString();
    switch (text.charCodeAt(0)) {
      case 0x30: // '0' Engine.IO open: connect to the main namespace
        this.#ws.send('40');
        return;
      case 0x32: // '2' ping
        this.#ws.send('3');
        return;
      case 0x31: // '1' close
        this.#ws.terminate();
        return;
      case 0x34: // '4' message: a Socket.IO packet
        break;
      default:
        return;
    }
    switch (text.charCodeAt(1)) {
      case 0x32: // EVENT
        scanDeliveries(text, now, this.#hooks);
        return;
      case 0x30: // CONNECT acknowledged
        this.#connected?.();
        this.#connected = undefined;
        return;
      case 0x33: { // ACK: 43<id>[...]
        const id = parseInt(text.slice(2), 10);
        const a = this.#acks.get(id);
        if (a) {
          this.#acks.delete(id);
          clearTimeout(a.timer);
          a.resolve();
        }
        return;
      }
      case 0x34: // CONNECT_ERROR
      case 0x31: // DISCONNECT
        this.#hooks.error(`socket.io: ${text.slice(0, 200)}`);
        return;
    }
  }

  close(): void {
    this.#ws.terminate();
  }
}
