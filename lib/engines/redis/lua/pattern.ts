/**
 * The pattern scripts. A pattern's keys share its hash slot: its base is
 * `<prefix>{p:<pattern>}`; `<base>:subs` is the set of its subscribers'
 * ids, `<base>:log` the stream of what was published to it, `<base>:last`
 * the stream id of the newest entry, and `<base>` the (sharded) Pub/Sub
 * channel the nodes that hold subscribers listen on.
 */

/**
 * Publish once, whatever the number of subscribers: the publishes a node
 * made in one tick to one channel, in one script. KEYS: pattern bases
 * (of the channel's expansion), one on Redis Cluster (every key of a
 * script in one slot), all of them on a single Redis, so a pattern without
 * subscribers costs one SCARD. For each pattern with subscribers: append
 * the publishes to the log, trim it by length and age, announce them in
 * one message.
 *
 * ARGV: maxlen ('' none), retention ms, 'S' (SPUBLISH) or 'P' (PUBLISH),
 * then four per publish: message, publish id, except (comma-separated ids,
 * or '-'), the message's length in JS characters.
 *
 * → { 0 } when no pattern has subscribers, else { 1, then for each key
 * the log's previous stream id ('' no subscribers), then for each key with
 * subscribers and each publish: subscribers not in except, stream id (''
 * when not appended) }.
 *
 * The announcement: `<prev> <count>` then per entry ` <id> <pub> <except>
 * <length> <message>`: the length lets a reader cut the message out, and
 * `prev` (the log's newest entry before these) lets it see a gap.
 */
export const PUBLISH = `
local nkeys = #KEYS
local n = {}
local any = false
for j = 1, nkeys do
  n[j] = redis.call('SCARD', KEYS[j] .. ':subs')
  if n[j] > 0 then any = true end
end
if not any then return { 0 } end
local out = { 1 }
local prevs = {}
for j = 1, nkeys do
  if n[j] > 0 then prevs[j] = redis.call('GET', KEYS[j] .. ':last') or '0-0' else prevs[j] = '' end
  out[j + 1] = prevs[j]
end
local maxlen, retention = ARGV[1], tonumber(ARGV[2])
local cutoff
for j = 1, nkeys do
  if n[j] > 0 then
    local base = KEYS[j]
    local log, subs = base .. ':log', base .. ':subs'
    local parts = { prevs[j], '' }
    local appended = 0
    local last
    for at = 4, #ARGV, 4 do
      local message, pub, except = ARGV[at], ARGV[at + 1], ARGV[at + 2]
      local k = n[j]
      if except ~= '-' then
        for x in string.gmatch(except, '[^,]+') do
          if redis.call('SISMEMBER', subs, x) == 1 then k = k - 1 end
        end
      end
      if k > 0 then
        local id
        if maxlen == '' then id = redis.call('XADD', log, '*', 'm', message, 'u', pub, 'x', except)
        else id = redis.call('XADD', log, 'MAXLEN', '~', maxlen, '*', 'm', message, 'u', pub, 'x', except) end
        last = id
        appended = appended + 1
        parts[#parts + 1] = id
        parts[#parts + 1] = pub
        parts[#parts + 1] = except
        parts[#parts + 1] = ARGV[at + 3]
        parts[#parts + 1] = message
        out[#out + 1] = k
        out[#out + 1] = id
      else
        out[#out + 1] = 0
        out[#out + 1] = ''
      end
    end
    if last then
      if not cutoff then
        local t = redis.call('TIME')
        cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - retention
      end
      if cutoff > 0 then redis.call('XTRIM', log, 'MINID', '~', string.format('%.0f', cutoff)) end
      redis.call('SET', base .. ':last', last, 'PX', retention * 2)
      redis.call('PEXPIRE', log, retention * 2)
      parts[2] = tostring(appended)
      local payload = table.concat(parts, ' ')
      if ARGV[3] == 'S' then redis.call('SPUBLISH', base, payload) else redis.call('PUBLISH', base, payload) end
    end
  end
end
return out
`;

/** Step 2 of subscribe: ARGV: id → the stream id of the newest entry (the new subscriber's position) */
export const ADD_SUBSCRIBER = `
redis.call('SADD', KEYS[1] .. ':subs', ARGV[1])
return redis.call('GET', KEYS[1] .. ':last') or '0-0'
`;
