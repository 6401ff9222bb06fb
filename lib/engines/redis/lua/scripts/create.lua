-- CREATE: a new session, unless its id is taken.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech node channel prefix   ARGV[2] id
-- ARGV[3] ack ('1'/'0')   ARGV[4] ttl (ms)   ARGV[5] node   ARGV[6] data size (JS characters)
-- ARGV[7] user ('' none: kept in 'u' and in the bucket's user index B:u:<user>)
-- ARGV[8..] (key, value, size) per data entry
-- Reply: 1 Created | 0 IdTaken
local id = ARGV[2]
local h = B .. ':' .. id
if redis.call('EXISTS', h) == 1 then return 0 end
local d = now_ms() + tonumber(ARGV[4])
redis.call('HSET', h, 'ack', ARGV[3], 'd', ms(d), 'node', ARGV[5], 'gen', 1, 'batch', 0, 'n', 0, 'db', ARGV[6], 'bp', '0-0', 'bs', '0-0', 'bl', '0-0')
redis.call('ZADD', B .. ':deadlines', ms(d), id)
if ARGV[7] ~= '' then
  redis.call('HSET', h, 'u', ARGV[7])
  redis.call('SADD', B .. ':u:' .. ARGV[7], id)
end
for i = 8, #ARGV, 3 do
  redis.call('HSET', h .. ':data', ARGV[i], ARGV[i + 1])
  redis.call('HSET', h .. ':dl', ARGV[i], ARGV[i + 2])
end
return 1
