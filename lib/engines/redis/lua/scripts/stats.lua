-- STATS
-- KEYS[1] B      bucket base
-- ARGV[1] nodech
-- Reply: { live sessions, subscriptions }
return { redis.call('ZCOUNT', B .. ':deadlines', '(' .. ms(now_ms()), '+inf'), tonumber(redis.call('HGET', B .. ':stats', 'subs') or '0') }
