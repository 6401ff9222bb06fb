-- DATA_GET
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] key
-- Reply: { 1, value or false } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
return { 1, redis.call('HGET', B .. ':' .. id .. ':data', ARGV[3]) }
