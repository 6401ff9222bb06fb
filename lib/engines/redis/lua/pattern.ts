/**
 * The pattern scripts. A pattern's keys share its hash slot: its base is
 * `<prefix>{p:<pattern>}`; `<base>:subs` is the set of its subscribers'
 * ids, `<base>:log` the stream of what was published to it, `<base>:index` and
 * `<base>:bytes` the log's entry sizes and their sum, `<base>:last`
 * the stream id of the newest entry, and `<base>` the (sharded) Pub/Sub
 * channel the nodes that hold subscribers listen on.
 */
import { int, text } from '../replies.js';
import { readLua } from './files.js';
import { presenceArgs } from './presence.js';
import type { PresenceMember } from '../../engine.js';

/**
 * What a log entry costs Redis beyond its message, publish id and except
 * list (stream id and fields, the index entry), counted against `maxLogBytes`.
 * Written as a literal in scripts/publish.lua; the contract test checks
 * that the two agree.
 */
export const ENTRY_OVERHEAD = 100;

/**
 * Publish once, whatever the number of subscribers: the publishes a node
 * made in one tick, to any channels, in one script on a single Redis (on
 * a Cluster, one script per pattern, every key of a script in one slot,
 * with the publishes that reach it). KEYS: the pattern bases of their
 * expansions, each once; each publish names its own by index. A pattern
 * without subscribers costs one SCARD. For each pattern with subscribers:
 * append the publishes to the log, trim it, announce them.
 *
 * Announcements keep call order. A node applies one announcement at a
 * time, whole, and drops what a session already got through another
 * pattern, so a session that follows patterns X and Y, with X's
 * announcement first, gets the publishes in order if Y's holds nothing
 * X's lacks that is older than X's newest. The script keeps each
 * pattern's entries waiting, sends the waiting announcements in the
 * order the patterns were first reached, and sends them all before a
 * publish that would break that rule (it reaches X while a pattern
 * waiting after X holds a publish X does not). So a tick's publishes to one
 * channel share one announcement per pattern, whatever their `except`;
 * publishes to channels of their own (per-user channels) share one
 * script and one announcement per channel; channels that alternate cut
 * an announcement per run.
 *
 * The log is trimmed exactly, oldest entries first, to at most maxlen
 * entries, maxbytes bytes and retention ms of age (Redis's clock); the
 * newest entry always stays. Its index, `<base>:index`, a list in log
 * order of `<stream id> <bytes>` (the entry's message, publish id and
 * except list, plus {@link ENTRY_OVERHEAD}), and `<base>:bytes`, their
 * sum, say what to trim without reading the messages back. Entries a
 * log holds without an index entry (written by an older version) go with
 * the first trim, at the latest `retention` ms later. `<base>:bytes`
 * also holds when the pattern's keys expire and the time of the index's
 * head (`<bytes> <expires ms> <head ms>`), so the index is read only when
 * something may be trimmed; a plain number, as an older version writes
 * it, means "renew the expiry, read the head". The keys expire: all
 * of them together, between `retention` and 1.5 × `retention` ms after
 * the last publish, so the log and index get a new expiry once per half
 * retention, not at every publish.
 *
 * Only the excluded ids that are subscribers of the pattern are stored
 * with an entry and announced (the engine refuses more than MAX_EXCEPT).
 *
 * Channel history: a publish whose history argument names its channel's
 * key gets the channel's next position, spliced into its text `tail`
 * characters before the end; the spliced text is kept in the channel's
 * history (`<base>:h`, `<base>:hm`, see {@link HISTORY}), logged and
 * announced, and the position is in the reply. History is kept even when
 * no pattern has subscribers. On a Cluster the other patterns' scripts
 * get the spliced text, without a history argument (publish.ts).
 *
 * ARGV: maxlen ('' none), retention ms, 'S' (SPUBLISH) or 'P' (PUBLISH),
 * maxbytes ('' none), history maxbytes per channel ('' none), the number
 * of publishes with history, then per publish: the number of its keys,
 * their indexes in KEYS, then message, publish id, except
 * (comma-separated ids, or '-'), the message's length in JS characters,
 * history ('-' or `<channel's key index> <size> <ttl> <tail>`).
 *
 * → { 0 } when no pattern has subscribers, else { 1, then for each key
 * the log's previous stream id ('' no subscribers), then for each publish
 * and each of its keys with subscribers: subscribers not in except,
 * stream id ('' when not appended), then per publish with history its
 * position, then the ordinals (from 1) of the
 * publishes before which the waiting announcements were sent }: the
 * publishing node applies its own publishes in the same announcements.
 *
 * The announcement: `<prev> <count>` then per entry ` <id> <pub> <except>
 * <length> <message>`: the length lets a reader cut the message out, and
 * `prev` (the log's entry before these) lets it see a gap.
 *
 * With a shard (`channelLogs: 'shard'`), the channels' publishes are one
 * entry of the shard's log, which the node builds ({@link ShardEntry});
 * a tick without history and with no pattern log with subscribers is
 * logged and announced as it came and answered `{ 2, prev, entry,
 * counts }` ({@link PublishStatus} `Logged`, {@link publishedForm}).
 * The script's header (scripts/publish.lua) names every argument.
 */

/**
 * How long, beyond its `ttl`, a channel's position (`<base>:h`: epoch,
 * offset) outlives its last publish or read, in ms: a client that comes
 * back within a day to a channel that went quiet recovers (nothing was
 * missed) instead of finding a new epoch. About 100 bytes per channel.
 * Written as a literal in scripts/channel-history.lua; the contract test
 * checks that the two agree.
 */
export const HISTORY_POSITION_KEEP = 86_400_000;

/**
 * Lua shared by PUBLISH and HISTORY: a channel's history on its exact
 * pattern base (`<base>:h` position and bytes, `<base>:hm` the kept
 * entries `<ms> <text>`, oldest first).
 */
export const CHANNEL_HISTORY = readLua('channel-history');

export const PUBLISH = readLua('publish');

/** Step 2 of subscribe: ARGV: id → the stream id of the newest entry (the new subscriber's position) */
export const ADD_SUBSCRIBER = readLua('add-subscriber');

/**
 * A channel's history, read in one step with, for a recovery, the
 * subscription's start: the recovering session is added to the exact
 * channel's subscribers and the log's newest id is read in the same
 * script as the kept messages, so every message is either kept before it
 * (recovered) or logged after it (delivered through the subscription),
 * never both (the history and the exact channel's log share a slot).
 */
export const HISTORY = readLua('history');

/**
 * PUBLISH's first reply element. `Logged`: with a shard, a tick without
 * history or a pattern log with subscribers, every publish in one entry:
 * `{ 2, the shard's last entry before, the entry, then per publish
 * counted its count }` ({@link publishedForm} reads it as the
 * `Published` form).
 */
/** PUBLISH's statuses; `Refused`: the publishing session is gone, nothing was published. */
export const PublishStatus = { NoSubscribers: 0, Published: 1, Logged: 2, Refused: 3 } as const;
export type PublishStatus = (typeof PublishStatus)[keyof typeof PublishStatus];

/**
 * PUBLISH's ARGV before the publishes; {@link pushPublish} adds each
 * (the publish path builds one array, no intermediate lists).
 * `publisher`: the hash of the session that makes every publish of the
 * script ('' none), which must be live for any to be published.
 */
export function publishArgs(
  maxlen: string, retention: number, sharded: boolean, maxbytes: string, historyBytes: string, histories: number, logKeys: number,
  shard?: { prefix: string; maxbytes: string }, publisher = '',
): string[] {
  return [maxlen, String(retention), sharded ? 'S' : 'P', maxbytes, historyBytes, String(histories), shard?.prefix ?? '', String(logKeys), shard?.maxbytes ?? '', publisher];
}

/** What a publish tells PUBLISH to keep: its channel's index in the script's KEYS (from 0 here), `size`, `ttl`, `tail`. */
export interface HistoryArg {
  readonly key: number;
  readonly size: number;
  readonly ttl: number;
  readonly tail: number;
}

/**
 * One publish's ARGV: the number of its patterns, their indexes in KEYS
 * (`keys`, from 0 here, from 1 in Lua), message, publish id, except ('-'
 * none), length in JS characters.
 */
export function pushPublish(args: string[], keys: readonly number[], message: string, pub: string, except: readonly string[], history?: HistoryArg): void {
  args.push(String(keys.length));
  for (const j of keys) args.push(String(j + 1));
  args.push(message, pub, except.length > 0 ? except.join(',') : '-', String(message.length), historyArg(history));
}

/**
 * With a shard, after {@link publishArgs}: per pattern log (KEYS from the
 * second to the `logKeys`th), the publishes that reach it; `keys` holds,
 * per publish in call order, the indexes in KEYS (from 0 here) of its
 * pattern logs. Most publishes reach none with subscribers, and the
 * script skips a pattern without any in one step.
 */
export function pushShardReach(args: string[], logKeys: number, keys: ReadonlyArray<readonly number[]>): void {
  const reached = new Array<string>(Math.max(0, logKeys - 1)).fill('');
  for (let c = 0; c < keys.length; c++) {
    for (const j of keys[c] as readonly number[]) reached[j - 1] = reached[j - 1] === '' ? String(c + 1) : `${reached[j - 1] as string},${c + 1}`;
  }
  args.push(...reached);
}

/**
 * With a shard, after {@link pushShardReach}: the shard's entry as the
 * node builds it (`<count>` then per publish ` <channel> <publish id>
 * <except> <length> <message>`), its bytes plus {@link ENTRY_OVERHEAD},
 * per publish the bytes of its part, then the ordinals (from 1) of the
 * publishes whose channel's subscribers are counted, and per publish with
 * history `<ordinal> <history>`. In the common tick (no history, no
 * count, no pattern log with subscribers) the script logs and announces
 * the entry as it came, with no work per publish; the part sizes let it
 * cut the entry into publishes otherwise.
 */
export class ShardEntry {
  readonly #parts: string[] = [];
  readonly #sizes: number[] = [];
  readonly #histories: string[] = [];
  #counted = '';
  #bytes = 0;

  /** The next publish (ordinal: one more than the last). */
  add(channel: string, message: string, pub: string, except: readonly string[], history: HistoryArg | undefined, count: boolean): void {
    const part = `${channel} ${pub} ${except.length > 0 ? except.join(',') : '-'} ${message.length} ${message}`;
    const bytes = Buffer.byteLength(part);
    const ordinal = this.#parts.push(part);
    this.#sizes.push(bytes);
    this.#bytes += bytes + 1;
    if (count) this.#counted = this.#counted === '' ? String(ordinal) : `${this.#counted},${ordinal}`;
    if (history) this.#histories.push(`${ordinal} ${historyArg(history)}`);
  }

  /** Its ARGV, after {@link pushShardReach}'s. */
  pushTo(args: string[]): void {
    const count = String(this.#parts.length);
    args.push(`${count} ${this.#parts.join(' ')}`, String(count.length + this.#bytes + ENTRY_OVERHEAD), this.#sizes.join(','), this.#counted, ...this.#histories);
  }
}

function historyArg(history: HistoryArg | undefined): string {
  return history ? `${history.key + 1} ${history.size} ${history.ttl} ${history.tail}` : '-';
}

/**
 * PUBLISH's reply in the `Published` form: a `Logged` reply for `keys`
 * keys (the shard first) and publishes whose counts were asked for or
 * not (`counted`, in call order) is the same as `{ 1, prev, '' per other
 * key, then per publish: its count (-1 not counted), the entry }`; any
 * other reply as it is.
 */
export function publishedForm(reply: unknown[], keys: number, counted: readonly boolean[]): unknown[] {
  if (int(reply[0]) !== PublishStatus.Logged) return reply;
  const full = new Array<unknown>(1 + keys + 2 * counted.length);
  full[0] = PublishStatus.Published;
  full[1] = reply[1];
  for (let j = 2; j <= keys; j++) full[j] = '';
  let count = 3;
  for (let c = 0, at = 1 + keys; c < counted.length; c++, at += 2) {
    full[at] = counted[c] ? reply[count++] : -1;
    full[at + 1] = reply[2];
  }
  return full;
}

/**
 * PUBLISH's reply, read in place (no copy): for `keys` patterns and
 * `publishes` publishes. Patterns without subscribers have no results.
 */
export class PublishReply {
  readonly #reply: readonly unknown[];
  readonly #keys: number;

  constructor(reply: readonly unknown[], keys: number) {
    this.#reply = reply;
    this.#keys = keys;
  }

  get status(): PublishStatus {
    const status = int(this.#reply[0]);
    return status === PublishStatus.Published || status === PublishStatus.Refused ? status : PublishStatus.NoSubscribers;
  }

  /** The log's newest id before these publishes, for the key at `j`; '' when it has no subscribers (and no results). */
  prev(j: number): string {
    return text(this.#reply[1 + j]);
  }

  /** Where the results of the first pattern with subscribers start; each result is two slots (see {@link recipients}, {@link id}). */
  get firstResult(): number {
    return 1 + this.#keys;
  }

  /** Subscribers a publish reached in a pattern (its result at `at`), except excluded; 0 when not appended. */
  recipients(at: number): number {
    return int(this.#reply[at]);
  }

  /** The stream id of the entry a publish appended (its result at `at`). */
  id(at: number): string {
    return text(this.#reply[at + 1]);
  }

  /** The position PUBLISH gave a publish with history (`{"epoch":"…","offset":N}`), at `at`, after the results. */
  position(at: number): string {
    return text(this.#reply[at]);
  }

  /** After the results and the positions (ending at `end`): the ordinals (from 1) of the publishes before which the script sent its waiting announcements. */
  cuts(end: number): Set<number> {
    const cuts = new Set<number>();
    for (let i = end; i < this.#reply.length; i++) cuts.add(int(this.#reply[i]));
    return cuts;
  }
}

export function addSubscriberArgs(id: string, presence?: PresenceMember): string[] {
  return [id, ...presenceArgs(presence)];
}

/** ADD_SUBSCRIBER's reply: the new subscriber's position, and the version of the join its presence made (0: none). */
export function parseAddSubscriber(reply: unknown): { position: string; joined: number } {
  if (Array.isArray(reply)) return { position: text(reply[0]), joined: int(reply[1]) };
  return { position: text(reply), joined: 0 };
}

/** Where HISTORY starts: after a position (a recovery), the newest `count` ('' all), or a `since`/`limit` read. */
export type HistoryFrom =
  | { readonly after: { readonly epoch: string; readonly offset: number } }
  | { readonly newest: number | undefined }
  | { readonly since: { readonly epoch: string; readonly offset: number } | undefined; readonly limit: number | undefined };

/**
 * HISTORY's ARGV: `size`, `ttl`, `maxbytes` ('' none), the id to
 * subscribe ('' none: a read), then where to start.
 */
export function historyArgs(size: number, ttl: number, maxbytes: string, id: string, from: HistoryFrom, presence?: PresenceMember): string[] {
  const args = [String(size), String(ttl), maxbytes, id];
  if ('after' in from) args.push('p', from.after.epoch, String(from.after.offset), '');
  else if ('newest' in from) args.push('n', from.newest === undefined ? '' : String(from.newest), '', '');
  else args.push('s', from.since?.epoch ?? '', String(from.since?.offset ?? 0), from.limit === undefined ? '' : String(from.limit));
  // ARGV[9..11]: the subscriber's presence.
  args.push(...presenceArgs(presence));
  return args;
}

/** HISTORY's reply. */
export interface HistoryReply {
  readonly epoch: string;
  readonly offset: number;
  /** For a recovery from a position: everything after it is kept (and returned). */
  readonly recovered: boolean;
  /** The exact channel's log's newest id when an id was subscribed ('0-0' none), else ''. */
  readonly last: string;
  /** The version of the join the subscriber's presence made (its user's first session on the channel); 0 none. */
  readonly joined: number;
  /** The kept texts asked for, as delivered, oldest first. */
  readonly texts: string[];
}

export function parseHistory(reply: unknown): HistoryReply {
  const items = Array.isArray(reply) ? reply : [];
  const texts: string[] = [];
  for (let i = 5; i < items.length; i++) {
    const entry = text(items[i]);
    // '<ms> <text>': the text as delivered, after the publish time.
    texts.push(entry.slice(entry.indexOf(' ') + 1));
  }
  return { epoch: text(items[0]), offset: Number(text(items[1])), recovered: int(items[2]) === 1, last: text(items[3]), joined: int(items[4]), texts };
}

/**
 * The text with `position` spliced in `tail` characters before its end
 * (`HistoryPublish`), as PUBLISH splices it in Lua: the publishing node's
 * own copy, and the text a Cluster's wildcard scripts log and announce.
 */
export function splice(message: string, tail: number, position: string): string {
  return message.slice(0, message.length - tail) + position + message.slice(message.length - tail);
}
