-- RESTORE_SCAN: a page of the bucket's sessions and their patterns.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] cursor   ARGV[3] count
-- Reply: { cursor, id, { pattern... }, id, { pattern... }... }
local r = redis.call('ZSCAN', B .. ':deadlines', ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = { r[1] }
for i = 1, #r[2], 2 do
  local id = r[2][i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HKEYS', B .. ':' .. id .. ':subs')
end
return out
