/**
 * The positions of WebSocket pushes, written lazily: a push to a session
 * without acks takes its messages from memory, and the positions it
 * reached are written to Redis by the next flush (every `positionFlush`
 * ms), for every session pushed to meanwhile at once, instead of one
 * script per session and push. A session that moves to another node
 * before the flush may get again what it was pushed since the last one.
 */
import type { LocalSession } from './local-session.js';
import type { Keys } from './keys.js';
import { Scripts } from './lua/index.js';
import { positionsArgs, pushPositions } from './lua/session.js';
import type { Runner } from './runner.js';

/** Most sessions one script writes: no script holds Redis for long. */
const SESSIONS_PER_SCRIPT = 500;

interface Call {
  readonly keys: string[];
  readonly args: string[];
  sessions: number;
}

export class LazyPositions {
  readonly #runner: Runner;
  readonly #keys: Keys;
  /** Sessions whose positions a lazy take left unwritten. */
  readonly #unflushed = new Set<LocalSession>();
  #flushing = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(runner: Runner, keys: Keys) {
    this.#runner = runner;
    this.#keys = keys;
  }

  /** Flush every `interval` ms. */
  start(interval: number): void {
    this.#timer = setInterval(() => void this.flush(), interval);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A lazy take left `session.lazy` to write. */
  add(session: LocalSession): void {
    if (session.lazy) this.#unflushed.add(session);
  }

  /** Write the positions lazy takes left: one script on a single Redis, one per bucket (slot) on a cluster. */
  async flush(): Promise<void> {
    if (this.#unflushed.size === 0 || this.#flushing || !this.#runner.ready) return;
    this.#flushing = true;
    const sessions = [...this.#unflushed];
    this.#unflushed.clear();
    const cluster = this.#runner.isCluster;
    const open = new Map<string, Call>();
    const calls: Call[] = [];
    const written: Array<[LocalSession, Map<string, string>]> = [];
    for (const session of sessions) {
      const lazy = session.lazy;
      if (!lazy || session.gone) continue;
      session.lazy = undefined;
      written.push([session, lazy]);
      const bucket = this.#keys.bucket(session.id);
      const group = cluster ? bucket : '';
      let call = open.get(group);
      if (!call) open.set(group, (call = { keys: [], args: positionsArgs(this.#keys.nodeChannelPrefix), sessions: 0 }));
      let index = call.keys.indexOf(bucket);
      if (index < 0) index = call.keys.push(bucket) - 1;
      pushPositions(call.args, index + 1, session.id, session.gen, lazy);
      if (++call.sessions >= SESSIONS_PER_SCRIPT) {
        calls.push(call);
        open.delete(group);
      }
    }
    calls.push(...open.values());
    try {
      await Promise.all(calls.map(({ keys, args }) => this.#runner.run(Scripts.positions, keys, args)));
    } catch (err) {
      // Not written: try again with the next flush, unless a newer take wrote them.
      for (const [session, lazy] of written) {
        if (session.gone) continue;
        if (!session.lazy) session.lazy = lazy;
        else for (const [src, position] of lazy) if (!session.lazy.has(src)) session.lazy.set(src, position);
        this.#unflushed.add(session);
      }
      this.#runner.failed('writing positions', err);
    } finally {
      this.#flushing = false;
    }
  }
}
