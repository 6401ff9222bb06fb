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
 */

/**
 * How long, beyond its `ttl`, a channel's position (`<base>:h`: epoch,
 * offset) outlives its last publish or read, in ms: a client that comes
 * back within a day to a channel that went quiet recovers (nothing was
 * missed) instead of finding a new epoch. About 100 bytes per channel.
 */
export const HISTORY_POSITION_KEEP = 86_400_000;

/**
 * Lua shared by PUBLISH and HISTORY: a channel's history on its exact
 * pattern base (`<base>:h` position and bytes, `<base>:hm` the kept
 * entries `<ms> <text>`, oldest first).
 */
const HISTORY_LUA = `
-- Opens a channel's history: its position (a new epoch when it has none: new, expired, or Redis lost it), without
-- what is past ttl.
local function h_open(base, ttl, now, t)
  local h = { base = base, list = base .. ':hm' }
  local got = redis.call('GET', base .. ':h')
  local epoch, offset, bytes
  if got then epoch, offset, bytes = string.match(got, '^(%S+) (%d+) (%d+)$') end
  if epoch then
    h.epoch, h.offset, h.bytes = epoch, tonumber(offset), tonumber(bytes)
    h.len = redis.call('LLEN', h.list)
  else
    h.epoch, h.offset, h.bytes, h.len = t[1] .. '.' .. t[2], 0, 0, 0
    redis.call('DEL', h.list)
  end
  if h.len == 0 then h.bytes = 0 end
  local cutoff = now - ttl
  while h.len > 0 do
    local head = redis.call('LINDEX', h.list, 0)
    if (tonumber(string.match(head, '^(%d+)')) or 0) > cutoff then break end
    redis.call('LPOP', h.list)
    h.bytes = h.bytes - #head
    h.len = h.len - 1
  end
  return h
end
-- Drops the oldest entries beyond size (one LRANGE and one LTRIM), then beyond maxbytes.
local function h_bound(h, size, maxbytes)
  local excess = h.len - size
  if excess > 0 then
    local gone = redis.call('LRANGE', h.list, 0, excess - 1)
    for i = 1, #gone do h.bytes = h.bytes - #gone[i] end
    redis.call('LTRIM', h.list, excess, -1)
    h.len = size
  end
  while h.len > 0 and h.bytes > maxbytes do
    local head = redis.call('LPOP', h.list)
    h.bytes = h.bytes - #head
    h.len = h.len - 1
  end
end
local function h_save(h, ttl)
  if h.len <= 0 or h.bytes < 0 then h.bytes = 0 end
  redis.call('SET', h.base .. ':h', h.epoch .. ' ' .. string.format('%.0f', h.offset) .. ' ' .. string.format('%.0f', h.bytes), 'PX', ttl + ${HISTORY_POSITION_KEEP})
end
`;

export const PUBLISH = `
-- PUBLISH: a tick's publishes, logged once per pattern with subscribers, announced in call order.
-- KEYS[1..] pattern bases (of one slot on a Cluster)
-- ARGV[1] maxlen ('' none)   ARGV[2] retention (ms)   ARGV[3] 'S' SPUBLISH | 'P' PUBLISH   ARGV[4] maxbytes ('' none)
-- ARGV[5] history maxbytes per channel   ARGV[6] number of publishes with history
-- ARGV[7..] per publish: nk, nk indexes into KEYS, message, publish id, except ids or '-', length in JS characters,
--   history '-' or '<index of the channel in KEYS> <size> <ttl ms> <tail>'
-- Reply: { 0 NoSubscribers } | { 1 Published, prev per key ('' none), then per publish, per its keys with subscribers: recipients, stream id or '',
--   then per publish with history its position '{"epoch":"...","offset":N}', then the ordinals (from 1) of the publishes before which the
--   waiting announcements were sent }
${HISTORY_LUA}
local nkeys = #KEYS
local n = {}
local any = false
for j = 1, nkeys do
  n[j] = redis.call('SCARD', KEYS[j] .. ':subs')
  if n[j] > 0 then any = true end
end
if not any and ARGV[6] == '0' then return { 0 } end
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
local at, ordinal = 7, 0
local now, clock, nowtext
-- Channel histories opened by this script (by key index, in the order opened), their ttls and sizes, the positions given.
local hs, hts, hsizes, horder, positions = {}, {}, {}, {}, {}
local hmax = tonumber(ARGV[5]) or math.huge
while at <= nargs do
  ordinal = ordinal + 1
  local nk = tonumber(ARGV[at])
  local m = at + nk + 1
  local message, pub, except, length = ARGV[m], ARGV[m + 1], ARGV[m + 2], ARGV[m + 3]
  local hist = ARGV[m + 4]
  if hist ~= '-' then
    -- The channel's next position, spliced tail characters before the end; kept, then logged and announced as spliced.
    local hj, size, ttl, tail = string.match(hist, '^(%d+) (%d+) (%d+) (%d+)$')
    hj, size, ttl, tail = tonumber(hj), tonumber(size), tonumber(ttl), tonumber(tail)
    if not now then
      clock = redis.call('TIME')
      now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
      nowtext = string.format('%.0f ', now)
    end
    local h = hs[hj]
    if not h then
      h = h_open(KEYS[hj], ttl, now, clock)
      h.pending = {}
      hs[hj] = h
      horder[#horder + 1] = hj
    end
    hts[hj], hsizes[hj] = ttl, size
    h.offset = h.offset + 1
    local pos = '{"epoch":"' .. h.epoch .. '","offset":' .. string.format('%.0f', h.offset) .. '}'
    message = string.sub(message, 1, #message - tail) .. pos .. string.sub(message, #message - tail + 1)
    length = tostring(tonumber(length) + #pos)
    -- Kept with one RPUSH per channel at the end of the script.
    local entry = nowtext .. message
    h.pending[#h.pending + 1] = entry
    h.bytes = h.bytes + #entry
    positions[#positions + 1] = pos
  end
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
  at = m + 5
end
announce()
for i = 1, #horder do
  local hj = horder[i]
  local h = hs[hj]
  h.len = redis.call('RPUSH', h.list, unpack(h.pending))
  h_bound(h, hsizes[hj], hmax)
  h_save(h, hts[hj])
  if h.len > 0 then redis.call('PEXPIRE', h.list, hts[hj]) end
end
local maxlen, retention = tonumber(ARGV[1]) or math.huge, tonumber(ARGV[2])
local maxbytes = tonumber(ARGV[4]) or math.huge
local cutoff
for j = 1, nkeys do
  if n[j] > 0 and last[j] ~= out[j + 1] then
    local base = KEYS[j]
    local log, index = base .. ':log', base .. ':index'
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    cutoff = now - retention
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
for p = 1, #positions do out[#out + 1] = positions[p] end
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

/**
 * A channel's history, read in one step with, for a recovery, the
 * subscription's start: the recovering session is added to the exact
 * channel's subscribers and the log's newest id is read in the same
 * script as the kept messages, so every message is either kept before it
 * (recovered) or logged after it (delivered through the subscription),
 * never both (the history and the exact channel's log share a slot).
 */
export const HISTORY = `
-- HISTORY: a channel's kept messages and position; with an id, it also subscribes it (as ADD_SUBSCRIBER) in the same step.
-- KEYS[1] the channel's pattern base (its exact channel's)
-- ARGV[1] size   ARGV[2] ttl (ms)   ARGV[3] maxbytes ('' none)   ARGV[4] subscriber id ('' none)
-- ARGV[5] 'p' after a position (ARGV[6] epoch, ARGV[7] offset) | 'n' the newest (ARGV[6] count, '' all)
--   | 's' since (ARGV[6] epoch, '' none, ARGV[7] offset, ARGV[8] limit, '' none)
-- Reply: { epoch, offset, 1 | 0 ('p': everything after the position is kept), the log's newest id ('' without an id; '0-0' none),
--   then the entries '<ms> <text>' asked for, oldest first }
${HISTORY_LUA}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base = KEYS[1]
local ttl = tonumber(ARGV[2])
local h = h_open(base, ttl, now, t)
h_bound(h, tonumber(ARGV[1]), tonumber(ARGV[3]) or math.huge)
h_save(h, ttl)
local last = ''
if ARGV[4] ~= '' then
  redis.call('SADD', base .. ':subs', ARGV[4])
  last = redis.call('GET', base .. ':last') or '0-0'
end
local mode, from, count, recovered = ARGV[5], 0, 0, 1
if mode == 'p' then
  local off = tonumber(ARGV[7]) or -1
  if ARGV[6] == h.epoch and off <= h.offset and off >= h.offset - h.len then count = h.offset - off else recovered = 0 end
elseif mode == 'n' then
  count = math.min(tonumber(ARGV[6]) or h.len, h.len)
else
  local after = h.len
  if ARGV[6] == h.epoch then after = math.max(0, math.min(h.len, h.offset - (tonumber(ARGV[7]) or 0))) end
  from = h.len - after
  count = math.min(tonumber(ARGV[8]) or after, after)
end
if mode ~= 's' then from = h.len - count end
local out = { h.epoch, string.format('%.0f', h.offset), recovered, last }
if count > 0 then
  local got = redis.call('LRANGE', h.list, from, from + count - 1)
  for i = 1, #got do out[#out + 1] = got[i] end
end
return out
`;

/** PUBLISH's first reply element. */
export const PublishStatus = { NoSubscribers: 0, Published: 1 } as const;
export type PublishStatus = (typeof PublishStatus)[keyof typeof PublishStatus];

/**
 * PUBLISH's ARGV before the publishes; {@link pushPublish} adds each
 * (the publish path builds one array, no intermediate lists).
 */
export function publishArgs(maxlen: string, retention: number, sharded: boolean, maxbytes: string, historyBytes = '', histories = 0): string[] {
  return [maxlen, String(retention), sharded ? 'S' : 'P', maxbytes, historyBytes, String(histories)];
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
  args.push(
    message, pub, except.length > 0 ? except.join(',') : '-', String(message.length),
    history ? `${history.key + 1} ${history.size} ${history.ttl} ${history.tail}` : '-',
  );
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

export function addSubscriberArgs(id: string): string[] {
  return [id];
}

/** ADD_SUBSCRIBER's reply: the new subscriber's position. */
export function parseAddSubscriber(reply: unknown): string {
  return text(reply);
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
export function historyArgs(size: number, ttl: number, maxbytes: string, id: string, from: HistoryFrom): string[] {
  const args = [String(size), String(ttl), maxbytes, id];
  if ('after' in from) args.push('p', from.after.epoch, String(from.after.offset));
  else if ('newest' in from) args.push('n', from.newest === undefined ? '' : String(from.newest));
  else args.push('s', from.since?.epoch ?? '', String(from.since?.offset ?? 0), from.limit === undefined ? '' : String(from.limit));
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
  /** The kept texts asked for, as delivered, oldest first. */
  readonly texts: string[];
}

export function parseHistory(reply: unknown): HistoryReply {
  const items = Array.isArray(reply) ? reply : [];
  const texts: string[] = [];
  for (let i = 4; i < items.length; i++) {
    const entry = text(items[i]);
    // '<ms> <text>': the text as delivered, after the publish time.
    texts.push(entry.slice(entry.indexOf(' ') + 1));
  }
  return { epoch: text(items[0]), offset: Number(text(items[1])), recovered: int(items[2]) === 1, last: text(items[3]), texts };
}

/**
 * The text with `position` spliced in `tail` characters before its end
 * (`HistoryPublish`), as PUBLISH splices it in Lua: the publishing node's
 * own copy, and the text a Cluster's wildcard scripts log and announce.
 */
export function splice(message: string, tail: number, position: string): string {
  return message.slice(0, message.length - tail) + position + message.slice(message.length - tail);
}
