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
 * ARGV: maxlen ('' none), retention ms, 'S' (SPUBLISH) or 'P' (PUBLISH),
 * maxbytes ('' none), then per publish: the number of its keys, their
 * indexes in KEYS, then message, publish id, except (comma-separated
 * ids, or '-'), the message's length in JS characters.
 *
 * → { 0 } when no pattern has subscribers, else { 1, then for each key
 * the log's previous stream id ('' no subscribers), then for each publish
 * and each of its keys with subscribers: subscribers not in except,
 * stream id ('' when not appended), then the ordinals (from 1) of the
 * publishes before which the waiting announcements were sent }: the
 * publishing node applies its own publishes in the same announcements.
 *
 * The announcement: `<prev> <count>` then per entry ` <id> <pub> <except>
 * <length> <message>`: the length lets a reader cut the message out, and
 * `prev` (the log's entry before these) lets it see a gap.
 */
export const PUBLISH = `
-- PUBLISH: a tick's publishes, logged once per pattern with subscribers, announced in call order.
-- KEYS[1..] pattern bases (of one slot on a Cluster)
-- ARGV[1] maxlen ('' none)   ARGV[2] retention (ms)   ARGV[3] 'S' SPUBLISH | 'P' PUBLISH   ARGV[4] maxbytes ('' none)
-- ARGV[5..] per publish: nk, nk indexes into KEYS, message, publish id, except ids or '-', length in JS characters
-- Reply: { 0 NoSubscribers } | { 1 Published, prev per key ('' none), then per publish, per its keys with subscribers: recipients, stream id or '',
--   then the ordinals (from 1) of the publishes before which the waiting announcements were sent }
local nkeys = #KEYS
local n = {}
local any = false
for j = 1, nkeys do
  n[j] = redis.call('SCARD', KEYS[j] .. ':subs')
  if n[j] > 0 then any = true end
end
if not any then return { 0 } end
local out = { 1 }
-- Per key with subscribers: the newest id, the log's bytes, when its keys expire (ms; see the end), the ms of the
-- index's head (nil: unknown), the index length.
local last, bytes, expires, heads, lens = {}, {}, {}, {}, {}
for j = 1, nkeys do
  local prev = ''
  if n[j] > 0 then
    local got = redis.call('MGET', KEYS[j] .. ':last', KEYS[j] .. ':bytes')
    prev = got[1] or '0-0'
    last[j] = prev
    local b, e, h = string.match(got[2] or '', '^(%d+) ?(%d*) ?(%d*)$')
    bytes[j] = tonumber(b) or 0
    expires[j] = tonumber(e) or 0
    heads[j] = tonumber(h)
  end
  out[j + 1] = prev
end
-- Waiting announcements: per key its parts and the ordinals of its publishes; waiting[] in the order they go out.
local pending, has, waiting = {}, {}, {}
local cuts = {}
local function announce()
  for w = 1, #waiting do
    local j = waiting[w]
    local parts = pending[j]
    parts[2] = tostring((#parts - 2) / 5)
    local payload = table.concat(parts, ' ')
    if ARGV[3] == 'S' then redis.call('SPUBLISH', KEYS[j], payload) else redis.call('PUBLISH', KEYS[j], payload) end
    pending[j], has[j] = nil, nil
  end
  waiting = {}
end
-- Whether a publish reaching the keys in inR may join the waiting announcements: it raises the newest
-- entry of each waiting key X it reaches, so every key waiting after X must hold nothing X lacks.
local function keepsOrder(inR)
  for v = 1, #waiting do
    local x = waiting[v]
    if inR[x] then
      for w = v + 1, #waiting do
        for t in pairs(has[waiting[w]]) do
          if not has[x][t] then return false end
        end
      end
    end
  end
  return true
end
local kept, counts = {}, {}
local nargs = #ARGV
local at, ordinal = 5, 0
while at <= nargs do
  ordinal = ordinal + 1
  local nk = tonumber(ARGV[at])
  local m = at + nk + 1
  local message, pub, except, length = ARGV[m], ARGV[m + 1], ARGV[m + 2], ARGV[m + 3]
  local inR, r = {}, 0
  for q = 1, nk do
    local j = tonumber(ARGV[at + q])
    if n[j] > 0 then
      local k, x = n[j], '-'
      if except ~= '-' then
        local found = {}
        local subs = KEYS[j] .. ':subs'
        for id in string.gmatch(except, '[^,]+') do
          if redis.call('SISMEMBER', subs, id) == 1 then
            k = k - 1
            found[#found + 1] = id
          end
        end
        if #found > 0 then x = table.concat(found, ',') end
      end
      counts[q], kept[q] = k, x
      if k > 0 then
        r = r + 1
        inR[j] = true
      end
    else
      counts[q] = -1
    end
  end
  if r > 0 and #waiting > 0 and not keepsOrder(inR) then
    announce()
    cuts[#cuts + 1] = ordinal
  end
  for q = 1, nk do
    local k = counts[q]
    if k > 0 then
      local j = tonumber(ARGV[at + q])
      local x = kept[q]
      local id = redis.call('XADD', KEYS[j] .. ':log', '*', 'm', message, 'u', pub, 'x', x)
      local size = #message + #pub + #x + ${ENTRY_OVERHEAD}
      lens[j] = redis.call('RPUSH', KEYS[j] .. ':index', id .. ' ' .. size)
      bytes[j] = bytes[j] + size
      local parts = pending[j]
      if not parts then
        parts = { last[j], '' }
        pending[j], has[j] = parts, {}
        waiting[#waiting + 1] = j
      end
      has[j][ordinal] = true
      local p = #parts
      parts[p + 1] = id
      parts[p + 2] = pub
      parts[p + 3] = x
      parts[p + 4] = length
      parts[p + 5] = message
      last[j] = id
      out[#out + 1] = k
      out[#out + 1] = id
    elseif k == 0 then
      out[#out + 1] = 0
      out[#out + 1] = ''
    end
  end
  at = m + 4
end
announce()
local maxlen, retention = tonumber(ARGV[1]) or math.huge, tonumber(ARGV[2])
local maxbytes = tonumber(ARGV[4]) or math.huge
local now, cutoff
for j = 1, nkeys do
  if n[j] > 0 and last[j] ~= out[j + 1] then
    local base = KEYS[j]
    local log, index = base .. ':log', base .. ':index'
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      cutoff = now - retention
    end
    local total = bytes[j]
    local len = lens[j]
    local hms = heads[j]
    -- The index is read only when something may be trimmed: the head's age is kept with the bytes.
    if hms == nil or len > maxlen or total > maxbytes or hms < cutoff then
      local head
      local trimmed = false
      while len > 1 do
        head = redis.call('LINDEX', index, 0)
        hms = tonumber(string.match(head, '^(%d+)')) or 0
        if len > maxlen or total > maxbytes or hms < cutoff then
          redis.call('LPOP', index)
          total = total - (tonumber(string.sub(head, string.find(head, ' ', 1, true) + 1)) or 0)
          len = len - 1
          trimmed = true
          head = nil
        else
          break
        end
      end
      head = head or redis.call('LINDEX', index, 0)
      hms = tonumber(string.match(head, '^(%d+)')) or 0
      if trimmed then
        redis.call('XTRIM', log, 'MINID', string.sub(head, 1, string.find(head, ' ', 1, true) - 1))
      end
    end
    if total < 0 then total = 0 end
    -- The pattern's keys expire together, between retention and 1.5 x retention after its last publish:
    -- log and index get a new expiry only when less than retention of it is left, not at every publish.
    local at = expires[j]
    if at - now < retention then
      at = now + math.floor(retention * 1.5)
      redis.call('PEXPIRE', log, at - now)
      redis.call('PEXPIRE', index, at - now)
    end
    redis.call('SET', base .. ':bytes', string.format('%.0f %.0f %.0f', total, at, hms), 'PX', at - now)
    redis.call('SET', base .. ':last', last[j], 'PX', at - now)
  end
end
for c = 1, #cuts do out[#out + 1] = cuts[c] end
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

/**
 * One publish's ARGV: the number of its patterns, their indexes in KEYS
 * (`keys`, from 0 here, from 1 in Lua), message, publish id, except ('-'
 * none), length in JS characters.
 */
export function pushPublish(args: string[], keys: readonly number[], message: string, pub: string, except: readonly string[]): void {
  args.push(String(keys.length));
  for (const j of keys) args.push(String(j + 1));
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

  /** After the results (ending at `end`): the ordinals (from 1) of the publishes before which the script sent its waiting announcements. */
  cuts(end: number): Set<number> {
    const cuts = new Set<number>();
    for (let i = end; i < this.#reply.length; i++) cuts.add(int(this.#reply[i]));
    return cuts;
  }
}

export function addSubscriberArgs(id: string): string[] {
  return [id];
}

/** ADD_SUBSCRIBER's reply: the new subscriber's position. */
export function parseAddSubscriber(reply: unknown): string {
  return text(reply);
}
