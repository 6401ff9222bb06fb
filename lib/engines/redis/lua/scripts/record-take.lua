-- RECORD_TAKE: record what a take on the holder did.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] gen   ARGV[4] batch ('-' unchanged)
-- ARGV[5..] (kind 'a' acked | 's' sent, pattern ('' the box), position) per write
-- Reply: 1 Recorded | 3 StaleGeneration | 0 | -1 | -2 (gone)
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return st end
local h = B .. ':' .. id
if redis.call('HGET', h, 'gen') ~= ARGV[3] then return 3 end
if ARGV[4] ~= '-' then redis.call('HSET', h, 'batch', ARGV[4]) end
local subs = h .. ':subs'
local box
for i = 5, #ARGV, 3 do
  local kind, pattern, pos = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if pattern == '' then
    if kind == 'a' then
      redis.call('HSET', h, 'bp', pos)
      box = pos
    else
      redis.call('HSET', h, 'bs', pos)
    end
  elseif redis.call('HEXISTS', subs, pattern) == 1 then
    if kind == 'a' then redis.call('HSET', subs, pattern, pos) else redis.call('HSET', h .. ':sent', pattern, pos) end
  end
end
if box then
  -- Acknowledged box entries go, with their index entries and bytes.
  local bi = h .. ':bi'
  local freed = 0
  for _ = 1, 100000 do
    local head = redis.call('LINDEX', bi, 0)
    if not head then break end
    local sp = string.find(head, ' ', 1, true)
    if not before(string.sub(head, 1, sp - 1), box) then break end
    redis.call('LPOP', bi)
    freed = freed + (tonumber(string.sub(head, sp + 1)) or 0)
  end
  if freed > 0 then redis.call('HINCRBY', h, 'bb', -freed) end
  redis.call('XTRIM', h .. ':box', 'MINID', box)
end
return 1
