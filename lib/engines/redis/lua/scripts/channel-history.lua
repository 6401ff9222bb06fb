-- CHANNEL_HISTORY: in front of PUBLISH and HISTORY.
-- A channel's history, on its exact pattern base: <base>:h '<epoch> <offset> <bytes kept>', <base>:hm the kept entries '<ms> <text>', oldest first.
-- Gives h_open(base, ttl, now, time) (the history, without what is past ttl), h_bound(h, size, maxbytes), h_save(h, ttl)

-- Opens a channel's history: its position (a new epoch when it has none: new, expired, or Redis lost it), without
-- what is past ttl.
local function h_open(base, ttl, now, t)
  local h = { base = base, list = base .. ':hm' }
  local got = redis.call('GET', base .. ':h')
  local epoch, offset, bytes
  if got then epoch, offset, bytes = string.match(got, '^(%S+) (%d+) (%d+)$') end
  if epoch then
    h.epoch, h.offset, h.bytes = epoch, tonumber(offset), tonumber(bytes)
    h.len = redis.call('LLEN', h.list)
  else
    h.epoch, h.offset, h.bytes, h.len = t[1] .. '.' .. t[2], 0, 0, 0
    redis.call('DEL', h.list)
  end
  if h.len == 0 then h.bytes = 0 end
  local cutoff = now - ttl
  while h.len > 0 do
    local head = redis.call('LINDEX', h.list, 0)
    if (tonumber(string.match(head, '^(%d+)')) or 0) > cutoff then break end
    redis.call('LPOP', h.list)
    h.bytes = h.bytes - #head
    h.len = h.len - 1
  end
  return h
end
-- Drops the oldest entries beyond size (one LRANGE and one LTRIM), then beyond maxbytes.
local function h_bound(h, size, maxbytes)
  local excess = h.len - size
  if excess > 0 then
    local gone = redis.call('LRANGE', h.list, 0, excess - 1)
    for i = 1, #gone do h.bytes = h.bytes - #gone[i] end
    redis.call('LTRIM', h.list, excess, -1)
    h.len = size
  end
  while h.len > 0 and h.bytes > maxbytes do
    local head = redis.call('LPOP', h.list)
    h.bytes = h.bytes - #head
    h.len = h.len - 1
  end
end
local function h_save(h, ttl)
  if h.len <= 0 or h.bytes < 0 then h.bytes = 0 end
  redis.call('SET', h.base .. ':h', h.epoch .. ' ' .. string.format('%.0f', h.offset) .. ' ' .. string.format('%.0f', h.bytes), 'PX', ttl + 86400000)
end
