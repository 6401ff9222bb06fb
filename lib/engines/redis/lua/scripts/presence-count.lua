-- PRESENCE_COUNT: how many users and sessions are present on a channel.
-- KEYS[1] the channel's pattern base
-- ARGV[1] none
-- Reply: { users (each anonymous session one), sessions, the presence version (0 none) }
local users = redis.call('HLEN', KEYS[1] .. ':pu')
local anonymous = tonumber(redis.call('HGET', KEYS[1] .. ':pu', '') or '0')
if anonymous > 0 then users = users - 1 + anonymous end
return { users, redis.call('HLEN', KEYS[1] .. ':pc'), tonumber(redis.call('GET', KEYS[1] .. ':pv') or '0') }
