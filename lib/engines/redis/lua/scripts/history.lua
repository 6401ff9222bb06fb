-- HISTORY: a channel's kept messages and position; with an id, it also subscribes it (as ADD_SUBSCRIBER) in the same step.
-- KEYS[1] the channel's pattern base (its exact channel's)   KEYS[2] the shard's base, when the channel is logged there
-- ARGV[1] size   ARGV[2] ttl (ms)   ARGV[3] maxbytes ('' none)   ARGV[4] subscriber id ('' none)
-- ARGV[5] 'p' after a position (ARGV[6] epoch, ARGV[7] offset) | 'n' the newest (ARGV[6] count, '' all)
--   | 's' since (ARGV[6] epoch, '' none, ARGV[7] offset, ARGV[8] limit, '' none)
-- ARGV[9] 'p' the subscriber is also present on the channel (ARGV[10] user, '' anonymous; ARGV[11] info, '' none), or ''
-- Reply: { epoch, offset, 1 | 0 ('p': everything after the position is kept), the log's newest id ('' without an id; '0-0' none),
--   the presence version of the join the subscriber makes (its user's first session on the channel) or 0,
--   then the entries '<ms> <text>' asked for, oldest first }

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local base = KEYS[1]
local ttl = tonumber(ARGV[2])
local h = h_open(base, ttl, now, t)
h_bound(h, tonumber(ARGV[1]), tonumber(ARGV[3]) or math.huge)
h_save(h, ttl)
local last, joined = '', 0
if ARGV[4] ~= '' then
  redis.call('SADD', base .. ':subs', ARGV[4])
  last = redis.call('GET', (KEYS[2] or base) .. ':last')
  last = last and string.match(last, '^%S+') or '0-0'
  if ARGV[9] == 'p' then joined = p_add(base, ARGV[4], ARGV[10], ARGV[11]) end
end
local mode, from, count, recovered = ARGV[5], 0, 0, 1
if mode == 'p' then
  local off = tonumber(ARGV[7]) or -1
  if ARGV[6] == h.epoch and off <= h.offset and off >= h.offset - h.len then count = h.offset - off else recovered = 0 end
elseif mode == 'n' then
  count = math.min(tonumber(ARGV[6]) or h.len, h.len)
else
  local after = h.len
  if ARGV[6] == h.epoch then after = math.max(0, math.min(h.len, h.offset - (tonumber(ARGV[7]) or 0))) end
  from = h.len - after
  count = math.min(tonumber(ARGV[8]) or after, after)
end
if mode ~= 's' then from = h.len - count end
local out = { h.epoch, string.format('%.0f', h.offset), recovered, last, joined }
if count > 0 then
  local got = redis.call('LRANGE', h.list, from, from + count - 1)
  for i = 1, #got do out[#out + 1] = got[i] end
end
return out
