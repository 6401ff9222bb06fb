-- DATA_ALL
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id
-- Reply: { 1, { key, value }... } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
return { 1, redis.call('HGETALL', B .. ':' .. id .. ':data') }
