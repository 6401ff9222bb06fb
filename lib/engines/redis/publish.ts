/**
 * Publishing: the publishes a node makes in one tick (a request's or a
 * frame's run of publishes, which the Server issues back to back) go to
 * Redis together, one script per pattern of their expansions, whatever
 * their number and the number of subscribers. Each script appends the
 * messages to the pattern's log and announces them in one Pub/Sub message,
 * so other nodes hand them to their sessions in one pass, and this node
 * applies them from the script's answer (log.ts `own`), in call order.
 */
import { UnknownPublisherError, type HistoryPublish, type PublishOptions } from '../engine.js';
import { list } from './replies.js';
import { makeEntry, type Entry } from './local-session.js';
import { shardEnd, shardPosition, type Keys } from './keys.js';
import type { Announcement, PatternLogs } from './log.js';
import { PatternKey } from './lua/contract.js';
import { Scripts } from './lua/index.js';
import { publishArgs, publishedForm, PublishReply, PublishStatus, pushPublish, pushShardReach, ShardEntry, splice, type HistoryArg } from './lua/pattern.js';
import type { CallOrder } from './order.js';
import type { Runner } from './runner.js';
import { scanSet } from './scan.js';
import type { EngineSettings } from './settings.js';

/** Above this many recipients over several patterns, publish counts a session once per pattern instead of reading the sets. */
const EXACT_COUNT_LIMIT = 1000;
/**
 * Most publishes, and message characters, in one script: a loop of
 * publishes in one tick goes out in parts, so no script holds Redis for long.
 */
const MAX_BATCH = 100;
const MAX_BATCH_CHARS = 1 << 20;
/** Session ids are base64url; anything else cannot be a session and is left out of `except`. */
const SESSION_ID = /^[A-Za-z0-9_-]{1,100}$/;
/**
 * Most sessions one publish may exclude (`except`): the list travels with
 * the publish to Redis and, reduced to the pattern's subscribers, is
 * stored with the log entry and announced. A longer list is refused with
 * a RangeError; nothing is published.
 */
export const MAX_EXCEPT = 1000;


interface Publish {
  readonly patterns: readonly string[];
  readonly message: string;
  readonly pub: string;
  readonly except: readonly string[];
  /** Count a session subscribed to several reached patterns once (reads their sets); else the sum over patterns. */
  readonly count: boolean;
  /** The channel keeps history: the script of its exact pattern gives the position. */
  readonly history: HistoryPublish | undefined;
  /** With history: the text with its position spliced in, once the channel's script answered. */
  spliced?: string;
  /** The session that publishes it, checked by the script (`PublishOptions.publisher`). */
  readonly publisher: string | undefined;
  readonly resolve: (recipients: number) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * One script of a batch: its patterns (KEYS), the batch's publishes it
 * carries (in call order) with the indexes of their patterns in KEYS, and
 * Redis's answer.
 */
interface Call {
  /** The patterns whose bases are KEYS; with a shard, {@link SHARD} first, and the history channels after the logs. */
  readonly patterns: readonly string[];
  readonly publishes: readonly number[];
  /** Per publish, the indexes of the pattern logs it reaches (not the shard). */
  readonly keys: ReadonlyArray<readonly number[]>;
  /** With a shard: per publish, the channel it logs there. */
  readonly channels?: readonly string[];
  /** How many of `patterns` are logs (the shard included): the rest are history channels. */
  readonly logKeys: number;
  reply?: unknown[];
  error?: unknown;
  /** How many positions (publishes with history) the reply holds after the results. */
  positions?: number;
}

/** The publishes of one tick, to any channels. */
interface Batch {
  readonly publishes: Publish[];
  /** The session that makes all of them (the script checks it), or undefined: one batch per publisher. */
  readonly publisher: string | undefined;
  chars: number;
  /** Settles the batch's place among the engine's ordered operations with its scripts' answers. */
  readonly send: (calls: Promise<Call[]>) => void;
}

/** In a shard call's patterns, the shard (no channel is named ''). */
const SHARD = '';

export class Publisher {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #logs: PatternLogs;
  readonly #order: CallOrder;
  readonly #settings: EngineSettings;
  /** Channels are logged in the shard (`channelLogs: 'shard'`; a single Redis). */
  readonly #shard: boolean;
  /** Publish ids: this prefix (unique per node), then a counter. */
  readonly #prefix: string;
  #counter = 0;
  #batch: Batch | undefined;
  /** A Cluster: resolves when the last batch with history sent its second scripts; later batches send theirs after. */
  #unsent: Promise<void> | undefined;
  readonly #onTick = () => this.flush();

  /**
   * @param order publishes resolve in call order with the engine's other ordered operations (delivers, loads).
   * @param settings log bounds and retention, sent with each script.
   * @param prefix this node's publish id prefix: its own announcements are told apart (`PatternLogs`).
   * @param shard channels are logged in the shard (`channelLogs: 'shard'`).
   */
  constructor(runner: Runner, keys: Keys, logs: PatternLogs, order: CallOrder, settings: EngineSettings, prefix: string, shard = false) {
    this.#prefix = prefix;
    this.#shard = shard;
    this.#runner = runner;
    this.#keys = keys;
    this.#logs = logs;
    this.#order = order;
    this.#settings = settings;
  }

  /** See `Engine.publish`. Sent with the other publishes of this tick, whatever their channels. */
  publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number> {
    if (patterns.length === 0) return Promise.resolve(0);
    const pub = `${this.#prefix}${(++this.#counter).toString(36)}`;
    const except = [...new Set((options?.except ?? []).filter((id) => SESSION_ID.test(id)))];
    if (except.length > MAX_EXCEPT) {
      return Promise.reject(new RangeError(`RedisEngine: a publish may exclude at most ${MAX_EXCEPT} sessions (except has ${except.length})`));
    }
    // On a Cluster the session's hash is in another slot than the scripts' keys (and `checksPublisher` is false).
    const publisher = this.#runner.isCluster ? undefined : options?.publisher;
    let batch = this.#batch;
    // A batch is one publisher's (or none's): a publisher found gone refuses its own publishes only.
    if (batch && batch.publisher !== publisher) {
      this.flush();
      batch = undefined;
    }
    if (!batch) {
      batch = this.#startBatch(publisher);
      this.#batch = batch;
      // After the microtasks of this tick: a run of publishes awaits between them.
      process.nextTick(this.#onTick);
    }
    const publishes = batch.publishes;
    const count = options?.count !== false;
    const sent = new Promise<number>((resolve, reject) => {
      publishes.push({ patterns, message, pub, except, count, history: options?.history, publisher, resolve, reject });
    });
    batch.chars += message.length;
    if (publishes.length >= MAX_BATCH || batch.chars >= MAX_BATCH_CHARS) this.flush();
    return sent;
  }

  /**
   * Send the publishes waiting for the end of the tick now. Called before
   * an ordered operation is sent (a deliver), so Redis gets them in call order.
   */
  flush(): void {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    const all = batch.publishes.map((_, i) => i);
    if (!this.#runner.isCluster) {
      if (this.#shard) this.#logs.shardSent();
      batch.send(Promise.all([this.#run(batch.publishes, this.#shard ? shardCall(batch.publishes) : oneCall(batch.publishes))]));
      return;
    }
    // A Cluster: the scripts of history channels' exact patterns first (they give the positions), then
    // the other patterns' scripts with the spliced texts (a publish whose position failed goes no further).
    // Those second scripts, and every later batch's scripts, are sent in batch order: a wildcard pattern's
    // log gets this node's publishes in call order.
    const channels = new Set<string>();
    for (const p of batch.publishes) if (p.history) channels.add(p.history.channel);
    const before = this.#unsent;
    if (channels.size === 0 && before === undefined) {
      batch.send(Promise.all(perPattern(batch.publishes, all).map((call) => this.#run(batch.publishes, call))));
      return;
    }
    let sent = () => {};
    const unsent = new Promise<void>((resolve) => {
      sent = resolve;
    });
    this.#unsent = unsent;
    const first = channels.size === 0 ? [] : perPattern(batch.publishes, all).filter((call) => channels.has(call.patterns[0] as string));
    batch.send(Promise.all(first.map((call) => this.#run(batch.publishes, call))).then(async (done) => {
      await before;
      const ready = all.filter((i) => {
        const p = batch.publishes[i] as Publish;
        return !p.history || p.spliced !== undefined;
      });
      const second = perPattern(batch.publishes, ready).filter((call) => !channels.has(call.patterns[0] as string));
      const running = second.map((call) => this.#run(batch.publishes, call));
      sent();
      if (this.#unsent === unsent) this.#unsent = undefined;
      return [...done, ...await Promise.all(running)];
    }));
  }

  /** Run one script of a batch; a publish with history whose channel is among its patterns gets its position here. */
  #run(publishes: readonly Publish[], call: Call): Promise<Call> {
    const settings = this.#settings;
    const histories: Array<Publish | undefined> = [];
    let count = 0;
    for (let c = 0; c < call.publishes.length; c++) {
      const p = publishes[call.publishes[c] as number] as Publish;
      const inCall = p.history && p.spliced === undefined ? call.patterns.indexOf(p.history.channel) : -1;
      histories.push(inCall >= 0 ? p : undefined);
      if (inCall >= 0) count++;
    }
    const channels = call.channels;
    // Every publish of a batch has one publisher (or none); its session's hash, for the script to check.
    const publisher = publishes[call.publishes[0] as number]?.publisher;
    const args = publishArgs(
      settings.logLength, settings.retention, this.#runner.sharded, settings.logBytes, settings.historyBytes, count, call.logKeys,
      channels ? { prefix: this.#keys.prefix, maxbytes: settings.shardLogBytes } : undefined,
      publisher === undefined ? '' : `${this.#keys.bucket(publisher)}:${publisher}`,
    );
    if (channels) pushShardReach(args, call.logKeys, call.keys);
    const entry = channels ? new ShardEntry() : undefined;
    for (let c = 0; c < call.publishes.length; c++) {
      const p = publishes[call.publishes[c] as number] as Publish;
      const h = histories[c];
      const history: HistoryArg | undefined = h?.history
        ? { key: call.patterns.indexOf(h.history.channel), size: h.history.size, ttl: h.history.ttl, tail: h.history.tail }
        : undefined;
      const message = history ? p.message : p.spliced ?? p.message;
      if (entry) entry.add((channels as readonly string[])[c] as string, message, p.pub, p.except, history, p.count);
      else pushPublish(args, call.keys[c] as readonly number[], message, p.pub, p.except, history);
    }
    entry?.pushTo(args);
    const keys = call.patterns.map((pattern) => (channels && pattern === SHARD ? this.#keys.shardBase() : this.#keys.patternBase(pattern)));
    return this.#runner.run(Scripts.publish, keys, args).then(
      (reply) => {
        call.reply = publishedForm(list(reply), call.patterns.length, call.publishes.map((i) => (publishes[i] as Publish).count));
        if (count > 0) {
          // The positions follow the results: one per publish with history, in call order.
          const answer = new PublishReply(call.reply, call.patterns.length);
          let at = answer.firstResult + 2 * resultCount(call, answer);
          for (const p of histories) if (p?.history) p.spliced = splice(p.message, p.history.tail, answer.position(at++));
          call.positions = count;
        }
        return call;
      },
      (err: unknown) => {
        call.error = err;
        return call;
      },
    );
  }

  #startBatch(publisher: string | undefined): Batch {
    let send: (calls: Promise<Call[]>) => void = () => {};
    const sent = new Promise<Call[]>((resolve) => {
      send = resolve;
    });
    const publishes: Publish[] = [];
    void this.#order.ordered(sent).then((calls) => this.#answered(publishes, calls));
    return { publishes, publisher, send, chars: 0 };
  }

  /**
   * Redis answered a batch, in its turn: apply what it appended here, in
   * the announcements the script made (see PUBLISH: a new one whenever a
   * publish reached other patterns than the one before), then settle each publish.
   */
  async #answered(publishes: readonly Publish[], calls: readonly Call[]): Promise<void> {
    const recipients = new Array<number>(publishes.length).fill(0);
    const reached = publishes.map((): string[] => []);
    let failure: { error: unknown } | undefined;
    const applied: Promise<void>[] = [];
    for (const call of calls) {
      const reply = call.reply;
      if (call.error !== undefined || !reply) {
        failure ??= { error: call.error };
        continue;
      }
      const answer = new PublishReply(reply, call.patterns.length);
      if (answer.status === PublishStatus.Refused) {
        // The batch's publisher is gone: none of its publishes was published.
        const publisher = (publishes[call.publishes[0] as number] as Publish).publisher as string;
        failure ??= { error: new UnknownPublisherError(publisher) };
        continue;
      }
      if (answer.status !== PublishStatus.Published) continue;
      const last = call.patterns.map((_, j) => answer.prev(j));
      // Applied here in the announcements the script sent: cut where it cut (see PUBLISH).
      const cuts = answer.cuts(answer.firstResult + 2 * resultCount(call, answer) + (call.positions ?? 0));
      let pending = new Map<number, Announcement & { entries: Entry[] }>();
      // With a shard: the publishes of its entry being read (their positions need the entry's count).
      let sharded: Array<{ p: Publish; channel: string; id: string }> = [];
      const announce = () => {
        for (const [j, announcement] of pending) applied.push(this.#logs.own(call.patterns[j] as string, announcement));
        pending = new Map();
        if (sharded.length === 0) return;
        const count = sharded.length;
        const entry = (sharded[0] as { id: string }).id;
        const entries = sharded.map(({ p, channel }, index) =>
          makeEntry(channel, shardPosition(entry, index, count), p.spliced ?? p.message, p.pub, p.except.length > 0 ? p.except : undefined));
        applied.push(this.#logs.ownShard({ prev: shardEnd(last[0] as string), entries }));
        last[0] = entry;
        sharded = [];
      };
      let at = answer.firstResult;
      for (let c = 0; c < call.publishes.length; c++) {
        if (cuts.has(c + 1)) announce();
        const i = call.publishes[c] as number;
        const p = publishes[i] as Publish;
        for (const j of call.keys[c] as readonly number[]) {
          if (last[j] === '') continue;
          const n = answer.recipients(at);
          const id = answer.id(at);
          at += 2;
          if (n <= 0) continue;
          recipients[i] = (recipients[i] as number) + n;
          (reached[i] as string[]).push(call.patterns[j] as string);
          let announcement = pending.get(j);
          if (!announcement) {
            announcement = { prev: last[j] as string, entries: [] };
            pending.set(j, announcement);
          }
          announcement.entries.push(makeEntry(call.patterns[j] as string, id, p.spliced ?? p.message, p.pub, p.except.length > 0 ? p.except : undefined));
          last[j] = id;
        }
        const channel = call.channels?.[c];
        if (channel) {
          // Logged in the shard whatever its subscribers; counted only when asked (else -1).
          const n = answer.recipients(at);
          sharded.push({ p, channel, id: answer.id(at) });
          at += 2;
          if (n > 0) {
            recipients[i] = (recipients[i] as number) + n;
            (reached[i] as string[]).push(channel);
          }
        }
      }
      announce();
    }
    // Applied, or failed: announcements held for it may go on (PatternLogs #hold).
    for (const call of calls) if (call.channels) this.#logs.shardAnswered();
    if (applied.length > 0) await Promise.all(applied);
    for (let i = 0; i < publishes.length; i++) {
      const p = publishes[i] as Publish;
      const patterns = reached[i] as string[];
      const total = recipients[i] as number;
      // On a cluster a publish may have reached some patterns and not others: it failed, as a whole.
      if (failure) p.reject(failure.error);
      // Not asked for: the sum over patterns, an upper bound; with a shard, channels are not counted at all, so 0.
      else if (!p.count) p.resolve(this.#shard ? 0 : total);
      else if (patterns.length < 2 || total > EXACT_COUNT_LIMIT) p.resolve(total);
      else this.#count(patterns, p.except).then(p.resolve, p.reject);
    }
  }

  /** A session subscribed to several of these patterns is one recipient. */
  async #count(patterns: readonly string[], except: readonly string[]): Promise<number> {
    const sets = await Promise.all(patterns.map((pattern) => scanSet(this.#runner, this.#keys.patternBase(pattern) + PatternKey.Subs)));
    const recipients = new Set(sets.flat());
    for (const id of except) recipients.delete(id);
    return recipients.size;
  }
}

/** A single Redis: one script for the whole tick; each pattern once in KEYS. */
function oneCall(publishes: readonly Publish[]): Call {
  const keys = new KeyList([]);
  return { patterns: keys.patterns, publishes: publishes.map((_, i) => i), keys: publishes.map((p) => keys.indexes(p.patterns, false)), logKeys: keys.patterns.length };
}

/** A script's KEYS, as patterns, added to as publishes name them. */
class KeyList {
  readonly patterns: string[];
  readonly #index = new Map<string, number>();

  constructor(first: readonly string[]) {
    this.patterns = [...first];
  }

  /**
   * The indexes of `reached`, each once (a pattern listed twice in an
   * expansion is published to once); `sorted`, in KEYS order: the shard
   * script answers a publish's pattern logs in that order (it finds them
   * key by key), the other in the order given.
   */
  indexes(reached: Iterable<string>, sorted = true): number[] {
    const own: number[] = [];
    for (const pattern of reached) {
      let j = this.#index.get(pattern);
      if (j === undefined) {
        j = this.patterns.push(pattern) - 1;
        this.#index.set(pattern, j);
      }
      if (!own.includes(j)) own.push(j);
    }
    return sorted && own.length > 1 ? own.sort((x, y) => x - y) : own;
  }
}

/** PUBLISH's results in a reply: one per publish and pattern with subscribers. */
function resultCount(call: Call, answer: PublishReply): number {
  let results = 0;
  for (const keys of call.keys) for (const j of keys) if (answer.prev(j) !== '') results++;
  if (call.channels) for (const channel of call.channels) if (channel !== '') results++;
  return results;
}

/**
 * A single Redis with `channelLogs: 'shard'`: one script for the tick;
 * KEYS: the shard, each wildcard pattern once, then the channels that
 * keep history (their lists are on their own bases).
 */
function shardCall(publishes: readonly Publish[]): Call {
  const list = new KeyList([SHARD]);
  const patterns = list.patterns;
  const keys: number[][] = [];
  const channels: string[] = [];
  for (const p of publishes) {
    // The expansion's channel (its one name without a wildcard) goes to the shard; the rest have logs.
    const channel = p.patterns.find((pattern) => !pattern.includes('*')) ?? '';
    keys.push(list.indexes(p.patterns.filter((pattern) => pattern !== channel)));
    channels.push(channel);
  }
  const logKeys = patterns.length;
  for (const p of publishes) {
    if (p.history && !patterns.includes(p.history.channel)) patterns.push(p.history.channel);
  }
  return { patterns, publishes: publishes.map((_, i) => i), keys, channels, logKeys };
}

/** A Cluster: one script per pattern (slot), with the publishes (of `indexes`) that reach it, in call order. */
function perPattern(publishes: readonly Publish[], indexes: readonly number[]): Call[] {
  const byPattern = new Map<string, number[]>();
  for (const i of indexes) {
    for (const pattern of new Set((publishes[i] as Publish).patterns)) {
      let list = byPattern.get(pattern);
      if (!list) byPattern.set(pattern, (list = []));
      list.push(i);
    }
  }
  return [...byPattern].map(([pattern, indexes]) => ({ patterns: [pattern], publishes: indexes, keys: indexes.map(() => [0]), logKeys: 1 }));
}
