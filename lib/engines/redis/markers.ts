/**
 * Data loss: a Redis (or a Cluster shard) that restarted empty. Sessions
 * whose keys it held are gone, and their clients get `402` and handshake
 * again; but subscribers whose sessions live elsewhere, on patterns whose
 * keys it held, were silently dropped from the patterns' subscriber sets
 * and would hear nothing more.
 *
 * Each node writes a marker key into every primary (a key whose slot the
 * primary serves: `<prefix>{mk<n>}`, the first n that lands there), and
 * reads them back every {@link CHECK_MS} ms. A marker gone, or replaced by
 * another node's, means that primary lost its data: the node says so in
 * the log, counts it (`RedisEngine.dataLoss`), and the node that writes
 * the marker again puts every remaining session back in the subscriber
 * sets of its patterns, from the sessions' own subscription lists (one
 * page of sessions per script, one SADD per pattern and page). A new log
 * has ids after the old one's (they are times), so the sessions' positions
 * still hold: they receive what is published from then on.
 */
import { randomBytes } from 'node:crypto';
import { EngineUnavailableError } from '../engine.js';
import { describeError, text } from './replies.js';
import { MAX_PAGES, PAGE } from './scan.js';
import { slotOf, type Keys } from './keys.js';
import { PatternKey } from './lua/contract.js';
import { Scripts } from './lua/index.js';
import { parseRestoreScan, restoreScanArgs } from './lua/session.js';
import type { EngineDataLoss as DataLoss } from '../engine.js';
import type { Runner } from './runner.js';

/** How often a node reads the markers, in ms. */
export const CHECK_MS = 2000;
/** Candidate marker keys tried to find one per primary. */
const MAX_CANDIDATES = 16_384;

export type { EngineDataLoss as DataLoss } from '../engine.js';

export class DataLossWatch {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #nodeChannelPrefix: string;
  /** marker key → the value this node last saw in it */
  readonly #seen = new Map<string, string>();
  /** The primaries the marker keys were chosen for, and the keys. */
  #layout = '';
  #markers: Array<{ key: string; where: string }> = [];
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #count = 0;
  #last: DataLoss['last'];

  constructor(runner: Runner, keys: Keys) {
    this.#runner = runner;
    this.#keys = keys;
    this.#nodeChannelPrefix = keys.nodeChannelPrefix;
  }

  get report(): DataLoss {
    return { count: this.#count, last: this.#last };
  }

  start(): void {
    this.#timer = setInterval(() => void this.check(), CHECK_MS);
    this.#timer.unref();
    void this.check();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Read every marker once (one check at a time); never rejects. */
  check(): Promise<void> {
    if (this.#checking) return this.#checking;
    if (!this.#runner.ready) return Promise.resolve();
    this.#checking = this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    await Promise.all(this.#markerKeys().map(async ({ key, where }) => {
      try {
        await this.#checkOne(key, where);
      } catch (err) {
        // A primary that is away now is checked again next time.
        if (!(err instanceof EngineUnavailableError)) this.#runner.log('warn', `express-bayeux: Redis engine failed checking for data loss: ${this.#runner.scrub(describeError(err))}`);
      }
    }));
  }

  async #checkOne(key: string, where: string): Promise<void> {
    const known = this.#seen.get(key);
    const value = await this.#runner.command(key, ['GET', key]);
    if (value !== null && value !== undefined) {
      const now = text(value);
      this.#seen.set(key, now);
      // Another node found the loss first and wrote the marker again.
      if (known !== undefined && now !== known) this.#lost(where, 0);
      return;
    }
    const mine = `${Date.now()}.${randomBytes(6).toString('base64url')}`;
    const set = await this.#runner.command(key, ['SET', key, mine, 'NX']);
    if (set === null || set === undefined) {
      const now = await this.#runner.command(key, ['GET', key]);
      if (now !== null && now !== undefined) this.#seen.set(key, text(now));
      if (known !== undefined) this.#lost(where, 0);
      return;
    }
    this.#seen.set(key, mine);
    // Absent the first time this node looks: a new Redis (or prefix), nothing to restore.
    if (known === undefined) return;
    const restored = await this.#restore();
    this.#lost(where, restored);
  }

  #lost(where: string, restored: number): void {
    this.#count++;
    this.#last = { at: Date.now(), where, restored };
    const place = where === '' ? this.#runner.where : `Redis Cluster primary ${where}`;
    this.#runner.log(
      'warn',
      `express-bayeux: ${place} lost its data (restarted empty?): sessions it held are gone and their clients get 402 and handshake again; ` +
        (restored > 0 ? `put ${restored} subscriptions of the remaining sessions back` : 'the subscriptions of the remaining sessions are put back by the node that noticed first'),
    );
  }

  /** Put every session back in its patterns' subscriber sets; returns how many subscriptions. */
  async #restore(): Promise<number> {
    let restored = 0;
    await Promise.all(this.#keys.buckets().map(async (bucket) => {
      let cursor = '0';
      for (let page = 0; page < MAX_PAGES; page++) {
        const reply = parseRestoreScan(await this.#runner.run(Scripts.restoreScan, bucket, restoreScanArgs(this.#nodeChannelPrefix, cursor, PAGE)));
        cursor = reply.cursor;
        const byPattern = new Map<string, string[]>();
        for (const { id, patterns } of reply.sessions) {
          for (const pattern of patterns) {
            let ids = byPattern.get(pattern);
            if (!ids) byPattern.set(pattern, (ids = []));
            ids.push(id);
          }
        }
        await Promise.all([...byPattern].map(([pattern, ids]) => {
          const key = this.#keys.patternBase(pattern) + PatternKey.Subs;
          restored += ids.length;
          return this.#runner.command(key, ['SADD', key, ...ids]);
        }));
        if (cursor === '0') break;
      }
    }));
    return restored;
  }

  /** One marker per primary (one for one Redis), chosen again when the primaries change. */
  #markerKeys(): Array<{ key: string; where: string }> {
    const primaries = this.#runner.primaries();
    const layout = primaries.join(',');
    if (layout === this.#layout && this.#markers.length > 0) return this.#markers;
    const wanted = new Set(primaries);
    const markers: Array<{ key: string; where: string }> = [];
    for (let n = 0; n < MAX_CANDIDATES && wanted.size > 0; n++) {
      const key = this.#keys.marker(n);
      const where = this.#runner.primaryOf(slotOf(key));
      if (where === undefined || !wanted.has(where)) continue;
      wanted.delete(where);
      markers.push({ key, where });
    }
    this.#layout = layout;
    this.#markers = markers;
    return markers;
  }
}
