/**
 * The benchmark's publisher: one Bayeux session that sends batches of
 * `BATCH` timestamped messages to the fan-out channel. Shared by the Faye
 * comparison (run.ts) and the scaling run (scaling.ts).
 */
import { CHANNEL, SEQ_KEY, TIME_KEY, nowUs } from './common.js';
import { openSession, type Endpoint, type Session, type WireMessage } from './wire.js';

/** Messages per published batch. */
export const BATCH = 10;

export class Publisher {
  readonly #session: Session;
  readonly #padding: string;
  #seq = 0;
  #nextId = 0;
  /** Errors the publisher's session reported. */
  errors = 0;

  private constructor(session: Session, payload: number) {
    this.#session = session;
    this.#padding = 'x'.repeat(payload);
  }

  static async open(endpoint: Endpoint, payload: number): Promise<Publisher> {
    let publisher: Publisher | undefined;
    const session = await openSession(endpoint, {
      delivery() {},
      error(what) {
        if (publisher) publisher.errors++;
        console.error(`publisher: ${what}`);
      },
    });
    publisher = new Publisher(session, payload);
    await session.handshake();
    // A session must keep connecting to stay alive (both servers expire idle ones).
    void session.connectLoop(() => undefined);
    return publisher;
  }

  /** Send one batch of `size` (default BATCH) messages in one request or frame; returns its sequence number. */
  batch(size = BATCH): number {
    const seq = ++this.#seq;
    const clientId = this.#session.clientId;
    const messages: WireMessage[] = [];
    for (let i = 0; i < size; i++) {
      // _bs and _bt first, in this order: the load clients scan for them.
      messages.push({
        channel: CHANNEL,
        clientId,
        id: 'p' + ++this.#nextId,
        data: { [SEQ_KEY]: seq, [TIME_KEY]: nowUs(), p: this.#padding },
      });
    }
    this.#session.publish(messages);
    return seq;
  }

  get sent(): number {
    return this.#seq;
  }

  close(): void {
    this.#session.close();
  }
}
