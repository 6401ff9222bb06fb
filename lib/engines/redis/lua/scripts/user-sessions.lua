-- USER_SESSIONS: a user's live sessions in one bucket.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech (unused)   ARGV[2] user
-- Reply: the ids of the user's sessions in this bucket whose deadline has not passed
local now = now_ms()
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', B .. ':u:' .. ARGV[2])) do
  local d = redis.call('HGET', B .. ':' .. id, 'd')
  if d and tonumber(d) > now then out[#out + 1] = id end
end
return out
