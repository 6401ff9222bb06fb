-- DELIVER: append to the session's box, trim it, tell the holder.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] message   ARGV[4] maxlen ('' none)   ARGV[5] node   ARGV[6] maxbytes ('' none)
-- Reply: { 1, stream id, previous stream id, 1 if node holds it else 0 } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
local h = B .. ':' .. id
local f = redis.call('HMGET', h, 'node', 'bl')
local prev = f[2] or '0-0'
local box, bi = h .. ':box', h .. ':bi'
local sid = redis.call('XADD', box, '*', 'm', ARGV[3])
local size = #ARGV[3] + 100
redis.call('RPUSH', bi, sid .. ' ' .. size)
local bytes = redis.call('HINCRBY', h, 'bb', size)
local maxlen, maxbytes = tonumber(ARGV[4]) or math.huge, tonumber(ARGV[6]) or math.huge
local len = redis.call('LLEN', bi)
local trimmed = false
while len > 1 and (len > maxlen or bytes > maxbytes) do
  local head = redis.call('LPOP', bi)
  bytes = bytes - (tonumber(string.sub(head, string.find(head, ' ', 1, true) + 1)) or 0)
  len = len - 1
  trimmed = true
end
if trimmed then
  local head = redis.call('LINDEX', bi, 0)
  redis.call('XTRIM', box, 'MINID', string.sub(head, 1, string.find(head, ' ', 1, true) - 1))
  if bytes < 0 then bytes = 0 end
  redis.call('HSET', h, 'bb', bytes)
end
redis.call('HSET', h, 'bl', sid)
if f[1] == ARGV[5] then return { 1, sid, prev, 1 } end
if f[1] then redis.call('PUBLISH', NODECH .. f[1], 'b ' .. id .. ' ' .. prev .. ' ' .. sid .. ' ' .. ARGV[3]) end
return { 1, sid, prev, 0 }
