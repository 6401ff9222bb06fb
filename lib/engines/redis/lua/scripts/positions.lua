-- POSITIONS: lazy positions of many sessions, each moved forward only; with shard logs, whose seen applies, then the seen.
-- KEYS[1..] bucket bases (one on a Cluster)
-- ARGV[1] nodech   ARGV[2] node   ARGV[3] the node's seen key ('' not written)   ARGV[4] seen (a shard position)   ARGV[5] its ttl (ms)
-- then per session: bucket index in KEYS, id, gen, mark ('' | 'j<count>' the node's seen applies to its channels from now on:
--   sn = node, if the session has count subscriptions (else the node has not heard of a change yet: no join) | 'l' no longer:
--   sn removed, after its positions), n, n x (pattern ('' the box), position)
-- Reply: number of sessions written
local i = 6
local written = 0
local now = now_ms()
while i <= #ARGV do
  local id, gen, mark, n = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local h = KEYS[tonumber(ARGV[i])] .. ':' .. id
  local f = redis.call('HMGET', h, 'd', 'gen')
  if f[1] and tonumber(f[1]) > now and f[2] == gen then
    for j = i + 5, i + 4 + 2 * n, 2 do
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
    if string.sub(mark, 1, 1) == 'j' then
      if redis.call('HGET', h, 'n') == string.sub(mark, 2) then redis.call('HSET', h, 'sn', ARGV[2]) end
    elseif mark == 'l' then
      redis.call('HDEL', h, 'sn')
    end
    written = written + 1
  end
  i = i + 5 + 2 * n
end
-- Last: every session this node's seen stops applying to has its own positions above.
if ARGV[3] ~= '' then redis.call('SET', ARGV[3], ARGV[4], 'PX', ARGV[5]) end
return written
