/**
 * The pattern scripts. Each runs on one pattern's hash slot: KEYS[1] is
 * the pattern's base (`<prefix>{p:<pattern>}`); `<base>:subs` is the set
 * of its subscribers' ids, `<base>:log` the stream of what was published
 * to it, `<base>:last` the stream id of the newest entry, and `<base>` the
 * (sharded) Pub/Sub channel the nodes that hold subscribers listen on.
 */

/**
 * Publish once, whatever the number of subscribers: append to the log,
 * trim it by length and age, announce the entry. ARGV: message, publish id,
 * except (comma-separated ids, or '-'), maxlen ('' none), retention ms,
 * 'S' (SPUBLISH) or 'P' (PUBLISH), except ids one by one... →
 * { subscribers not in except[, stream id, previous stream id] }
 */
export const PUBLISH = `
local base = KEYS[1]
local subs = base .. ':subs'
local n = redis.call('SCARD', subs)
if n == 0 then return { 0 } end
for i = 7, #ARGV do
  if redis.call('SISMEMBER', subs, ARGV[i]) == 1 then n = n - 1 end
end
if n <= 0 then return { 0 } end
local log = base .. ':log'
local lastKey = base .. ':last'
local prev = redis.call('GET', lastKey) or '0-0'
local id
if ARGV[4] == '' then
  id = redis.call('XADD', log, '*', 'm', ARGV[1], 'u', ARGV[2], 'x', ARGV[3])
else
  id = redis.call('XADD', log, 'MAXLEN', '~', ARGV[4], '*', 'm', ARGV[1], 'u', ARGV[2], 'x', ARGV[3])
end
local retention = tonumber(ARGV[5])
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - retention
if cutoff > 0 then redis.call('XTRIM', log, 'MINID', '~', string.format('%.0f', cutoff)) end
redis.call('SET', lastKey, id, 'PX', retention * 2)
redis.call('PEXPIRE', log, retention * 2)
local payload = id .. ' ' .. prev .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[1]
if ARGV[6] == 'S' then redis.call('SPUBLISH', base, payload) else redis.call('PUBLISH', base, payload) end
return { n, id, prev }
`;

/** Step 2 of subscribe: ARGV: id → the stream id of the newest entry (the new subscriber's position) */
export const ADD_SUBSCRIBER = `
redis.call('SADD', KEYS[1] .. ':subs', ARGV[1])
return redis.call('GET', KEYS[1] .. ':last') or '0-0'
`;
