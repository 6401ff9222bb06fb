/**
 * The rooms benchmark's publisher: batches of BATCH timestamped messages
 * sent round-robin over C channels (rooms), one batch at a time, each
 * waited for until the server answered it.
 *
 *   express-bayeux: one Bayeux session (bench/wire.ts) publishing the batch
 *                   in one WebSocket frame or HTTP request; done when the
 *                   server has replied to all of the batch's messages.
 *   Socket.IO:      socket.io-client, one `pub` event with an
 *                   acknowledgement per batch; the server emits each
 *                   message to its room, then acknowledges.
 */
import { io, type Socket } from 'socket.io-client';
import { SEQ_KEY, TIME_KEY, nowUs, type ServerKind, type TransportKind } from './common.js';
import { BATCH } from './publisher.js';
import type { SioMessage } from './sio.js';
import { within } from '../test/helpers/within.js';
import { openSession, type Session, type WireMessage } from './wire.js';

/** A batch not answered within this long fails the run. */
const REPLY_TIMEOUT_MS = 15_000;

export interface RoomsPublisher {
  /** Send the next batch and wait for the server's answer; resolves to its sequence number. */
  batch(): Promise<number>;
  /** Batches sent so far (the latest sequence number). */
  readonly sent: number;
  /** Batches the server answered so far. */
  readonly acked: number;
  close(): void;
}

/** The data of one message: the two marker keys first, in this order (the load clients scan for them). */
function data(seq: number, padding: string): Record<string, unknown> {
  return { [SEQ_KEY]: seq, [TIME_KEY]: nowUs(), p: padding };
}

class BayeuxRoomsPublisher implements RoomsPublisher {
  #session!: Session;
  readonly #channels: number;
  readonly #padding: string;
  #next = 0;
  sent = 0;
  acked = 0;
  /** Replies still missing for the batch in flight, and its resolver. */
  #waiting: { prefix: string; left: number; resolve: () => void } | undefined;

  constructor(channels: number, payload: number) {
    this.#channels = channels;
    this.#padding = 'x'.repeat(payload);
  }

  async open(transport: TransportKind, port: number, path: string): Promise<void> {
    this.#session = await openSession({ transport, port, path }, {
      delivery() {},
      error(what) {
        console.error(`publisher: ${what}`);
      },
      reply: (id, successful) => {
        const w = this.#waiting;
        if (!w || !id.startsWith(w.prefix)) return;
        if (!successful) console.error(`publisher: publish ${id} refused`);
        if (--w.left === 0) {
          this.#waiting = undefined;
          w.resolve();
        }
      },
    });
    await this.#session.handshake();
    // A session must keep connecting to stay alive.
    void this.#session.connectLoop(() => undefined);
  }

  async batch(): Promise<number> {
    const seq = ++this.sent;
    const clientId = this.#session.clientId;
    const prefix = `b${seq}.`;
    const messages: WireMessage[] = [];
    for (let i = 0; i < BATCH; i++) {
      const channel = `/bench/r/${this.#next++ % this.#channels}`;
      messages.push({ channel, clientId, id: prefix + i, data: data(seq, this.#padding) });
    }
    const answered = new Promise<void>((resolve) => {
      this.#waiting = { prefix, left: BATCH, resolve };
    });
    this.#session.publish(messages);
    await within(answered, REPLY_TIMEOUT_MS, `the reply to publish batch ${seq}`);
    this.acked++;
    return seq;
  }

  close(): void {
    this.#session.close();
  }
}

class SioRoomsPublisher implements RoomsPublisher {
  readonly #socket: Socket;
  readonly #channels: number;
  readonly #padding: string;
  #next = 0;
  sent = 0;
  acked = 0;

  constructor(socket: Socket, channels: number, payload: number) {
    this.#socket = socket;
    this.#channels = channels;
    this.#padding = 'x'.repeat(payload);
  }

  static open(port: number, path: string, channels: number, payload: number): Promise<SioRoomsPublisher> {
    const socket = io(`http://127.0.0.1:${port}`, { path, transports: ['websocket'], reconnection: false });
    return within(
      new Promise<SioRoomsPublisher>((resolve, reject) => {
        socket.once('connect', () => resolve(new SioRoomsPublisher(socket, channels, payload)));
        socket.once('connect_error', reject);
      }),
      15_000,
      'the Socket.IO publisher to connect',
    ).catch((err: unknown) => {
      socket.close();
      throw err;
    });
  }

  async batch(): Promise<number> {
    const seq = ++this.sent;
    const messages: SioMessage[] = [];
    for (let i = 0; i < BATCH; i++) messages.push({ r: `r${this.#next++ % this.#channels}`, d: data(seq, this.#padding) });
    await this.#socket.timeout(REPLY_TIMEOUT_MS).emitWithAck('pub', messages);
    this.acked++;
    return seq;
  }

  close(): void {
    this.#socket.close();
  }
}

export async function openRoomsPublisher(
  kind: ServerKind, transport: TransportKind, port: number, path: string, channels: number, payload: number,
): Promise<RoomsPublisher> {
  if (kind === 'sio' || kind === 'sio-redis') return SioRoomsPublisher.open(port, path, channels, payload);
  const p = new BayeuxRoomsPublisher(channels, payload);
  await p.open(transport, port, path);
  return p;
}
