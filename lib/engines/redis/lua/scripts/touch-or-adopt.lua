-- TOUCH_OR_ADOPT: touch (ttl a number) or adopt (ttl '-'); the caller becomes the holder.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] ttl (ms) or '-'   ARGV[4] node
-- ARGV[5] full ('1': the state even if the caller holds it)   ARGV[6] most subscriptions inline
-- ARGV[7] with shard logs, the prefix of the nodes' seen keys ('' none): with the state, a session a node's seen applies to
--   (field sn) gets it as its channels' positions where it is further, and sn is removed (the caller's positions are its own)
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
seen_apply(h, ARGV[7])
-- A session with many subscriptions is read by the caller a page at a time (HSCAN): no script holds Redis for long.
if redis.call('HLEN', h .. ':subs') > tonumber(ARGV[6]) then
  return { 1, gen, f[3] or '0', f[4] or '0', f[5] or '0-0', f[6] or '0-0', false, false }
end
return { 1, gen, f[3] or '0', f[4] or '0', f[5] or '0-0', f[6] or '0-0', redis.call('HGETALL', h .. ':subs'), redis.call('HGETALL', h .. ':sent') }
