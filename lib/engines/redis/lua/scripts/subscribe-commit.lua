-- SUBSCRIBE_COMMIT: step 3 of subscribe, after ADD_SUBSCRIBER.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id   ARGV[3] pattern   ARGV[4] position   ARGV[5] max ('' none)   ARGV[6] node
-- ARGV[7] with shard logs, the prefix of the nodes' seen keys ('' none): a session following a node's seen (sn) stops
--   following it, with the seen written as its other channels' positions (the node may not follow the new one for it yet)
-- Reply: { 1 Done, 1 added, gen } | { 1 Done, 0 } | { 4 Limit } | { gone }
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return { st } end
local h = B .. ':' .. id
local subs = h .. ':subs'
if redis.call('HEXISTS', subs, ARGV[3]) == 1 then return { 1, 0 } end
if ARGV[5] ~= '' and redis.call('HLEN', subs) >= tonumber(ARGV[5]) then return { 4 } end
seen_apply(h, ARGV[7])
redis.call('HSET', subs, ARGV[3], ARGV[4])
redis.call('HINCRBY', h, 'n', 1)
redis.call('HINCRBY', B .. ':stats', 'subs', 1)
local f = redis.call('HMGET', h, 'node', 'gen', 'ack')
if f[3] == '1' then redis.call('HSET', h .. ':sent', ARGV[3], ARGV[4]) end
if f[1] and f[1] ~= ARGV[6] then
  redis.call('PUBLISH', NODECH .. f[1], 's ' .. id .. ' ' .. (f[2] or '1') .. ' ' .. ARGV[4] .. ' ' .. ARGV[3])
end
return { 1, 1, tonumber(f[2]) or 1 }
