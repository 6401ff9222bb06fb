-- SWEEP: expire sessions past their deadline.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] limit
-- Reply: { id, status (-1/-2) }... flat, for the sessions this call expired
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', B .. ':deadlines', '-inf', ms(now), 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local st = live(id, now)
  if st < 0 then
    out[#out + 1] = id
    out[#out + 1] = st
  end
end
return out
