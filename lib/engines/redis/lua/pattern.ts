/**
 * The pattern scripts. A pattern's keys share its hash slot: its base is
 * `<prefix>{p:<pattern>}`; `<base>:subs` is the set of its subscribers'
 * ids, `<base>:log` the stream of what was published to it, `<base>:index` and
 * `<base>:bytes` the log's entry sizes and their sum, `<base>:last`
 * the stream id of the newest entry, and `<base>` the (sharded) Pub/Sub
 * channel the nodes that hold subscribers listen on.
 */
import { int, text } from '../replies.js';

/**
 * What a log entry costs Redis beyond its message, publish id and except
 * list (stream id and fields, the index entry), counted against `maxLogBytes`.
 */
export const ENTRY_OVERHEAD = 100;

/**
 * Publish once, whatever the number of subscribers: the publishes a node
 * made in one tick to one channel, in one script. KEYS: pattern bases
 * (of the channel's expansion), one on Redis Cluster (every key of a
 * script in one slot), all of them on a single Redis, so a pattern without
 * subscribers costs one SCARD. For each pattern with subscribers: append
 * the publishes to the log, trim it, announce them in one message.
 *
 * The log is trimmed exactly, oldest entries first, to at most maxlen
 * entries, maxbytes bytes and retention ms of age (Redis's clock); the
 * newest entry always stays. Its index, `<base>:index`, a list in log
 * order of `<stream id> <bytes>` (the entry's message, publish id and
 * except list, plus {@link ENTRY_OVERHEAD}), and `<base>:bytes`, their
 * sum, say what to trim without reading the messages back. Entries a
 * log holds without an index entry (written by an older version) go with
 * the first trim, at the latest `retention` ms later. Every key of the pattern expires `retention` ms after
 * its last publish.
 *
 * Only the excluded ids that are subscribers of the pattern are stored
 * with an entry and announced (the engine refuses more than MAX_EXCEPT).
 *
 * ARGV: maxlen ('' none), retention ms, 'S' (SPUBLISH) or 'P' (PUBLISH),
 * maxbytes ('' none), then four per publish: message, publish id, except
 * (comma-separated ids, or '-'), the message's length in JS characters.
 *
 * → { 0 } when no pattern has subscribers, else { 1, then for each key
 * the log's previous stream id ('' no subscribers), then for each key with
 * subscribers and each publish: subscribers not in except, stream id (''
 * when not appended) }.
 *
 * The announcement: `<prev> <count>` then per entry ` <id> <pub> <except>
 * <length> <message>`: the length lets a reader cut the message out, and
 * `prev` (the log's newest entry before these) lets it see a gap.
 */
export const PUBLISH = `
-- PUBLISH: a tick's publishes to one channel, logged and announced once per pattern with subscribers.
-- KEYS[1..] pattern bases (one on a Cluster)
-- ARGV[1] maxlen ('' none)   ARGV[2] retention (ms)   ARGV[3] 'S' SPUBLISH | 'P' PUBLISH   ARGV[4] maxbytes ('' none)
-- ARGV[5..] (message, publish id, except ids or '-', length in JS characters) per publish
-- Reply: { 0 NoSubscribers } | { 1 Published, prev per key ('' none), then per key with subscribers, per publish: recipients, stream id or '' }
local nkeys = #KEYS
local n = {}
local any = false
for j = 1, nkeys do
  n[j] = redis.call('SCARD', KEYS[j] .. ':subs')
  if n[j] > 0 then any = true end
end
if not any then return { 0 } end
local out = { 1 }
local prevs = {}
for j = 1, nkeys do
  if n[j] > 0 then prevs[j] = redis.call('GET', KEYS[j] .. ':last') or '0-0' else prevs[j] = '' end
  out[j + 1] = prevs[j]
end
local maxlen, retention = tonumber(ARGV[1]) or math.huge, tonumber(ARGV[2])
local maxbytes = tonumber(ARGV[4]) or math.huge
local cutoff
for j = 1, nkeys do
  if n[j] > 0 then
    local base = KEYS[j]
    local log, subs, index, total = base .. ':log', base .. ':subs', base .. ':index', base .. ':bytes'
    local parts = { prevs[j], '' }
    local appended = 0
    local last
    local bytes = tonumber(redis.call('GET', total) or '0') or 0
    for at = 5, #ARGV, 4 do
      local message, pub, except = ARGV[at], ARGV[at + 1], ARGV[at + 2]
      local k = n[j]
      if except ~= '-' then
        local kept = {}
        for x in string.gmatch(except, '[^,]+') do
          if redis.call('SISMEMBER', subs, x) == 1 then
            k = k - 1
            kept[#kept + 1] = x
          end
        end
        if #kept == 0 then except = '-' else except = table.concat(kept, ',') end
      end
      if k > 0 then
        local id = redis.call('XADD', log, '*', 'm', message, 'u', pub, 'x', except)
        local size = #message + #pub + #except + ${ENTRY_OVERHEAD}
        redis.call('RPUSH', index, id .. ' ' .. size)
        bytes = bytes + size
        last = id
        appended = appended + 1
        parts[#parts + 1] = id
        parts[#parts + 1] = pub
        parts[#parts + 1] = except
        parts[#parts + 1] = ARGV[at + 3]
        parts[#parts + 1] = message
        out[#out + 1] = k
        out[#out + 1] = id
      else
        out[#out + 1] = 0
        out[#out + 1] = ''
      end
    end
    if last then
      if not cutoff then
        local t = redis.call('TIME')
        cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - retention
      end
      local len = redis.call('LLEN', index)
      local trimmed = false
      while len > 1 do
        local head = redis.call('LINDEX', index, 0)
        local sp = string.find(head, ' ', 1, true)
        local hms = tonumber(string.match(head, '^(%d+)')) or 0
        if len > maxlen or bytes > maxbytes or hms < cutoff then
          redis.call('LPOP', index)
          bytes = bytes - (tonumber(string.sub(head, sp + 1)) or 0)
          len = len - 1
          trimmed = true
        else
          break
        end
      end
      if trimmed then
        local head = redis.call('LINDEX', index, 0)
        redis.call('XTRIM', log, 'MINID', string.sub(head, 1, string.find(head, ' ', 1, true) - 1))
      end
      if bytes < 0 then bytes = 0 end
      redis.call('SET', total, string.format('%.0f', bytes), 'PX', retention)
      redis.call('SET', base .. ':last', last, 'PX', retention)
      redis.call('PEXPIRE', log, retention)
      redis.call('PEXPIRE', index, retention)
      parts[2] = tostring(appended)
      local payload = table.concat(parts, ' ')
      if ARGV[3] == 'S' then redis.call('SPUBLISH', base, payload) else redis.call('PUBLISH', base, payload) end
    end
  end
end
return out
`;

/** Step 2 of subscribe: ARGV: id → the stream id of the newest entry (the new subscriber's position) */
export const ADD_SUBSCRIBER = `
-- ADD_SUBSCRIBER: step 2 of subscribe.
-- KEYS[1] pattern base
-- ARGV[1] id
-- Reply: the stream id of the log's newest entry ('0-0' none): the subscriber's position
redis.call('SADD', KEYS[1] .. ':subs', ARGV[1])
return redis.call('GET', KEYS[1] .. ':last') or '0-0'
`;

/** PUBLISH's first reply element. */
export const PublishStatus = { NoSubscribers: 0, Published: 1 } as const;
export type PublishStatus = (typeof PublishStatus)[keyof typeof PublishStatus];

/**
 * PUBLISH's ARGV before the publishes; {@link pushPublish} adds each
 * (the publish path builds one array, no intermediate lists).
 */
export function publishArgs(maxlen: string, retention: number, sharded: boolean, maxbytes: string): string[] {
  return [maxlen, String(retention), sharded ? 'S' : 'P', maxbytes];
}

/** One publish's four ARGV: message, publish id, except ('-' none), length in JS characters. */
export function pushPublish(args: string[], message: string, pub: string, except: readonly string[]): void {
  args.push(message, pub, except.length > 0 ? except.join(',') : '-', String(message.length));
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
    return int(this.#reply[0]) === PublishStatus.Published ? PublishStatus.Published : PublishStatus.NoSubscribers;
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
}

export function addSubscriberArgs(id: string): string[] {
  return [id];
}

/** ADD_SUBSCRIBER's reply: the new subscriber's position. */
export function parseAddSubscriber(reply: unknown): string {
  return text(reply);
}
