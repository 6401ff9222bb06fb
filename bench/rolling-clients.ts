/**
 * The subscribers of the rolling-restart bench (bench/rolling.ts): package
 * clients with acks, half WebSocket and half long-polling, counting each
 * message they hand to the application. In the bench's process, or in
 * child processes of their own (`--client-procs`), so that thousands of
 * clients do not share one event loop with the bench.
 *
 * As a child (forked by rolling.ts) it is driven over IPC: `start` →
 * `ready`, `phase`, `report` → the group's report, `stop`.
 */
import { BayeuxClient } from '../lib/client/node.js';
import { Histogram, type HistogramData, nowUs } from './common.js';

export const CHANNEL = '/bench/roll';

export type Phase = 'setup' | 'before' | 'during' | 'after';

/** One message of the bench: its sequence number and when it was published (`nowUs()`, one clock for every process). */
export interface Tick {
  seq: number;
  at: number;
}

/** What a group of clients saw, given what was published. */
export interface GroupReport {
  clients: number;
  /** Deliveries that never came, summed over clients. */
  lost: number;
  /** Of those, the ones missed by clients whose session was lost during the roll. */
  lostInLostSessions: number;
  duplicates: number;
  /** Sessions lost after setup (the client handshook again). */
  sessionsLost: number;
  /** Clients whose session was lost after setup. */
  clientsWhoseSessionWasLost: number;
  /** Clients still waiting for messages when the report was asked for. */
  incomplete: number;
  /** First few clients that missed messages. */
  missing: string[];
  before: HistogramData;
  during: HistogramData;
}

export class RollingClients {
  readonly #clients: BayeuxClient[] = [];
  readonly #seen: Array<Map<number, number>> = [];
  readonly #relost = new Set<number>();
  readonly #before = new Histogram();
  readonly #during = new Histogram();
  #phase: Phase = 'setup';
  /** Per client, what happened to it after setup (for the report of a client that missed messages). */
  readonly #history: string[][] = [];
  #t0 = Date.now();
  #sessionsLost = 0;

  /** Subscribe `count` clients (client numbers `from`…), 50 at a time. */
  async start(url: string, from: number, count: number, recover: boolean): Promise<void> {
    for (let i = 0; i < count; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, count - i) }, async (_, k) => {
        const n = i + k;
        const counts = new Map<number, number>();
        this.#seen[n] = counts;
        const client = new BayeuxClient(url, { transports: (from + n) % 2 === 0 ? ['websocket'] : ['long-polling'] });
        const history: string[] = [];
        this.#history[n] = history;
        const note = (what: string) => {
          if (this.#phase !== 'setup' && history.length < 40) history.push(`${((Date.now() - this.#t0) / 1000).toFixed(1)}s ${what}`);
        };
        client.on('error', (error) => note(`error ${error.message.slice(0, 80)}`));
        // A new clientId is a new session (the old one expired, or the node reached did not know it), however the client
        // learnt it was gone (while connected, or while reconnecting): what was published meanwhile is lost unless it recovers.
        let sessionId: string | undefined;
        client.on('connected', ({ clientId, transport }) => {
          note(`connected ${transport}`);
          if (sessionId !== undefined && clientId !== sessionId && this.#phase !== 'setup') {
            this.#sessionsLost++;
            this.#relost.add(n);
          }
          sessionId = clientId;
        });
        client.on('transport', (name) => note(`transport ${name}`));
        client.on('disconnected', (event) => note(`disconnected ${event.reason}`));
        this.#clients[n] = client;
        await client.subscribe(CHANNEL, (data) => {
          const { seq, at } = data as Tick;
          counts.set(seq, (counts.get(seq) ?? 0) + 1);
          if (this.#phase === 'before') this.#before.record(nowUs() - at);
          else if (this.#phase === 'during') this.#during.record(nowUs() - at);
        }, recover ? { recover: true } : undefined);
      }));
    }
  }

  set phase(phase: Phase) {
    if (this.#phase === 'setup') this.#t0 = Date.now();
    this.#phase = phase;
  }

  /** Whether every client has every message published (but `failed`), or not yet. */
  complete(sent: number, failed: ReadonlySet<number>): boolean {
    return this.#seen.every((counts) => counts.size >= sent - failed.size);
  }

  report(sent: number, failed: ReadonlySet<number>): GroupReport {
    let lost = 0;
    let lostInLostSessions = 0;
    let duplicates = 0;
    let incomplete = 0;
    const missing: string[] = [];
    for (const [i, counts] of this.#seen.entries()) {
      let own = 0;
      for (let seq = 0; seq < sent; seq++) {
        if (failed.has(seq)) continue;
        const n = counts.get(seq) ?? 0;
        if (n === 0) own++;
        else duplicates += n - 1;
      }
      lost += own;
      if (own > 0) incomplete++;
      if (this.#relost.has(i)) lostInLostSessions += own;
      const client = this.#clients[i];
      if (own > 0 && missing.length < 5) {
        const got = [...counts.keys()].sort((a, b) => a - b);
        const first = got.find((seq, k) => seq !== k);
        missing.push(`${client?.transport ?? '?'} ${client?.state ?? '?'}${this.#relost.has(i) ? ' (session lost)' : ''}: ${own} missing, ` +
          `got ${got.length} (up to ${got[got.length - 1] ?? '-'}; first gap after ${first === undefined ? got.length - 1 : got.indexOf(first) - 1})` +
          (missing.length < 2 ? ` [${this.#history[i]?.join('; ') ?? ''}]` : ''));
      }
    }
    return {
      clients: this.#clients.length, lost, lostInLostSessions, duplicates, sessionsLost: this.#sessionsLost,
      clientsWhoseSessionWasLost: this.#relost.size, incomplete, missing, before: this.#before.toJSON(), during: this.#during.toJSON(),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.disconnect().catch(() => undefined)));
  }
}

/** parent → child */
export type ClientsRequest =
  | { type: 'start'; url: string; from: number; count: number; recover: boolean }
  | { type: 'phase'; phase: Phase }
  | { type: 'complete'; sent: number; failed: number[] }
  | { type: 'report'; sent: number; failed: number[] }
  | { type: 'stop' };

/** child → parent */
export type ClientsReply =
  | { type: 'ready' }
  | { type: 'complete'; complete: boolean }
  | { type: 'report'; report: GroupReport }
  | { type: 'stopped' };

if (process.send && process.argv.includes('--child')) {
  const group = new RollingClients();
  const send = (reply: ClientsReply) => process.send?.(reply);
  process.on('message', (request: ClientsRequest) => {
    void (async () => {
      switch (request.type) {
        case 'start':
          await group.start(request.url, request.from, request.count, request.recover);
          send({ type: 'ready' });
          break;
        case 'phase':
          group.phase = request.phase;
          break;
        case 'complete':
          send({ type: 'complete', complete: group.complete(request.sent, new Set(request.failed)) });
          break;
        case 'report':
          send({ type: 'report', report: group.report(request.sent, new Set(request.failed)) });
          break;
        case 'stop':
          await group.stop();
          send({ type: 'stopped' });
          process.exit(0);
      }
    })();
  });
  // The child never outlives the bench.
  process.on('disconnect', () => process.exit(0));
}
