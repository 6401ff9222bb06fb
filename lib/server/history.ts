/**
 * Channel history and recovery (the `history` option): which channels keep
 * history, the text a published copy is handed to the engine as (with the
 * place of its position marked), `ext.recover` on `/meta/subscribe`, and
 * `cometd.history()`. The engine keeps the messages, assigns positions and
 * recovers (`Engine.recover`, `Engine.history`).
 */
import {
  type Engine, type HistoryPosition, type HistoryPublish, type HistoryQuery, type HistorySettings, MAX_EPOCH_LENGTH, type RecoverFrom, type RecoverResult,
  type SubscribeOptions,
} from '../engines/engine.js';
import { EngineLimitError } from '../engines/engine.js';
import { ProtocolErrors } from '../errors.js';
import { isMeta, isService, isValidChannel, isValidPattern, isWildcard } from '../protocol/channel.js';
import type { ServerCore } from './core.js';
import { expand } from './expand.js';
import type { Message } from './types.js';
import { isObject } from './util.js';

/** One pattern's settings in the `history` option. */
export interface HistoryPatternOptions {
  /** Most messages kept per channel. Default `100`. */
  size?: number;
  /** How long, in ms, a message is kept; a channel with no publish for this long keeps nothing. Default `300000` (5 minutes). */
  ttl?: number;
}

/** A message `cometd.history()` returns: as delivered, with its position beside it. */
export interface HistoryMessage extends Message {
  /** The same as `ext.position`. */
  position: HistoryPosition;
}

/** What `cometd.history()` resolves to. */
export interface HistoryResult extends HistoryPosition {
  /** Kept messages, oldest first. */
  messages: HistoryMessage[];
}

/** Options of `cometd.history()`. */
export interface HistoryOptions {
  /** Only messages after this position (every kept message when its epoch is not the channel's). */
  since?: HistoryPosition;
  /** At most this many: the oldest ones after `since`, or without `since` the newest ones. */
  limit?: number;
}

export const DEFAULT_HISTORY_SIZE = 100;
export const DEFAULT_HISTORY_TTL = 300_000;
/** Largest `size` (and `ext.recover.last`). */
export const MAX_HISTORY_SIZE = 1_000_000;
/** Longest `ttl`: 30 days. */
const MAX_HISTORY_TTL = 30 * 24 * 3600 * 1000;
const EPOCH = /^[A-Za-z0-9._~-]+$/;
/**
 * Characters the engine adds to a copy's text (its position), at most:
 * `{"epoch":"","offset":}` around an epoch and 16 digits.
 */
export const MAX_POSITION_CHARS = 22 + MAX_EPOCH_LENGTH + 16;
/** What comes after the position in the text handed to the engine: the end of `ext`, the end of the copy. */
const TAIL = '}}';

/** The channels that keep history, by the patterns of the `history` option. */
export class HistoryConfig {
  readonly #patterns: ReadonlyMap<string, HistorySettings>;

  constructor(patterns: ReadonlyMap<string, HistorySettings>) {
    this.#patterns = patterns;
  }

  /**
   * The settings of the most specific pattern matching `channel` (a
   * channel, not a wildcard), or undefined: a few Map lookups, over the
   * channel's expansion (cached for the publish anyway).
   */
  settingsFor(channel: string): HistorySettings | undefined {
    if (isService(channel) || isMeta(channel)) return undefined;
    for (const pattern of expand(channel)) {
      const settings = this.#patterns.get(pattern);
      if (settings) return settings;
    }
    return undefined;
  }
}

/**
 * Validate the `history` and `maxHistoryBytes` options against the engine.
 * Undefined when no channel keeps history. Throws a `TypeError` naming
 * what is wrong.
 */
export function resolveHistory(value: unknown, engine: Engine): HistoryConfig | undefined {
  const config = parseHistory(value);
  if (config && (typeof engine.recover !== 'function' || typeof engine.history !== 'function')) {
    throw new TypeError('option history needs an engine that keeps channel history (recover() and history() methods, as MemoryEngine has); ' +
      `this engine (${engine.constructor.name}) has none`);
  }
  return config;
}

/**
 * The `history` option alone (also `RedisPublisher`'s, which has no
 * engine to check): undefined when no channel keeps history; a
 * `TypeError` naming what is wrong.
 */
export function parseHistory(value: unknown): HistoryConfig | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw new TypeError('option history must be an object: channel pattern → { size, ttl }');
  const patterns = new Map<string, HistorySettings>();
  for (const [pattern, settings] of Object.entries(value)) {
    if (!isValidPattern(pattern) || isMeta(pattern) || isService(pattern)) {
      throw new TypeError(`option history: ${pattern} is not a channel pattern that can keep history (/meta/ and /service/ channels cannot)`);
    }
    if (!isObject(settings)) throw new TypeError(`option history['${pattern}'] must be an object { size, ttl }`);
    for (const key of Object.keys(settings)) {
      if (key !== 'size' && key !== 'ttl') throw new TypeError(`unknown option history['${pattern}'].${key}`);
    }
    patterns.set(pattern, {
      size: bounded(settings['size'], DEFAULT_HISTORY_SIZE, 1, MAX_HISTORY_SIZE, `history['${pattern}'].size`),
      ttl: bounded(settings['ttl'], DEFAULT_HISTORY_TTL, 1, MAX_HISTORY_TTL, `history['${pattern}'].ttl`),
    });
  }
  return patterns.size === 0 ? undefined : new HistoryConfig(patterns);
}

function bounded(value: unknown, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(`option ${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

// ---------------------------------------------------------------- publish

/**
 * The text of a copy published to a history channel, and where its
 * position goes: `ext` last, `position` the last field of `ext`, so the
 * position goes just before the closing `}}` and the engine splices
 * without measuring the text (see `HistoryPublish`). An `ext.position`
 * the publisher or a hook set is replaced: only the engine assigns one.
 */
export function historyText(copy: Message, channel: string, settings: HistorySettings): { text: string; history: HistoryPublish } {
  const ext = copy.ext;
  let inner = '{';
  if (isObject(ext)) {
    const { position: _replaced, ...others } = ext;
    const text = JSON.stringify(others);
    if (text.length > 2) inner = text.slice(0, -1) + ',';
  }
  // JSON.stringify leaves out a field whose value is undefined: `ext` is written last, below.
  const head = JSON.stringify(ext === undefined ? copy : { ...copy, ext: undefined });
  const text = head.slice(0, -1) + (head.length > 2 ? ',' : '') + '"ext":' + inner + '"position":' + TAIL;
  return { text, history: { channel, size: settings.size, ttl: settings.ttl, tail: TAIL.length } };
}

/**
 * The text the Server handed the engine for a delivered history copy
 * (the position taken out again), so in-process subscribers can find who
 * published it. Undefined for a text without a position.
 */
export function unspliced(text: string): string | undefined {
  if (!text.endsWith(TAIL)) return undefined;
  const at = text.lastIndexOf('"position":{');
  if (at < 0) return undefined;
  return text.slice(0, at + 11) + TAIL;
}

// ---------------------------------------------------------------- recover on subscribe

/** What a `/meta/subscribe` with `ext.recover` asks for, checked. */
export interface RecoverRequest {
  channel: string;
  from: RecoverFrom;
  settings: HistorySettings;
}

/**
 * The recovery a `/meta/subscribe` asks for (`ext.recover`), or undefined
 * when it asks for none. Refuses, with a `BayeuxError` naming the field,
 * anything but one channel that keeps history and a well-formed position
 * or `{ last }`.
 */
export function recoverRequest(core: ServerCore, message: Message, patterns: readonly unknown[]): RecoverRequest | undefined {
  const ext = message.ext;
  if (!isObject(ext) || ext['recover'] === undefined) return undefined;
  const channel = patterns[0];
  if (patterns.length !== 1 || typeof channel !== 'string' || isWildcard(channel)) {
    throw ProtocolErrors.recoverNeedsChannel(patterns.map(String).join(' '));
  }
  const settings = core.options.history?.settingsFor(channel);
  if (!settings) throw ProtocolErrors.noHistory(channel);
  return { channel, from: recoverFrom(ext['recover']), settings };
}

/** `ext.recover` checked: `{ epoch, offset }` or `{ last }`. */
function recoverFrom(value: unknown): RecoverFrom {
  if (!isObject(value)) throw ProtocolErrors.recoverInvalid('recover');
  if ('last' in value) {
    if ('epoch' in value || 'offset' in value) throw ProtocolErrors.recoverInvalid('recover');
    const last = value['last'];
    if (typeof last !== 'number' || !Number.isInteger(last) || last < 0 || last > MAX_HISTORY_SIZE) throw ProtocolErrors.recoverInvalid('last');
    return { last };
  }
  return position(value, ProtocolErrors.recoverInvalid);
}

/** A client's position, checked; `fail` makes the error naming the bad field. */
function position(value: Record<string, unknown>, fail: (field: string) => Error): HistoryPosition {
  const { epoch, offset } = value;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH || !EPOCH.test(epoch)) throw fail('epoch');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw fail('offset');
  return { epoch, offset };
}

/**
 * Subscribe with a recovery: the engine subscribes and queues what was
 * missed in one step. Null for an unknown session.
 */
export async function recoverSession(core: ServerCore, clientId: string, request: RecoverRequest, options?: SubscribeOptions): Promise<RecoverResult | null> {
  const engine = core.engine;
  try {
    return await (engine.recover as NonNullable<Engine['recover']>).call(engine, clientId, request.channel, request.from, request.settings, options);
  } catch (err) {
    if (err instanceof EngineLimitError) throw ProtocolErrors.subscriptionLimit(core.options.maxSubscriptions);
    throw err;
  }
}

// ---------------------------------------------------------------- cometd.history()

/** `cometd.history(channel, options)`. */
export async function readHistory(core: ServerCore, channel: unknown, options: unknown): Promise<HistoryResult> {
  if (!isValidChannel(channel) || isMeta(channel) || isService(channel)) throw ProtocolErrors.channelInvalid(channel);
  const settings = core.options.history?.settingsFor(channel);
  if (!settings) throw ProtocolErrors.noHistory(channel);
  const query = historyQuery(options);
  await core.open();
  const engine = core.engine;
  const read = await (engine.history as NonNullable<Engine['history']>).call(engine, channel, settings, query);
  const messages = read.messages.map((text) => {
    const message = JSON.parse(text) as HistoryMessage;
    message.position = (message.ext as { position: HistoryPosition }).position;
    return message;
  });
  return { epoch: read.epoch, offset: read.offset, messages };
}

function historyQuery(options: unknown): HistoryQuery {
  if (options === undefined) return {};
  if (!isObject(options)) throw new TypeError('history options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'since' && key !== 'limit') throw new TypeError(`unknown history option ${key}`);
  }
  const query: HistoryQuery = {};
  const { since, limit } = options;
  if (since !== undefined) {
    if (!isObject(since)) throw new TypeError('history option since must be a position { epoch, offset }');
    query.since = position(since, (field) => new TypeError(`history option since.${field} is not valid`));
  }
  if (limit !== undefined) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0) throw new TypeError('history option limit must be an integer >= 0');
    query.limit = limit;
  }
  return query;
}
