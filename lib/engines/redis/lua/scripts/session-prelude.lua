-- SESSION_PRELUDE: in front of every session script.
-- KEYS[1] B      bucket base (<prefix>{s<k>})
-- ARGV[1] NODECH node channel prefix (<prefix>node:); ARGV[2] the session id (not SWEEP, STATS, POSITIONS, RESTORE_SCAN)
-- Gives now_ms(), ms(n), before(a, b), remove(id) (1, or 2 with a grave), live(id, now) (1 | 0 | -1 | -2) and seen_apply(h, prefix)
local B = KEYS[1]
local NODECH = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(n) return string.format('%.0f', n) end
-- Stream id a before b (ids '<ms>-<seq>').
local function before(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  am, bm = tonumber(am), tonumber(bm)
  if am ~= bm then return am < bm end
  return tonumber(as) < tonumber(bs)
end
local function remove(id)
  local h = B .. ':' .. id
  local subs = h .. ':subs'
  local fields = redis.call('HMGET', h, 'node', 'n', 'u')
  local n = tonumber(fields[2] or '0') or 0
  redis.call('ZREM', B .. ':deadlines', id)
  if fields[3] then redis.call('SREM', B .. ':u:' .. fields[3], id) end
  if n ~= 0 then redis.call('HINCRBY', B .. ':stats', 'subs', -n) end
  redis.call('UNLINK', h, h .. ':sent', h .. ':box', h .. ':bi', h .. ':data', h .. ':dl')
  local dead = 1
  if redis.call('EXISTS', subs) == 1 then
    local grave = B .. ':dead:' .. id
    redis.call('RENAME', subs, grave)
    redis.call('PEXPIRE', grave, 3600000)
    dead = 2
  end
  if fields[1] then redis.call('PUBLISH', NODECH .. fields[1], 'x ' .. id) end
  return dead
end
local function live(id, now)
  local d = redis.call('HGET', B .. ':' .. id, 'd')
  if not d then
    redis.call('ZREM', B .. ':deadlines', id)
    return 0
  end
  if tonumber(d) <= now then return -remove(id) end
  return 1
end
-- With shard logs (prefix: of the nodes' seen keys; '' none): a session whose hash h names a node whose seen applies to
-- its channels (sn) gets that seen as their positions where it is further, and no longer names it: its positions in
-- :subs are its own from here on (a takeover, a reload, a new subscription the node has not applied yet).
local function seen_apply(h, prefix)
  if prefix == '' then return end
  local sn = redis.call('HGET', h, 'sn')
  if not sn then return end
  local seen = redis.call('GET', prefix .. sn)
  if seen then
    local subs = redis.call('HGETALL', h .. ':subs')
    for k = 1, #subs, 2 do
      -- Channels only: wildcard patterns keep logs and positions of their own.
      if not string.find(subs[k], '*', 1, true) and before(subs[k + 1], seen) then redis.call('HSET', h .. ':subs', subs[k], seen) end
    end
  end
  redis.call('HDEL', h, 'sn')
end
