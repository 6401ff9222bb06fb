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
