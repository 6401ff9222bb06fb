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
