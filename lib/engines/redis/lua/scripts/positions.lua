-- POSITIONS: lazy positions of many sessions, each moved forward only.
-- KEYS[1..] bucket bases (one on a Cluster)
-- ARGV[1] nodech, then per session: bucket index in KEYS, id, gen, n, n x (pattern ('' the box), position)
-- Reply: number of sessions written
local i = 2
local written = 0
local now = now_ms()
while i <= #ARGV do
  local id, gen, n = ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local h = KEYS[tonumber(ARGV[i])] .. ':' .. id
  local f = redis.call('HMGET', h, 'd', 'gen')
  if f[1] and tonumber(f[1]) > now and f[2] == gen then
    for j = i + 4, i + 3 + 2 * n, 2 do
      local pattern, pos = ARGV[j], ARGV[j + 1]
      -- Forward only: a take of this session may have written a newer position since this one was taken
      -- (its script reached Redis first), and a subscription gone meanwhile stays gone.
      if pattern == '' then
        local cur = redis.call('HGET', h, 'bp')
        if not cur or before(cur, pos) then redis.call('HSET', h, 'bp', pos) end
      else
        local cur = redis.call('HGET', h .. ':subs', pattern)
        if cur and before(cur, pos) then redis.call('HSET', h .. ':subs', pattern, pos) end
      end
    end
    written = written + 1
  end
  i = i + 4 + 2 * n
end
return written
