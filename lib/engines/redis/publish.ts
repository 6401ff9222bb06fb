/**
 * Publishing: the publishes a node makes in one tick (a request's or a
 * frame's run of publishes, which the Server issues back to back) go to
 * Redis together, one script per pattern of their expansions, whatever
 * their number and the number of subscribers. Each script appends the
 * messages to the pattern's log and announces them in one Pub/Sub message,
 * so other nodes hand them to their sessions in one pass, and this node
 * applies them from the script's answer (log.ts `own`), in call order.
 */
import type { PublishOptions } from '../engine.js';
import { list } from './replies.js';
import { makeEntry, type Entry } from './local-session.js';
import type { Keys } from './keys.js';
import type { PatternLogs } from './log.js';
import { PatternKey } from './lua/contract.js';
import { Scripts } from './lua/index.js';
import { publishArgs, PublishReply, PublishStatus, pushPublish } from './lua/pattern.js';
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
  readonly resolve: (recipients: number) => void;
  readonly reject: (err: unknown) => void;
}

/** One script of a batch: its patterns (KEYS), and Redis's answer. */
interface Call {
  readonly patterns: readonly string[];
  reply?: unknown[];
  error?: unknown;
}

/** The publishes of one tick. */
interface Batch {
  readonly publishes: Publish[];
  /** The expansion every publish of the batch has. */
  readonly patterns: readonly string[];
  chars: number;
  /** Settles the batch's place among the engine's ordered operations with its scripts' answers. */
  readonly send: (calls: Promise<Call[]>) => void;
}

export class Publisher {
  readonly #runner: Runner;
  readonly #keys: Keys;
  readonly #logs: PatternLogs;
  readonly #order: CallOrder;
  readonly #settings: EngineSettings;
  /** Publish ids: this prefix (unique per node), then a counter. */
  readonly #prefix: string;
  #counter = 0;
  #batch: Batch | undefined;
  readonly #onTick = () => this.flush();

  /**
   * @param order publishes resolve in call order with the engine's other ordered operations (delivers, loads).
   * @param settings log bounds and retention, sent with each script.
   * @param prefix this node's publish id prefix: its own announcements are told apart (`PatternLogs`).
   */
  constructor(runner: Runner, keys: Keys, logs: PatternLogs, order: CallOrder, settings: EngineSettings, prefix: string) {
    this.#prefix = prefix;
    this.#runner = runner;
    this.#keys = keys;
    this.#logs = logs;
    this.#order = order;
    this.#settings = settings;
  }

  /** See `Engine.publish`. Sent with the other publishes of this tick. */
  publish(patterns: readonly string[], message: string, options?: PublishOptions): Promise<number> {
    if (patterns.length === 0) return Promise.resolve(0);
    const pub = `${this.#prefix}${(++this.#counter).toString(36)}`;
    const except = [...new Set((options?.except ?? []).filter((id) => SESSION_ID.test(id)))];
    if (except.length > MAX_EXCEPT) {
      return Promise.reject(new RangeError(`RedisEngine: a publish may exclude at most ${MAX_EXCEPT} sessions (except has ${except.length})`));
    }
    let batch = this.#batch;
    if (batch && !samePatterns(batch.patterns, patterns)) {
      // A session subscribed to two patterns gets one pattern's entries of a
      // batch, then the other's: only publishes to the same patterns keep
      // their order that way.
      this.flush();
      batch = undefined;
    }
    if (!batch) {
      batch = this.#startBatch(patterns);
      this.#batch = batch;
      // After the microtasks of this tick: a run of publishes awaits between them.
      process.nextTick(this.#onTick);
    }
    const publishes = batch.publishes;
    const sent = new Promise<number>((resolve, reject) => {
      publishes.push({ patterns, message, pub, except, resolve, reject });
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
    // A pattern listed twice in an expansion is published to once.
    const patterns = [...new Set(batch.patterns)];
    // One script for all the patterns on a single Redis; one per pattern (slot) on a cluster.
    const calls: Call[] = this.#runner.isCluster ? patterns.map((pattern) => ({ patterns: [pattern] })) : [{ patterns }];
    const settings = this.#settings;
    const args = publishArgs(settings.logLength, settings.retention, this.#runner.sharded, settings.logBytes);
    for (const p of batch.publishes) pushPublish(args, p.message, p.pub, p.except);
    batch.send(Promise.all(calls.map((call) => {
      const keys = call.patterns.map((pattern) => this.#keys.pattern(pattern));
      return this.#runner.run(Scripts.publish, keys, args).then(
        (reply) => {
          call.reply = list(reply);
          return call;
        },
        (err: unknown) => {
          call.error = err;
          return call;
        },
      );
    })));
  }

  #startBatch(patterns: readonly string[]): Batch {
    let send: (calls: Promise<Call[]>) => void = () => {};
    const sent = new Promise<Call[]>((resolve) => {
      send = resolve;
    });
    const publishes: Publish[] = [];
    void this.#order.ordered(sent).then((calls) => this.#answered(publishes, calls));
    return { publishes, patterns, send, chars: 0 };
  }

  /** Redis answered a batch, in its turn: apply what it appended here, then settle each publish. */
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
      if (answer.status !== PublishStatus.Published) continue;
      // The answer: each pattern's previous id ('' no subscribers), then, for each pattern with subscribers, each publish.
      let at = answer.firstResult;
      for (let j = 0; j < call.patterns.length; j++) {
        const prev = answer.prev(j);
        if (prev === '') continue;
        const pattern = call.patterns[j] as string;
        const entries: Entry[] = [];
        for (let i = 0; i < publishes.length; i++, at += 2) {
          const n = answer.recipients(at);
          if (n <= 0) continue;
          const p = publishes[i] as Publish;
          recipients[i] = (recipients[i] as number) + n;
          (reached[i] as string[]).push(pattern);
          entries.push(makeEntry(pattern, answer.id(at), p.message, p.pub, p.except.length > 0 ? p.except : undefined));
        }
        if (entries.length > 0) applied.push(this.#logs.own(pattern, { entries, prev }));
      }
    }
    if (applied.length > 0) await Promise.all(applied);
    for (let i = 0; i < publishes.length; i++) {
      const p = publishes[i] as Publish;
      const patterns = reached[i] as string[];
      const total = recipients[i] as number;
      // On a cluster a publish may have reached some patterns and not others: it failed, as a whole.
      if (failure) p.reject(failure.error);
      else if (patterns.length < 2 || total > EXACT_COUNT_LIMIT) p.resolve(total);
      else this.#count(patterns, p.except).then(p.resolve, p.reject);
    }
  }

  /** A session subscribed to several of these patterns is one recipient. */
  async #count(patterns: readonly string[], except: readonly string[]): Promise<number> {
    const sets = await Promise.all(patterns.map((pattern) => scanSet(this.#runner, this.#keys.pattern(pattern) + PatternKey.Subs)));
    const recipients = new Set(sets.flat());
    for (const id of except) recipients.delete(id);
    return recipients.size;
  }
}

function samePatterns(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
