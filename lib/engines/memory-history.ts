/**
 * MemoryEngine's channel history: a bounded ring of message texts per
 * channel, each with its position, bounded by count (`size`), age (`ttl`)
 * and, over all channels, characters (`maxHistoryBytes`).
 *
 * Channels are kept in one group per ttl, each group in the order of its
 * channels' last publish, so the sweep drops idle channels from the front
 * of each group without walking the others (keeping only their position,
 * while the bytes allow), and `maxHistoryBytes` evicts from the channel
 * published to least recently.
 */
import { randomBytes } from 'node:crypto';
import type { HistoryPosition, HistoryPublish, HistoryQuery, HistorySettings, RecoverFrom } from './engine.js';

/** Default `maxHistoryBytes` for MemoryEngine: characters of history kept in total. */
export const DEFAULT_MAX_HISTORY_BYTES = 64 * 1_048_576;

/** What a channel costs besides its messages' texts (the ring, its Map entries, its epoch), in characters. */
const CHANNEL_OVERHEAD = 160;
/** What a kept message costs besides its text (its time, its array slots). */
const MESSAGE_OVERHEAD = 16;
/** What the position of a dropped idle channel costs besides its name. */
const COUNTER_OVERHEAD = 48;

interface Ring {
  readonly channel: string;
  readonly epoch: string;
  /** Offset of the newest message published (0 before the first). */
  offset: number;
  /** Kept texts (positions spliced in), oldest first, from `head`. */
  texts: string[];
  /** When each kept text was published, ms since the epoch. */
  times: number[];
  head: number;
  /** Characters this channel counts against the bound: its texts and overheads. */
  bytes: number;
  size: number;
  ttl: number;
  /** The last publish (or the creation), ms since the epoch. */
  last: number;
}

/** Counts for tests and operators: what the history holds now. */
export interface MemoryHistoryStats {
  /** Channels with history kept (possibly empty, until they are idle past their ttl). */
  channels: number;
  /** Messages kept. */
  messages: number;
  /** Positions of channels dropped when idle, kept so they go on in the same epoch. */
  positions: number;
  /** Characters counted against `maxHistoryBytes`. */
  bytes: number;
}

export class MemoryHistory {
  /** This instance's part of every epoch: a new engine (a restart) never repeats an epoch. */
  readonly #prefix = randomBytes(6).toString('base64url');
  #rings = 0;
  /** ttl → the channels kept with it, by channel, least recently published first. */
  readonly #groups = new Map<number, Map<string, Ring>>();
  /** channel → its ring, whatever its group. */
  readonly #channels = new Map<string, Ring>();
  /**
   * The positions of channels dropped for being idle past their ttl,
   * oldest first: a channel published to again goes on from there, in the
   * same epoch (nothing it kept was lost: it had all expired). Counted in
   * the bytes; the first to go when over `maxHistoryBytes`.
   */
  readonly #counters = new Map<string, HistoryPosition>();
  #bytes = 0;
  #messages = 0;
  #maxBytes = DEFAULT_MAX_HISTORY_BYTES;

  configure(maxBytes: number | undefined): void {
    this.#maxBytes = maxBytes ?? DEFAULT_MAX_HISTORY_BYTES;
  }

  /**
   * Keep a published message: the channel's next position is spliced into
   * `text` (`tail` characters before its end); returns the spliced text.
   */
  append(history: HistoryPublish, text: string, now: number): string {
    const ring = this.#ring(history.channel, history, now);
    this.#expire(ring, now);
    ring.offset += 1;
    const tail = history.tail;
    const spliced = text.slice(0, text.length - tail) + positionJson(ring.epoch, ring.offset) + text.slice(text.length - tail);
    ring.texts.push(spliced);
    ring.times.push(now);
    this.#add(ring, spliced.length + MESSAGE_OVERHEAD);
    this.#messages++;
    while (this.#count(ring) > ring.size) this.#dropOldest(ring);
    // Most recently published last in its group.
    ring.last = now;
    const group = this.#groups.get(ring.ttl) as Map<string, Ring>;
    group.delete(ring.channel);
    group.set(ring.channel, ring);
    if (this.#bytes > this.#maxBytes) this.#evict(ring);
    return spliced;
  }

  /**
   * The kept texts `from` asks for, and the channel's position; creates
   * the channel's history (a new epoch) when it has none.
   */
  recover(channel: string, from: RecoverFrom, settings: HistorySettings, now: number): { recovered: boolean; position: HistoryPosition; texts: string[] } {
    const ring = this.#ring(channel, settings, now);
    this.#expire(ring, now);
    const position = { epoch: ring.epoch, offset: ring.offset };
    if ('last' in from) return { recovered: true, position, texts: this.#newest(ring, from.last) };
    const count = this.#count(ring);
    const first = ring.offset - count + 1;
    if (from.epoch !== ring.epoch || from.offset > ring.offset || from.offset < first - 1) return { recovered: false, position, texts: [] };
    return { recovered: true, position, texts: this.#newest(ring, ring.offset - from.offset) };
  }

  /** `Engine.history`: kept texts by `query`, and the channel's position. */
  read(channel: string, settings: HistorySettings, query: HistoryQuery, now: number): { position: HistoryPosition; texts: string[] } {
    const ring = this.#ring(channel, settings, now);
    this.#expire(ring, now);
    const position = { epoch: ring.epoch, offset: ring.offset };
    const count = this.#count(ring);
    const limit = query.limit ?? count;
    const since = query.since;
    if (since === undefined) return { position, texts: this.#newest(ring, Math.min(limit, count)) };
    // Messages after `since` (all kept ones when it is of another epoch), the oldest `limit` of them.
    const after = since.epoch === ring.epoch ? Math.max(0, Math.min(count, ring.offset - since.offset)) : count;
    const from = ring.head + count - after;
    return { position, texts: ring.texts.slice(from, from + Math.min(limit, after)) };
  }

  /** Drop what is past its ttl, and channels idle past theirs. */
  sweep(now: number): void {
    for (const group of this.#groups.values()) {
      for (const ring of group.values()) {
        // Least recently published first: the first one still live ends the walk.
        if (ring.last + ring.ttl > now) break;
        this.#remove(ring);
        this.#counters.set(ring.channel, { epoch: ring.epoch, offset: ring.offset });
        this.#bytes += COUNTER_OVERHEAD + ring.channel.length;
      }
    }
    if (this.#bytes > this.#maxBytes) this.#evict();
  }

  clear(): void {
    this.#groups.clear();
    this.#channels.clear();
    this.#counters.clear();
    this.#bytes = 0;
    this.#messages = 0;
  }

  stats(): MemoryHistoryStats {
    return { channels: this.#channels.size, messages: this.#messages, positions: this.#counters.size, bytes: this.#bytes };
  }

  #ring(channel: string, settings: HistorySettings, now: number): Ring {
    let ring = this.#channels.get(channel);
    if (ring && (ring.size !== settings.size || ring.ttl !== settings.ttl)) {
      // Settings changed (another Server on this engine): the new ones apply from now on.
      this.#groups.get(ring.ttl)?.delete(channel);
      ring.size = settings.size;
      ring.ttl = settings.ttl;
      this.#group(ring.ttl).set(channel, ring);
    }
    if (ring) return ring;
    // A channel dropped when idle goes on from its position; any other starts a new epoch.
    const counter = this.#counters.get(channel);
    if (counter) {
      this.#counters.delete(channel);
      this.#bytes -= COUNTER_OVERHEAD + channel.length;
    }
    ring = {
      channel,
      epoch: counter?.epoch ?? `${this.#prefix}.${(++this.#rings).toString(36)}`,
      offset: counter?.offset ?? 0,
      texts: [],
      times: [],
      head: 0,
      bytes: 0,
      size: settings.size,
      ttl: settings.ttl,
      last: now,
    };
    this.#channels.set(channel, ring);
    this.#group(ring.ttl).set(channel, ring);
    this.#add(ring, CHANNEL_OVERHEAD + channel.length);
    if (this.#bytes > this.#maxBytes) this.#evict(ring);
    return ring;
  }

  #group(ttl: number): Map<string, Ring> {
    let group = this.#groups.get(ttl);
    if (!group) this.#groups.set(ttl, (group = new Map<string, Ring>()));
    return group;
  }

  #count(ring: Ring): number {
    return ring.texts.length - ring.head;
  }

  /** The newest `n` kept texts, oldest first. */
  #newest(ring: Ring, n: number): string[] {
    if (n <= 0) return [];
    return ring.texts.slice(Math.max(ring.head, ring.texts.length - n));
  }

  #add(ring: Ring, chars: number): void {
    ring.bytes += chars;
    this.#bytes += chars;
  }

  /** Drop the messages older than the ring's ttl. */
  #expire(ring: Ring, now: number): void {
    while (ring.head < ring.texts.length && (ring.times[ring.head] as number) + ring.ttl <= now) this.#dropOldest(ring);
  }

  #dropOldest(ring: Ring): void {
    const text = ring.texts[ring.head] as string;
    ring.head++;
    this.#add(ring, -(text.length + MESSAGE_OVERHEAD));
    this.#messages--;
    // Compact now and then: a ring costs O(1) per message, not a copy per drop.
    if (ring.head >= 64 && ring.head * 2 >= ring.texts.length) {
      ring.texts = ring.texts.slice(ring.head);
      ring.times = ring.times.slice(ring.head);
      ring.head = 0;
    }
  }

  #remove(ring: Ring): void {
    this.#groups.get(ring.ttl)?.delete(ring.channel);
    this.#channels.delete(ring.channel);
    this.#bytes -= ring.bytes;
    this.#messages -= this.#count(ring);
  }

  /**
   * Over `maxHistoryBytes`: drop the oldest messages of the channel
   * published to least recently, then that channel itself, and so on.
   * `keep` (the channel being published to or created) goes last, and
   * loses messages only: its epoch stays.
   */
  #evict(keep?: Ring): void {
    // The positions of idle channels go first, oldest first: they only spare a client a needless recovered: false.
    for (const [channel] of this.#counters) {
      if (this.#bytes <= this.#maxBytes) return;
      this.#counters.delete(channel);
      this.#bytes -= COUNTER_OVERHEAD + channel.length;
    }
    while (this.#bytes > this.#maxBytes) {
      let oldest: Ring | undefined;
      for (const group of this.#groups.values()) {
        for (const ring of group.values()) {
          if (ring === keep) continue;
          if (!oldest || ring.last < oldest.last) oldest = ring;
          break;
        }
      }
      const ring = oldest ?? keep;
      if (!ring) return;
      if (this.#count(ring) > 0) this.#dropOldest(ring);
      else if (ring === keep) return;
      else this.#remove(ring);
    }
  }
}

/** The position as engines splice it: `{"epoch":"…","offset":N}`, no spaces. */
export function positionJson(epoch: string, offset: number): string {
  return `{"epoch":"${epoch}","offset":${offset}}`;
}
