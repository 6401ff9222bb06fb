/**
 * `RedisPublisher`: publish from a process that runs no server (a queue
 * worker, a cron job, a script). It writes into Redis exactly what a
 * node's `cometd.publish` writes: the message serialized as the Server
 * serializes a published copy (`channel`, `data`, `id`, `ext`), appended
 * to the log of each pattern of the channel's expansion that has
 * subscribers and announced there (the same `Publisher`, the same PUBLISH
 * script), so every node hands it to its sessions over every transport.
 * `deliver` runs the same DELIVER script as a node's `cometd.deliver`:
 * the session's holder is told. No session, no node id in `{nodes}`, no
 * timers beyond the runner's watchdog.
 */
import { randomBytes } from 'node:crypto';
import { ProtocolErrors } from '../../errors.js';
import { isPublishable, isService } from '../../protocol/channel.js';
import type { Message } from '../../protocol/message.js';
import { expand } from '../../server/expand.js';
import { historyText, MAX_POSITION_CHARS, parseHistory, type HistoryConfig, type HistoryPatternOptions } from '../../server/history.js';
import { isClientId, newClientId } from '../client-id.js';
import { EngineUnavailableError, type EngineLogger, type PublishOptions } from '../engine.js';
import { ExpiryReports } from './expiry.js';
import { Keys } from './keys.js';
import { PatternLogs } from './log.js';
import { SessionStatus } from './lua/contract.js';
import { Scripts } from './lua/index.js';
import { deliverArgs, parseDeliver } from './lua/session.js';
import { layoutError, otherLayout } from './nodes.js';
import { checkChannelLogs, resolveOptions, type RedisEngineOptions, type RedisEngineSource, type ResolvedOptions } from './options.js';
import { CallOrder } from './order.js';
import { Publisher } from './publish.js';
import { Runner } from './runner.js';
import { EngineSettings, HostLink } from './settings.js';

/**
 * `RedisPublisher`'s options: those of `RedisEngine` that concern writing
 * (validated the same way), plus `maxMessageBytes`. Give it the `prefix`
 * (and log bounds) your nodes use.
 */
export interface RedisPublisherOptions extends Pick<RedisEngineOptions, 'prefix' | 'openTimeout' | 'commandTimeout' | 'reconnectMaxDelay' | 'channelLogs' | 'maxShardLogBytes'> {
  /**
   * Most entries a pattern's log keeps, as the nodes' `logLength` (they
   * also bound it by the Server's `maxQueue`: give the smaller of the two).
   * @default 10000
   */
  logLength?: number;
  /**
   * Most bytes a pattern's log holds, as the nodes' `maxLogBytes` (they
   * also bound it by the Server's `maxQueueBytes`: give the smaller). At least 1024.
   * @default 4194304 (4 MiB)
   */
  maxLogBytes?: number;
  /**
   * How long, in ms, a pattern's log keeps an entry, trimmed at each
   * publish. The nodes raise theirs to their sessions' lifetime (`timeout`
   * plus `maxInterval`); a publisher cannot learn it: above 60 s, give it here.
   * @default 60000
   */
  logRetention?: number;
  /**
   * Where connection trouble is reported (lost, restored; once each per
   * outage): `warn`, and `info` when it has one. A winston logger fits.
   * @default console.warn
   */
  logger?: EngineLogger;
  /**
   * Largest message, in bytes of its JSON text (UTF-8), `publish` and
   * `deliver` accept; a larger one rejects with the `BayeuxError`
   * `413:<max>:message_too_large` and is written nowhere. Keep it at the
   * nodes' `maxMessageBytes`.
   * @default 1048576 (1 MiB, the nodes' default)
   */
  maxMessageBytes?: number;
  /**
   * The nodes' `history` option (channel pattern → `{ size, ttl }`): give
   * the same, so a publish to a history channel gets its position and is
   * kept, as a node's `cometd.publish` is. Without it such a publish is
   * delivered without a position and not kept.
   * @default undefined (no channel keeps history)
   */
  history?: Record<string, HistoryPatternOptions>;
}

/** `RedisPublisher.publish` options, as `cometd.publish`'s. */
export interface RedisPublishOptions {
  /** A clientId, or a list of them, that must not receive this message. */
  except?: string | readonly string[];
  /** The `ext` every copy carries. */
  ext?: Record<string, unknown>;
  /** The `id` every copy carries. */
  id?: string | number;
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['prefix', 'openTimeout', 'commandTimeout', 'reconnectMaxDelay', 'logLength', 'maxLogBytes', 'logRetention', 'channelLogs', 'maxShardLogBytes', 'logger']);

export class RedisPublisher {
  readonly #options: ResolvedOptions;
  readonly #maxMessageBytes: number;
  readonly #history: HistoryConfig | undefined;
  readonly #runner: Runner;
  readonly #keys: Keys;
  /** Publishes and delivers, settled in the order they were called. */
  readonly #order = new CallOrder();
  readonly #publisher: Publisher;
  readonly #expiry: ExpiryReports;
  /** The caller named in DELIVER: never a session's holder, so the holder is always told. */
  readonly #callerId = newClientId();
  #opened = false;
  #opening: Promise<void> | undefined;
  #closed = false;

  /**
   * @param source `{ url }`, `{ client }` or `{ cluster: { rootNodes } }`, as for `RedisEngine`.
   * @param options see {@link RedisPublisherOptions}; a bad or unknown one throws a `TypeError` naming it.
   */
  constructor(source: RedisEngineSource, options: RedisPublisherOptions = {}) {
    if (source === null || typeof source !== 'object') {
      throw new TypeError('RedisPublisher needs { url }, { client } or { cluster: { rootNodes } }');
    }
    if (options === null || typeof options !== 'object') throw new TypeError('RedisPublisher options must be an object');
    const { maxMessageBytes, history, ...engineOptions } = options;
    this.#history = parseHistory(history);
    if (maxMessageBytes !== undefined && (typeof maxMessageBytes !== 'number' || !Number.isInteger(maxMessageBytes) || maxMessageBytes < 64)) {
      throw new TypeError('RedisPublisher option maxMessageBytes must be an integer >= 64');
    }
    this.#maxMessageBytes = maxMessageBytes ?? 1_048_576;
    this.#options = resolveOptions(engineOptions, 'RedisPublisher', OPTION_NAMES);
    const hasSource = ('url' in source && typeof source.url === 'string' && source.url !== '')
      || ('client' in source && typeof source.client === 'object' && source.client !== null)
      || ('cluster' in source && typeof source.cluster === 'object' && source.cluster !== null && Array.isArray(source.cluster.rootNodes) && source.cluster.rootNodes.length > 0);
    if (!hasSource) throw new TypeError('RedisPublisher needs { url } (a non-empty string), { client } or { cluster: { rootNodes: [{ url }] } }');
    checkChannelLogs(source, this.#options, 'RedisPublisher');
    const runner = new Runner(source, this.#options);
    const keys = new Keys(this.#options.prefix);
    this.#runner = runner;
    this.#keys = keys;
    // Its publish ids start with a prefix of its own, like a node's: every node applies its announcements.
    const prefix = `${randomBytes(6).toString('base64url')}.`;
    // It follows no log: the answers of its publishes are applied nowhere here.
    const shard = this.#options.channelLogs === 'shard';
    const logs = new PatternLogs(runner, keys, { fanOut: () => undefined }, prefix, shard);
    // Log bounds and retention as the options say (no Server limits lower them here).
    this.#publisher = new Publisher(runner, keys, logs, this.#order, new EngineSettings(this.#options), prefix, shard);
    // A DELIVER may find its session past its deadline and remove it: its subscriptions are cleaned up here;
    // no Server is told (the host link has none).
    this.#expiry = new ExpiryReports(runner, keys, new HostLink((message) => runner.log('warn', message)));
  }

  /**
   * Publish `data` to `channel` as `cometd.publish` on a node would: every
   * subscriber on every node receives it (in-process subscribers with
   * `info.client` undefined). Resolves, once Redis accepted it, to the
   * number of sessions it was queued for. Publishes called one after the
   * other reach subscribers in that order. Rejects with
   * `EngineUnavailableError` when Redis is out of reach (within
   * `commandTimeout`; the first call also waits up to `openTimeout` for
   * the connection), `405:<channel>:invalid_channel` for a channel one
   * cannot publish to, `413:<max>:message_too_large` over `maxMessageBytes`.
   */
  async publish(channel: string, data: unknown, options: RedisPublishOptions = {}): Promise<number> {
    if (!isPublishable(channel) || isService(channel)) throw ProtocolErrors.channelInvalid(channel);
    const { except, ext, id } = checkPublishOptions(options);
    const copy: Message = { channel, data };
    if (id !== undefined) copy.id = id;
    if (ext !== undefined) copy.ext = ext;
    // A history channel's copy has the place of its position marked, as the Server writes it; the script fills it in.
    const settings = this.#history?.settingsFor(channel);
    const kept = settings ? historyText(copy, channel, settings) : undefined;
    const message = this.#checked(kept ? kept.text : JSON.stringify(copy), kept ? MAX_POSITION_CHARS : 0);
    await this.#open();
    const engineOptions: PublishOptions = {};
    if (except) engineOptions.except = except;
    if (kept) engineOptions.history = kept.history;
    return this.#publisher.publish(expand(channel), message, engineOptions);
  }

  /**
   * Push one message to one session, on whichever node holds it, as
   * `cometd.deliver` does. Resolves to false for an unknown session.
   */
  async deliver(clientId: string, channel: string, data: unknown): Promise<boolean> {
    if (!isPublishable(channel)) throw ProtocolErrors.channelInvalid(channel);
    if (typeof clientId !== 'string') throw new TypeError('deliver: clientId must be a string');
    const message = this.#serialize({ channel, data });
    if (!isClientId(clientId)) return false;
    await this.#open();
    // Publishes called before it reach Redis before it.
    this.#publisher.flush();
    const args = [this.#keys.nodeChannelPrefix, clientId, ...deliverArgs(message, String(this.#options.logLength), this.#callerId, String(this.#options.maxLogBytes))];
    const reply = parseDeliver(await this.#order.ordered(this.#runner.run(Scripts.deliver, this.#keys.bucket(clientId), args)));
    if (reply.status === SessionStatus.Live) return true;
    // Expired by this script: its subscriptions leave the patterns' sets (no node reports this expiry).
    if (reply.status === SessionStatus.Expired || reply.status === SessionStatus.ExpiredWithGrave) {
      await this.#expiry.expired(clientId, reply.status === SessionStatus.ExpiredWithGrave);
    }
    return false;
  }

  /** Wait for what was published (at most `commandTimeout` each), then drop the connections; later calls reject. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#opening?.catch(() => undefined);
    this.#publisher.flush();
    // Settles once every earlier publish and deliver has.
    await this.#order.ordered(Promise.resolve()).catch(() => undefined);
    await this.#runner.close();
  }

  #open(): Promise<void> {
    if (this.#closed) return Promise.reject(new EngineUnavailableError(`RedisPublisher is closed (${this.#runner.where})`));
    if (this.#opened) return Promise.resolve();
    this.#opening ??= this.#runner.open(this.#options.logger, { resubscribed: () => undefined }).then(
      async () => {
        // The nodes' channel-log layout must be this publisher's: else its publishes would not reach their sessions.
        const other = await otherLayout(this.#runner, this.#keys, this.#options.channelLogs).catch(async (err: unknown) => {
          await this.#runner.close();
          throw err;
        });
        if (other) {
          await this.#runner.close();
          throw layoutError('RedisPublisher', this.#options.channelLogs, other);
        }
        this.#opened = true;
        this.#opening = undefined;
      },
      (err: unknown) => {
        // The next call tries again.
        this.#opening = undefined;
        throw err;
      },
    );
    return this.#opening;
  }

  /** JSON text of a message, within `maxMessageBytes` (measured as the Server measures). */
  #serialize(message: Message): string {
    return this.#checked(JSON.stringify(message), 0);
  }

  /** `json`, if it is within `maxMessageBytes` with `added` more characters (a position to come). */
  #checked(json: string, added: number): string {
    const max = this.#maxMessageBytes;
    const length = json.length + added;
    if (length * 3 > max && (length > max || Buffer.byteLength(json) + added > max)) throw ProtocolErrors.messageTooLarge(max);
    return json;
  }
}

/** Validate `publish()` options as `cometd.publish` does; TypeErrors name the bad one. */
function checkPublishOptions(options: RedisPublishOptions): { except: string[] | undefined; ext: Record<string, unknown> | undefined; id: string | number | undefined } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new TypeError('publish options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'except' && key !== 'ext' && key !== 'id') throw new TypeError(`unknown publish option ${key}`);
  }
  const { except, ext, id } = options;
  let ids: string[] | undefined;
  if (typeof except === 'string') ids = [except];
  else if (Array.isArray(except) && except.every((e) => typeof e === 'string')) ids = [...(except as readonly string[])];
  else if (except !== undefined) throw new TypeError('publish option except must be a clientId or a list of them');
  if (ext !== undefined && (typeof ext !== 'object' || ext === null || Array.isArray(ext))) throw new TypeError('publish option ext must be an object');
  if (id !== undefined && typeof id !== 'string' && typeof id !== 'number') throw new TypeError('publish option id must be a string or a number');
  return { except: ids && ids.length > 0 ? ids : undefined, ext, id };
}
