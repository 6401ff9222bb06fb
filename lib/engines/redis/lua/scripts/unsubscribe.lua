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
