/**
 * Expiry, once per cluster: a session script that finds its session past
 * its deadline removes it and says so (status -1, or -2 with subscriptions
 * left to clean); the node that ran it reports the expiry and removes the
 * session from its patterns' subscriber sets a page at a time. Each node
 * sweeps every bucket's deadlines, so sessions nobody uses expire too.
 */
import { EngineUnavailableError } from '../engine.js';
import { describeError, list, text, texts } from './replies.js';
import type { Keys } from './keys.js';
import { PatternKey, SessionStatus } from './lua/contract.js';
import { MAX_PAGES, PAGE } from './scan.js';
import { Scripts } from './lua/index.js';
import { parseSweep, sweepArgs } from './lua/session.js';
import type { ResolvedOptions } from './options.js';
import type { Runner } from './runner.js';

export interface ExpiryHost {
  /** Stop holding a session here. */
  forget(clientId: string): void;
  /** Forget the sessions held here that nobody touched since `before` (ms since the epoch). */
  forgetIdle(before: number): void;
  /** EngineHost.expired */
  expired(clientId: string): void;
  /** How long, in ms, nobody may touch a session before it is forgotten here. */
  retention(): number;
}

export class Expiry {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #options: ResolvedOptions;
  readonly #host: ExpiryHost;
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;
  #stopped = false;

  constructor(runner: Runner, keys: Keys, options: ResolvedOptions, host: ExpiryHost) {
    this.#runner = runner;
    this.#keys = keys;
    this.#options = options;
    this.#host = host;
  }

  /** Sweep every `interval` ms. */
  start(interval: number): void {
    this.#timer = setInterval(() => void this.sweep(), Math.max(1, interval));
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Whether a session script found the session live. Not a pure check:
   * for any other status it forgets the local copy and, when the script
   * expired the session, reports the expiry (and buries its grave).
   */
  checkLive(clientId: string, status: number): boolean {
    if (status === SessionStatus.Live) return true;
    this.#host.forget(clientId);
    if (status === SessionStatus.Expired || status === SessionStatus.ExpiredWithGrave) void this.#expire(clientId, status === SessionStatus.ExpiredWithGrave);
    return false;
  }

  /** Remove a gone session from its patterns' subscriber sets, a page at a time. */
  async bury(clientId: string): Promise<void> {
    const grave = this.#keys.grave(clientId);
    let cursor = '0';
    for (let page = 0; page < MAX_PAGES; page++) {
      const reply = list(await this.#runner.command(grave, ['HSCAN', grave, cursor, 'COUNT', String(PAGE)]));
      cursor = text(reply[0]);
      const flat = texts(reply[1]);
      const removals: Promise<void>[] = [];
      for (let i = 0; i < flat.length; i += 2) removals.push(this.removeSubscriber(flat[i] as string, clientId));
      await Promise.all(removals);
      if (cursor === '0') break;
    }
    await this.#runner.command(grave, ['UNLINK', grave]);
  }

  async removeSubscriber(pattern: string, clientId: string): Promise<void> {
    const key = this.#keys.pattern(pattern) + PatternKey.Subs;
    await this.#runner.command(key, ['SREM', key, clientId]);
  }

  async sweep(): Promise<void> {
    if (this.#sweeping || this.#stopped || !this.#runner.ready) return;
    this.#sweeping = true;
    try {
      const batch = this.#options.sweepBatch;
      await Promise.all(this.#keys.buckets().map(async (bucket) => {
        for (let round = 0; round < 100 && !this.#stopped; round++) {
          const swept = parseSweep(await this.#runner.run(Scripts.sweep, bucket, sweepArgs(this.#keys.nodeChannelPrefix, batch)));
          const expiring: Promise<void>[] = [];
          for (const { id, grave } of swept) {
            this.#host.forget(id);
            expiring.push(this.#expire(id, grave));
          }
          await Promise.all(expiring);
          if (swept.length < batch) break;
        }
      }));
      // Sessions held here that nobody touched for long: another node would have said so; forget them anyway.
      this.#host.forgetIdle(Date.now() - this.#host.retention());
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) this.#runner.log('warn', `express-bayeux: Redis sweep failed: ${describeError(err)}`);
    } finally {
      this.#sweeping = false;
    }
  }

  async #expire(clientId: string, bury: boolean): Promise<void> {
    if (bury) {
      await this.bury(clientId).catch((err: unknown) => {
        if (!(err instanceof EngineUnavailableError)) {
          this.#runner.log('warn', `express-bayeux: Redis engine failed removing subscriptions: ${this.#runner.scrub(describeError(err))}`);
        }
      });
    }
    try {
      this.#host.expired(clientId);
    } catch (err) {
      this.#runner.log('warn', `express-bayeux: EngineHost.expired threw: ${describeError(err)}`);
    }
  }
}
