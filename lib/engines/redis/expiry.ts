/**
 * Expiry, once per cluster: a session script that finds its session past
 * its deadline removes it and says so (status -1, or -2 with subscriptions
 * left to clean); the node that ran it reports the expiry (`ExpiryReports`)
 * and removes the session from its patterns' subscriber sets a page at a
 * time. Each node sweeps every bucket's deadlines (`Sweeper`), so sessions
 * nobody uses expire too.
 *
 * Who knows whom: `LocalSessions` finds expiries in script statuses and
 * hands them to `ExpiryReports`; the `Sweeper` finds them itself and tells
 * both. Neither report nor sweep needs the other, so nothing is wired late.
 */
import { EngineUnavailableError } from '../engine.js';
import { describeError, list, text, texts } from './replies.js';
import type { Keys } from './keys.js';
import { MAX_PAGES, PAGE } from './scan.js';
import { Scripts } from './lua/index.js';
import { parseSweep, sweepArgs } from './lua/session.js';
import { parseRemoveSubscriber } from './lua/presence.js';
import type { ResolvedOptions } from './options.js';
import type { Runner } from './runner.js';
import type { EngineSettings, HostLink } from './settings.js';

/** The node-local copies a sweep must drop (`LocalSessions`). */
export interface SessionCache {
  /** Stop holding a session here. */
  forget(clientId: string): void;
  /** Forget the sessions held here that nobody touched since `before` (ms since the epoch). */
  forgetIdle(before: number): void;
}

/** What follows a session's removal from Redis: its grave cleaned, the Server told. */
export class ExpiryReports {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #host: HostLink;

  constructor(runner: Runner, keys: Keys, host: HostLink) {
    this.#runner = runner;
    this.#keys = keys;
    this.#host = host;
  }

  /** A script expired the session (`grave`: its subscriptions wait in a grave): clean up, then tell the Server. */
  async expired(clientId: string, grave: boolean): Promise<void> {
    if (grave) {
      await this.bury(clientId).catch((err: unknown) => this.#runner.failed('removing subscriptions', err));
    }
    this.#host.expired(clientId);
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

  /**
   * Remove a session from a pattern's subscribers and, on a presence
   * channel, from its presence: a leave is reported unless `report` is
   * false (a subscribe that failed, whose join was never reported).
   */
  async removeSubscriber(pattern: string, clientId: string, report = true): Promise<void> {
    const removed = parseRemoveSubscriber(await this.#runner.run(Scripts.removeSubscriber, this.#keys.patternBase(pattern), [clientId]));
    if (report && removed && removed.version > 0) this.#host.presence({ type: 'leave', channel: pattern, clientId, user: removed.user, version: removed.version });
  }
}

/** Every `sweepInterval` ms, expire the sessions past their deadline in every bucket. */
export class Sweeper {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #options: ResolvedOptions;
  readonly #settings: EngineSettings;
  readonly #cache: SessionCache;
  readonly #reports: ExpiryReports;
  #timer: NodeJS.Timeout | undefined;
  #sweeping = false;
  #stopped = false;

  constructor(runner: Runner, keys: Keys, options: ResolvedOptions, settings: EngineSettings, cache: SessionCache, reports: ExpiryReports) {
    this.#runner = runner;
    this.#keys = keys;
    this.#options = options;
    this.#settings = settings;
    this.#cache = cache;
    this.#reports = reports;
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
            this.#cache.forget(id);
            expiring.push(this.#reports.expired(id, grave));
          }
          await Promise.all(expiring);
          if (swept.length < batch) break;
        }
      }));
      // Sessions held here that nobody touched for long: another node would have said so; forget them anyway.
      this.#cache.forgetIdle(Date.now() - this.#settings.retention);
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) this.#runner.log('warn', `express-bayeux: Redis sweep failed: ${describeError(err)}`);
    } finally {
      this.#sweeping = false;
    }
  }
}
