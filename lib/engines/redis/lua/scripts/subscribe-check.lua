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
