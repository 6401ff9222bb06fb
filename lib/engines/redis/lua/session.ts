/**
 * The session scripts (see prelude.ts for the keys and statuses). Each
 * touches the keys of one session bucket only, so it runs on Redis
 * Cluster, and costs O(1) apart from the state returned on adoption.
 */
import { int, list, text, texts } from '../replies.js';
import { Gone, SessionStatus } from './contract.js';

/** ARGV: nodech, id, ack, ttl, node, dataSize, [key, value, size]... → 1 created, 0 id taken (sizes in JS characters) */
export const CREATE = `
-- CREATE: a new session, unless its id is taken.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech node channel prefix   ARGV[2] id
-- ARGV[3] ack ('1'/'0')   ARGV[4] ttl (ms)   ARGV[5] node   ARGV[6] data size (JS characters)
-- ARGV[7..] (key, value, size) per data entry
-- Reply: 1 Created | 0 IdTaken
local id = ARGV[2]
local h = B .. ':' .. id
if redis.call('EXISTS', h) == 1 then return 0 end
local d = now_ms() + tonumber(ARGV[4])
redis.call('HSET', h, 'ack', ARGV[3], 'd', ms(d), 'node', ARGV[5], 'gen', 1, 'batch', 0, 'n', 0, 'db', ARGV[6], 'bp', '0-0', 'bs', '0-0', 'bl', '0-0')
redis.call('ZADD', B .. ':deadlines', ms(d), id)
for i = 7, #ARGV, 3 do
  redis.call('HSET', h .. ':data', ARGV[i], ARGV[i + 1])
  redis.call('HSET', h .. ':dl', ARGV[i], ARGV[i + 2])
end
return 1
`;

/** ARGV: nodech, id → status */
export const EXISTS = `
-- EXISTS: live()
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id
-- Reply: SessionStatus (1 Live | 0 | -1 | -2)
return live(ARGV[2], now_ms())
`;

/**
 * Touch (ttl a number) or adopt (ttl '-'): this node becomes the session's
 * holder. When the holder changes the generation grows and the old holder
 * is told to forget its copy. ARGV: nodech, id, ttl, node, full ('1': send
 * the state even if this node already held it), most subscriptions sent
 * inline (beyond it, false: the caller pages through them) →
 * { status, gen[, ack, batch, bp, bs, { pattern, acked }..., { pattern, sent }...] }
 */
export const TOUCH_OR_ADOPT = `
-- TOUCH_OR_ADOPT: touch (ttl a number) or adopt (ttl '-'); the caller becomes the holder.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] ttl (ms) or '-'   ARGV[4] node
-- ARGV[5] full ('1': the state even if the caller holds it)   ARGV[6] most subscriptions inline
-- Reply: { gone } | { 1, gen } | { 1, gen, ack, batch, bp, bs, subs flat or false, sent flat or false }
local id = ARGV[2]
local now = now_ms()
local st = live(id, now)
if st ~= 1 then return { st } end
local h = B .. ':' .. id
if ARGV[3] ~= '-' then
  local d = ms(now + tonumber(ARGV[3]))
  redis.call('HSET', h, 'd', d)
  redis.call('ZADD', B .. ':deadlines', d, id)
end
local f = redis.call('HMGET', h, 'node', 'gen', 'ack', 'batch', 'bp', 'bs')
local gen = tonumber(f[2]) or 1
if f[1] ~= ARGV[4] then
  gen = redis.call('HINCRBY', h, 'gen', 1)
  redis.call('HSET', h, 'node', ARGV[4])
  if f[1] then redis.call('PUBLISH', NODECH .. f[1], 'd ' .. id .. ' ' .. gen) end
elseif ARGV[5] ~= '1' then
  return { 1, gen }
end
-- A session with many subscriptions is read by the caller a page at a time (HSCAN): no script holds Redis for long.
if redis.call('HLEN', h .. ':subs') > tonumber(ARGV[6]) then
  return { 1, gen, f[3] or '0', f[4] or '0', f[5] or '0-0', f[6] or '0-0', false, false }
end
return { 1, gen, f[3] or '0', f[4] or '0', f[5] or '0-0', f[6] or '0-0', redis.call('HGETALL', h .. ':subs'), redis.call('HGETALL', h .. ':sent') }
`;

/** ARGV: nodech, id → status (1 or 2: destroyed; 2 with subscriptions to clean) */
export const DESTROY = `
-- DESTROY: remove a live session.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id
-- Reply: 1 Destroyed | 2 DestroyedWithGrave | 0 | -1 | -2 (gone)
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return st end
return remove(id)
`;

/**
 * Step 1 of subscribe. ARGV: nodech, id, pattern, max ('' none) →
 * 1 may subscribe, 3 already subscribed, 4 limit reached, or a status ≤ 0
 */
export const SUBSCRIBE_CHECK = `
-- SUBSCRIBE_CHECK: step 1 of subscribe.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] pattern   ARGV[4] max subscriptions ('' none)
-- Reply: 1 May | 3 AlreadySubscribed | 4 Limit | 0 | -1 | -2 (gone)
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return st end
local h = B .. ':' .. id
if redis.call('HEXISTS', h .. ':subs', ARGV[3]) == 1 then return 3 end
if ARGV[4] ~= '' and redis.call('HLEN', h .. ':subs') >= tonumber(ARGV[4]) then return 4 end
return 1
`;

/**
 * Step 3 of subscribe, after the pattern's subscriber set took the id.
 * ARGV: nodech, id, pattern, position, max, node → { status (1, 4 limit), added, gen }
 */
export const SUBSCRIBE_COMMIT = `
-- SUBSCRIBE_COMMIT: step 3 of subscribe, after ADD_SUBSCRIBER.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] pattern   ARGV[4] position   ARGV[5] max ('' none)   ARGV[6] node
-- Reply: { 1 Done, 1 added, gen } | { 1 Done, 0 } | { 4 Limit } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
local h = B .. ':' .. id
local subs = h .. ':subs'
if redis.call('HEXISTS', subs, ARGV[3]) == 1 then return { 1, 0 } end
if ARGV[5] ~= '' and redis.call('HLEN', subs) >= tonumber(ARGV[5]) then return { 4 } end
redis.call('HSET', subs, ARGV[3], ARGV[4])
redis.call('HINCRBY', h, 'n', 1)
redis.call('HINCRBY', B .. ':stats', 'subs', 1)
local f = redis.call('HMGET', h, 'node', 'gen', 'ack')
if f[3] == '1' then redis.call('HSET', h .. ':sent', ARGV[3], ARGV[4]) end
if f[1] and f[1] ~= ARGV[6] then
  redis.call('PUBLISH', NODECH .. f[1], 's ' .. id .. ' ' .. (f[2] or '1') .. ' ' .. ARGV[4] .. ' ' .. ARGV[3])
end
return { 1, 1, tonumber(f[2]) or 1 }
`;

/** ARGV: nodech, id, pattern, node → { status, removed } */
export const UNSUBSCRIBE = `
-- UNSUBSCRIBE
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] pattern   ARGV[4] node
-- Reply: { 1, removed (1/0) } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
local h = B .. ':' .. id
if redis.call('HDEL', h .. ':subs', ARGV[3]) == 0 then return { 1, 0 } end
redis.call('HDEL', h .. ':sent', ARGV[3])
redis.call('HINCRBY', h, 'n', -1)
redis.call('HINCRBY', B .. ':stats', 'subs', -1)
local f = redis.call('HMGET', h, 'node', 'gen')
if f[1] and f[1] ~= ARGV[4] then
  redis.call('PUBLISH', NODECH .. f[1], 'u ' .. id .. ' ' .. (f[2] or '1') .. ' ' .. ARGV[3])
end
return { 1, 1 }
`;

/** ARGV: nodech, id, cursor, count → { status, cursor, patterns } (HSCAN: never blocks for long) */
export const SUBSCRIPTIONS = `
-- SUBSCRIPTIONS: one HSCAN page of :subs.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] cursor   ARGV[4] count
-- Reply: { 1, cursor, { pattern... } } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
local r = redis.call('HSCAN', B .. ':' .. id .. ':subs', ARGV[3], 'COUNT', tonumber(ARGV[4]))
local patterns = {}
for i = 1, #r[2], 2 do patterns[#patterns + 1] = r[2][i] end
return { 1, r[1], patterns }
`;

/**
 * ARGV: nodech, id, message, maxlen ('' none), node, maxbytes ('' none) →
 * { status, stream id, previous stream id, 1 if \`node\` holds it }; another
 * holder is told. The box is trimmed exactly, oldest first, to maxlen
 * entries and maxbytes bytes (the message plus 100 per entry); the newest
 * stays.
 */
export const DELIVER = `
-- DELIVER: append to the session's box, trim it, tell the holder.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] message   ARGV[4] maxlen ('' none)   ARGV[5] node   ARGV[6] maxbytes ('' none)
-- Reply: { 1, stream id, previous stream id, 1 if node holds it else 0 } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
local h = B .. ':' .. id
local f = redis.call('HMGET', h, 'node', 'bl')
local prev = f[2] or '0-0'
local box, bi = h .. ':box', h .. ':bi'
local sid = redis.call('XADD', box, '*', 'm', ARGV[3])
local size = #ARGV[3] + 100
redis.call('RPUSH', bi, sid .. ' ' .. size)
local bytes = redis.call('HINCRBY', h, 'bb', size)
local maxlen, maxbytes = tonumber(ARGV[4]) or math.huge, tonumber(ARGV[6]) or math.huge
local len = redis.call('LLEN', bi)
local trimmed = false
while len > 1 and (len > maxlen or bytes > maxbytes) do
  local head = redis.call('LPOP', bi)
  bytes = bytes - (tonumber(string.sub(head, string.find(head, ' ', 1, true) + 1)) or 0)
  len = len - 1
  trimmed = true
end
if trimmed then
  local head = redis.call('LINDEX', bi, 0)
  redis.call('XTRIM', box, 'MINID', string.sub(head, 1, string.find(head, ' ', 1, true) - 1))
  if bytes < 0 then bytes = 0 end
  redis.call('HSET', h, 'bb', bytes)
end
redis.call('HSET', h, 'bl', sid)
if f[1] == ARGV[5] then return { 1, sid, prev, 1 } end
if f[1] then redis.call('PUBLISH', NODECH .. f[1], 'b ' .. id .. ' ' .. prev .. ' ' .. sid .. ' ' .. ARGV[3]) end
return { 1, sid, prev, 0 }
`;

/**
 * Record what a take on the holder did. ARGV: nodech, id, gen, batch ('-'
 * unchanged), then triples (kind 'a' acked | 's' sent, pattern ('' the
 * box), position) → status (3: another node adopted the session since)
 */
export const RECORD_TAKE = `
-- RECORD_TAKE: record what a take on the holder did.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] gen   ARGV[4] batch ('-' unchanged)
-- ARGV[5..] (kind 'a' acked | 's' sent, pattern ('' the box), position) per write
-- Reply: 1 Recorded | 3 StaleGeneration | 0 | -1 | -2 (gone)
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return st end
local h = B .. ':' .. id
if redis.call('HGET', h, 'gen') ~= ARGV[3] then return 3 end
if ARGV[4] ~= '-' then redis.call('HSET', h, 'batch', ARGV[4]) end
local subs = h .. ':subs'
local box
for i = 5, #ARGV, 3 do
  local kind, pattern, pos = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if pattern == '' then
    if kind == 'a' then
      redis.call('HSET', h, 'bp', pos)
      box = pos
    else
      redis.call('HSET', h, 'bs', pos)
    end
  elseif redis.call('HEXISTS', subs, pattern) == 1 then
    if kind == 'a' then redis.call('HSET', subs, pattern, pos) else redis.call('HSET', h .. ':sent', pattern, pos) end
  end
end
if box then
  -- Acknowledged box entries go, with their index entries and bytes.
  local bi = h .. ':bi'
  local freed = 0
  for _ = 1, 100000 do
    local head = redis.call('LINDEX', bi, 0)
    if not head then break end
    local sp = string.find(head, ' ', 1, true)
    if not before(string.sub(head, 1, sp - 1), box) then break end
    redis.call('LPOP', bi)
    freed = freed + (tonumber(string.sub(head, sp + 1)) or 0)
  end
  if freed > 0 then redis.call('HINCRBY', h, 'bb', -freed) end
  redis.call('XTRIM', h .. ':box', 'MINID', box)
end
return 1
`;

/**
 * Positions of many sessions, written lazily after takes without acks
 * (WebSocket pushes). KEYS: bucket bases, one on Redis Cluster (one slot
 * per script), all of them on a single Redis. ARGV: nodech, then for each
 * session: its bucket's index in KEYS, id, gen, n, then n pairs (pattern
 * ('' the box), position). A session gone or taken over by another node
 * is skipped. → number written
 */
export const POSITIONS = `
-- POSITIONS: lazy positions of many sessions.
-- KEYS[1..] bucket bases (one on a Cluster)
-- ARGV[1] nodech, then per session: bucket index in KEYS, id, gen, n, n x (pattern ('' the box), position)
-- Reply: number of sessions written
local i = 2
local written = 0
local now = now_ms()
while i <= #ARGV do
  local id, gen, n = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local h = KEYS[tonumber(ARGV[i])] .. ':' .. id
  local f = redis.call('HMGET', h, 'd', 'gen')
  if f[1] and tonumber(f[1]) > now and f[2] == gen then
    for j = i + 4, i + 3 + 2 * n, 2 do
      local pattern, pos = ARGV[j], ARGV[j + 1]
      if pattern == '' then
        redis.call('HSET', h, 'bp', pos)
      elseif redis.call('HEXISTS', h .. ':subs', pattern) == 1 then
        redis.call('HSET', h .. ':subs', pattern, pos)
      end
    end
    written = written + 1
  end
  i = i + 4 + 2 * n
end
return written
`;

/** ARGV: nodech, limit → { id, status }... for the sessions this call expired */
export const SWEEP = `
-- SWEEP: expire sessions past their deadline.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] limit
-- Reply: { id, status (-1/-2) }... flat, for the sessions this call expired
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', B .. ':deadlines', '-inf', ms(now), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local st = live(id, now)
  if st < 0 then
    out[#out + 1] = id
    out[#out + 1] = st
  end
end
return out
`;

/** ARGV: nodech → { live sessions, subscriptions } of this bucket */
export const STATS = `
-- STATS
-- KEYS[1] B      bucket base
-- ARGV[1] nodech
-- Reply: { live sessions, subscriptions }
return { redis.call('ZCOUNT', B .. ':deadlines', '(' .. ms(now_ms()), '+inf'), tonumber(redis.call('HGET', B .. ':stats', 'subs') or '0') }
`;

/** ARGV: nodech, id, key → { status, value or false } */
export const DATA_GET = `
-- DATA_GET
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] key
-- Reply: { 1, value or false } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
return { 1, redis.call('HGET', B .. ':' .. id .. ':data', ARGV[3]) }
`;

/**
 * ARGV: nodech, id, key, value, delete ('1'), max ('' none), size (key
 * plus value in JS characters) → status (4: over max, nothing changed)
 */
export const DATA_SET = `
-- DATA_SET: set (or delete) one data key within the size limit.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] key   ARGV[4] value   ARGV[5] delete ('1')
-- ARGV[6] max ('' none)   ARGV[7] size (key + value, JS characters)
-- Reply: 1 Set | 4 OverMax | 0 | -1 | -2 (gone)
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return st end
local h = B .. ':' .. id
local before = tonumber(redis.call('HGET', h .. ':dl', ARGV[3]) or '0')
local bytes = tonumber(redis.call('HGET', h, 'db') or '0')
if ARGV[5] == '1' then
  if redis.call('HDEL', h .. ':data', ARGV[3]) == 1 then
    redis.call('HDEL', h .. ':dl', ARGV[3])
    redis.call('HSET', h, 'db', bytes - before)
  end
  return 1
end
local after = bytes - before + tonumber(ARGV[7])
if ARGV[6] ~= '' and after > tonumber(ARGV[6]) then return 4 end
redis.call('HSET', h .. ':data', ARGV[3], ARGV[4])
redis.call('HSET', h .. ':dl', ARGV[3], ARGV[7])
redis.call('HSET', h, 'db', after)
return 1
`;

/** ARGV: nodech, id → { status, { key, value }... } */
export const DATA_ALL = `
-- DATA_ALL
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id
-- Reply: { 1, { key, value }... } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
return { 1, redis.call('HGETALL', B .. ':' .. id .. ':data') }
`;

/**
 * A page of the bucket's sessions and the patterns each subscribes to,
 * to put them back in the patterns' subscriber sets after a shard lost
 * its data (markers.ts). ARGV: nodech, cursor, count →
 * { cursor, id, { pattern... }, id, { pattern... }, ... }
 */
export const RESTORE_SCAN = `
-- RESTORE_SCAN: a page of the bucket's sessions and their patterns.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] cursor   ARGV[3] count
-- Reply: { cursor, id, { pattern... }, id, { pattern... }... }
local r = redis.call('ZSCAN', B .. ':deadlines', ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = { r[1] }
for i = 1, #r[2], 2 do
  local id = r[2][i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HKEYS', B .. ':' .. id .. ':subs')
end
return out
`;

// ---------------------------------------------------------------------------
// The TypeScript side of each script: its statuses (every meaning its own
// name; the values are the wire values), the ARGV it takes after nodech
// and id (`RedisEngine.#session` adds those two), and its reply, parsed.
// ---------------------------------------------------------------------------

/** CREATE's reply. */
export const CreateStatus = { Created: 1, IdTaken: 0 } as const;
export type CreateStatus = (typeof CreateStatus)[keyof typeof CreateStatus];

/** CREATE's full ARGV (it takes nodech and id itself: it runs before the session exists). */
export function createArgs(nodech: string, id: string, ack: boolean, ttl: number, node: string, dataSize: number, data: readonly string[]): string[] {
  return [nodech, id, ack ? '1' : '0', String(ttl), node, String(dataSize), ...data];
}

export function parseCreate(reply: unknown): CreateStatus {
  return int(reply) === CreateStatus.Created ? CreateStatus.Created : CreateStatus.IdTaken;
}

/** A status a session script answers alone (EXISTS, or the `{ gone }` of the others). */
export function parseStatus(reply: unknown): SessionStatus {
  return int(reply) as SessionStatus;
}

/** TOUCH_OR_ADOPT: `ttl` in ms, or `'-'` to adopt without moving the deadline. */
export function touchOrAdoptArgs(ttl: string, node: string, full: boolean, inlineMax: number): string[] {
  return [ttl, node, full ? '1' : '0', String(inlineMax)];
}

/** What an adopting or full TOUCH_OR_ADOPT returns besides the generation: the session's state. */
export interface TouchState {
  readonly ack: boolean;
  readonly batch: number;
  readonly boxAcked: string;
  readonly boxSent: string;
  /** pattern → acked position; undefined when there were too many to send inline (scan `:subs`). */
  readonly subs: ReadonlyArray<readonly [string, string]> | undefined;
  /** pattern → sent position; undefined when not inline (scan `:sent`). */
  readonly sent: ReadonlyArray<readonly [string, string]> | undefined;
}

export interface TouchOrAdoptReply {
  readonly status: SessionStatus;
  /** The holder's generation (0 when not live). */
  readonly gen: number;
  /** Present when the caller was not the holder, or asked for it (`full`). */
  readonly state: TouchState | undefined;
}

export function parseTouchOrAdopt(value: unknown): TouchOrAdoptReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  if (status !== SessionStatus.Live) return { status, gen: 0, state: undefined };
  const gen = int(r[1]);
  if (r.length <= 2) return { status, gen, state: undefined };
  return {
    status,
    gen,
    state: {
      ack: text(r[2]) === '1',
      batch: int(r[3]),
      boxAcked: text(r[4]),
      boxSent: text(r[5]),
      subs: Array.isArray(r[6]) ? pairs(r[6]) : undefined,
      sent: Array.isArray(r[7]) ? pairs(r[7]) : undefined,
    },
  };
}

/** DESTROY's reply. */
export const DestroyStatus = { Destroyed: 1, DestroyedWithGrave: 2, ...Gone } as const;
export type DestroyStatus = (typeof DestroyStatus)[keyof typeof DestroyStatus];

export function parseDestroy(reply: unknown): DestroyStatus {
  return int(reply) as DestroyStatus;
}

/** SUBSCRIBE_CHECK's reply. */
export const SubscribeCheckStatus = { May: 1, AlreadySubscribed: 3, Limit: 4, ...Gone } as const;
export type SubscribeCheckStatus = (typeof SubscribeCheckStatus)[keyof typeof SubscribeCheckStatus];

export function subscribeCheckArgs(pattern: string, max: string): string[] {
  return [pattern, max];
}

export function parseSubscribeCheck(reply: unknown): SubscribeCheckStatus {
  return int(reply) as SubscribeCheckStatus;
}

/** SUBSCRIBE_COMMIT's status. */
export const SubscribeCommitStatus = { Done: 1, Limit: 4, ...Gone } as const;
export type SubscribeCommitStatus = (typeof SubscribeCommitStatus)[keyof typeof SubscribeCommitStatus];

export function subscribeCommitArgs(pattern: string, position: string, max: string, node: string): string[] {
  return [pattern, position, max, node];
}

export interface SubscribeCommitReply {
  readonly status: SubscribeCommitStatus;
  /** The subscription is new (false: it was already there). */
  readonly added: boolean;
  /** The holder's generation when added (0 otherwise). */
  readonly gen: number;
}

export function parseSubscribeCommit(value: unknown): SubscribeCommitReply {
  const r = list(value);
  const status = int(r[0]) as SubscribeCommitStatus;
  const added = status === SubscribeCommitStatus.Done && int(r[1]) === 1;
  return { status, added, gen: added ? int(r[2]) : 0 };
}

export function unsubscribeArgs(pattern: string, node: string): string[] {
  return [pattern, node];
}

export interface UnsubscribeReply {
  readonly status: SessionStatus;
  /** The session was subscribed. */
  readonly removed: boolean;
}

export function parseUnsubscribe(value: unknown): UnsubscribeReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  return { status, removed: status === SessionStatus.Live && int(r[1]) === 1 };
}

export function subscriptionsArgs(cursor: string, count: number): string[] {
  return [cursor, String(count)];
}

export interface SubscriptionsReply {
  readonly status: SessionStatus;
  /** '0' when the scan is done. */
  readonly cursor: string;
  readonly patterns: string[];
}

export function parseSubscriptions(value: unknown): SubscriptionsReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  if (status !== SessionStatus.Live) return { status, cursor: '0', patterns: [] };
  return { status, cursor: text(r[1]), patterns: texts(r[2]) };
}

export function deliverArgs(message: string, maxlen: string, node: string, maxbytes: string): string[] {
  return [message, maxlen, node, maxbytes];
}

export interface DeliverReply {
  readonly status: SessionStatus;
  /** The box entry's stream id. */
  readonly id: string;
  /** The box's last entry before it. */
  readonly prev: string;
  /** The caller holds the session (else the holder was told). */
  readonly held: boolean;
}

export function parseDeliver(value: unknown): DeliverReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  if (status !== SessionStatus.Live) return { status, id: '', prev: '', held: false };
  return { status, id: text(r[1]), prev: text(r[2]), held: int(r[3]) === 1 };
}

/** RECORD_TAKE's reply. */
export const RecordTakeStatus = { Recorded: 1, StaleGeneration: 3, ...Gone } as const;
export type RecordTakeStatus = (typeof RecordTakeStatus)[keyof typeof RecordTakeStatus];

/** RECORD_TAKE: `writes` are triples (PositionKind, source ('' the box), position). */
export function recordTakeArgs(gen: number, batch: number | undefined, writes: readonly string[]): string[] {
  return [String(gen), batch === undefined ? '-' : String(batch), ...writes];
}

export function parseRecordTake(reply: unknown): RecordTakeStatus {
  return int(reply) as RecordTakeStatus;
}

/** POSITIONS's ARGV before the sessions (no session id); {@link pushPositions} adds each. */
export function positionsArgs(nodech: string): string[] {
  return [nodech];
}

/** One session's ARGV for POSITIONS: its bucket's index in KEYS (1-based), id, gen, then its (source, position) pairs. */
export function pushPositions(args: string[], keyIndex: number, id: string, gen: number, positions: ReadonlyMap<string, string>): void {
  args.push(String(keyIndex), id, String(gen), String(positions.size));
  for (const [src, position] of positions) args.push(src, position);
}

/** POSITIONS's reply: how many sessions it wrote (the others were gone or taken over). */
export function parsePositions(reply: unknown): number {
  return int(reply);
}

/** SWEEP's full ARGV (no session id). */
export function sweepArgs(nodech: string, limit: number): string[] {
  return [nodech, String(limit)];
}

export interface SweptSession {
  readonly id: string;
  /** Subscriptions are left in the grave to remove. */
  readonly grave: boolean;
}

export function parseSweep(value: unknown): SweptSession[] {
  const flat = texts(value);
  const swept: SweptSession[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) swept.push({ id: flat[i] as string, grave: Number(flat[i + 1]) === Gone.ExpiredWithGrave });
  return swept;
}

export interface BucketStats {
  readonly sessions: number;
  readonly subscriptions: number;
}

export function parseStats(value: unknown): BucketStats {
  const [sessions, subscriptions] = list(value);
  return { sessions: int(sessions), subscriptions: int(subscriptions ?? 0) };
}

export function dataGetArgs(key: string): string[] {
  return [key];
}

export interface DataGetReply {
  readonly status: SessionStatus;
  /** undefined when the key is not set. */
  readonly value: string | undefined;
}

export function parseDataGet(value: unknown): DataGetReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  const v = r[1];
  return { status, value: status !== SessionStatus.Live || v === null || v === undefined || v === false ? undefined : text(v) };
}

/** DATA_SET's reply. */
export const DataSetStatus = { Set: 1, OverMax: 4, ...Gone } as const;
export type DataSetStatus = (typeof DataSetStatus)[keyof typeof DataSetStatus];

/** DATA_SET: `value` undefined deletes the key; `size` is key plus value in JS characters. */
export function dataSetArgs(key: string, value: string | undefined, max: string, size: number): string[] {
  return [key, value ?? '', value === undefined ? '1' : '0', max, String(size)];
}

export function parseDataSet(reply: unknown): DataSetStatus {
  return int(reply) as DataSetStatus;
}

export interface DataAllReply {
  readonly status: SessionStatus;
  readonly data: Map<string, string>;
}

export function parseDataAll(value: unknown): DataAllReply {
  const r = list(value);
  const status = int(r[0]) as SessionStatus;
  const data = new Map<string, string>();
  if (status !== SessionStatus.Live) return { status, data };
  const flat = texts(r[1]);
  for (let i = 0; i + 1 < flat.length; i += 2) data.set(flat[i] as string, flat[i + 1] as string);
  return { status, data };
}

/** RESTORE_SCAN's full ARGV (no session id). */
export function restoreScanArgs(nodech: string, cursor: string, count: number): string[] {
  return [nodech, cursor, String(count)];
}

export interface RestoreScanReply {
  /** '0' when the scan is done. */
  readonly cursor: string;
  readonly sessions: ReadonlyArray<{ readonly id: string; readonly patterns: string[] }>;
}

export function parseRestoreScan(value: unknown): RestoreScanReply {
  const r = list(value);
  const sessions: Array<{ id: string; patterns: string[] }> = [];
  for (let i = 1; i + 1 < r.length; i += 2) sessions.push({ id: text(r[i]), patterns: texts(r[i + 1]) });
  return { cursor: text(r[0]), sessions };
}

/** A hash's flat fields and values as pairs. */
export function pairs(value: unknown): Array<[string, string]> {
  const flat = value === undefined ? [] : texts(value);
  const result: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) result.push([flat[i] as string, flat[i + 1] as string]);
  return result;
}
