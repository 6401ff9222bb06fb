/**
 * The session scripts (see prelude.ts for the keys and statuses). Each
 * touches the keys of one session bucket only, so it runs on Redis
 * Cluster, and costs O(1) apart from the state returned on adoption.
 */

/** ARGV: nodech, id, ack, ttl, node, dataSize, [key, value, size]... → 1 created, 0 id taken (sizes in JS characters) */
export const CREATE = `
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
export const TOUCH = `
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
export const TAKE = `
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
return { redis.call('ZCOUNT', B .. ':deadlines', '(' .. ms(now_ms()), '+inf'), tonumber(redis.call('HGET', B .. ':stats', 'subs') or '0') }
`;

/** ARGV: nodech, id, key → { status, value or false } */
export const DATA_GET = `
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
local r = redis.call('ZSCAN', B .. ':deadlines', ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = { r[1] }
for i = 1, #r[2], 2 do
  local id = r[2][i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HKEYS', B .. ':' .. id .. ':subs')
end
return out
`;
