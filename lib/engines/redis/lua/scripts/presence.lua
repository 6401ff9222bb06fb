-- PRESENCE: shared Lua in front of ADD_SUBSCRIBER, HISTORY and REMOVE_SUBSCRIBER.
-- A presence channel's keys, on its exact pattern's base: <base>:pc hash id → '<user>\n<info>' (user '' anonymous),
--   <base>:pu hash user → its sessions present ('' → anonymous sessions present),
--   <base>:pv the channel's presence version: +1 per join or leave, gone with the last session present
-- Gives p_add(base, id, user, info) → the version of the join it makes (the user's first session, or an anonymous one) | 0,
--   p_remove(base, id) → nil not present | { the version of the leave it makes (its user's last) | 0, user ('' anonymous) }
local function p_add(base, id, user, info)
  if redis.call('HSETNX', base .. ':pc', id, user .. '\n' .. info) == 0 then return 0 end
  local n = redis.call('HINCRBY', base .. ':pu', user, 1)
  if user == '' or n == 1 then return redis.call('INCR', base .. ':pv') end
  return 0
end
local function p_remove(base, id)
  local v = redis.call('HGET', base .. ':pc', id)
  if not v then return nil end
  redis.call('HDEL', base .. ':pc', id)
  local user = string.sub(v, 1, string.find(v, '\n', 1, true) - 1)
  local n = redis.call('HINCRBY', base .. ':pu', user, -1)
  if n <= 0 then redis.call('HDEL', base .. ':pu', user) end
  if user ~= '' and n > 0 then return { 0, user } end
  local version = redis.call('INCR', base .. ':pv')
  -- No one is left, so no one follows the notices: the next join starts again from 1.
  if redis.call('EXISTS', base .. ':pc') == 0 then redis.call('DEL', base .. ':pv') end
  return { version, user }
end
