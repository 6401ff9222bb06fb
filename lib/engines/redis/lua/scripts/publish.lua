-- PUBLISH: a tick's publishes, logged once per pattern with subscribers (or, for channels, in the shard), announced in call order.
-- KEYS[1..] pattern bases (of one slot on a Cluster); with a shard, KEYS[1] is the shard's base
-- ARGV[1] maxlen ('' none)   ARGV[2] retention (ms)   ARGV[3] 'S' SPUBLISH | 'P' PUBLISH   ARGV[4] maxbytes ('' none)
-- ARGV[5] history maxbytes per channel   ARGV[6] number of publishes with history
-- ARGV[7] '' no shard | the key prefix (channels are logged in the shard KEYS[1]; a count reads '<prefix>{p:<channel>}:subs')
-- ARGV[8] the index of the last pattern log key (KEYS after it are channel bases for history only)
-- ARGV[9] with a shard: the most bytes its log holds ('' none)
-- ARGV[10] the hash of the session that publishes them all ('' none; on one Redis): gone or past its deadline, nothing is
--   published and the reply is { 3 Refused }
-- Without a shard, ARGV[11..] per publish: nk, nk indexes into KEYS (pattern logs), message, publish id, except ids or '-',
--   length in JS characters, history.
-- With a shard, ARGV[11..9+ARGV[8]]: per pattern log KEYS[2..ARGV[8]], the ordinals (from 1) of the publishes that reach it,
--   comma-separated; then the shard's entry as the node built it ('<count>' then per publish ' <channel> <publish id> <except>
--   <length> <message>'), its bytes + 100, per publish the bytes of its part ('<channel> ... <message>'), comma-separated,
--   the ordinals of the publishes whose channel's subscribers are counted, comma-separated ('' none), then per publish with
--   history: '<ordinal> <history>'.
-- history: '-' or '<index of the channel in KEYS> <size> <ttl ms> <tail>'
-- Reply: { 3 Refused } | { 0 NoSubscribers } | { 2 Logged, the shard's last entry before, the new entry's id, then per publish counted (in order)
--   its channel's subscribers not in except: with a shard, no history, no pattern log with subscribers, every publish is in
--   that one entry } | { 1 Published, prev per key ('' none; the shard's: its last entry), then per publish, per its keys with
--   subscribers: recipients, stream id or '', and with a shard then: its subscribers not in except (-1 not counted), the shard entry's id,
--   then per publish with history its position '{"epoch":"...","offset":N}', then the ordinals (from 1) of the publishes before which the
--   waiting announcements were sent }
-- A shard entry: field 'p', '<count>' then per publish ' <channel> <publish id> <except> <length> <message>'; its announcement:
--   '<prev entry> <entry> ' then the same, after the patterns' announcements of the same publishes. The shard's :last holds
--   '<last entry> <ms its keys expire> <bytes of its entries>', its :index per entry '<entry> <bytes>', oldest first.

local nkeys = #KEYS
local shard = ARGV[7] ~= ''
local lo, hi = shard and 2 or 1, tonumber(ARGV[8])
local retention = tonumber(ARGV[2])
-- The publishing session first: a session ended a moment before (on any node) publishes nothing.
if ARGV[10] ~= '' then
  local d = redis.call('HGET', ARGV[10], 'd')
  if not d then return { 3 } end
  local t = redis.call('TIME')
  if tonumber(d) <= tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then return { 3 } end
end
-- Trim a log exactly, oldest entries first, the newest always staying: pop its index's head ('<id> <bytes>') while
-- there are more than most entries or bytes, or the head's ms is before cutoff; then XTRIM the log to the new head.
-- Returns the entries, bytes and head ms left.
local function trim(base, len, total, most, bytesmost, cutoff)
  local index = base .. ':index'
  local head
  local trimmed = false
  while len > 1 do
    head = redis.call('LINDEX', index, 0)
    if len > most or total > bytesmost or (tonumber(string.match(head, '^(%d+)')) or 0) < cutoff then
      redis.call('LPOP', index)
      total = total - (tonumber(string.sub(head, string.find(head, ' ', 1, true) + 1)) or 0)
      len = len - 1
      trimmed = true
      head = nil
    else
      break
    end
  end
  head = head or redis.call('LINDEX', index, 0)
  if trimmed then redis.call('XTRIM', base .. ':log', 'MINID', string.sub(head, 1, string.find(head, ' ', 1, true) - 1)) end
  if total < 0 then total = 0 end
  return len, total, tonumber(string.match(head, '^(%d+)')) or 0
end
-- After the shard's new entries (slast the newest, now Redis's clock): the shard is trimmed exactly, oldest entries first
-- (the newest stays), to its bytes, 1,000,000 entries, and, once per half retention, entries older than retention; then
-- its keys get a new expiry, between retention and 1.5 x retention after this publish. Between renewals :last keeps its expiry.
local function shard_save(slast, sexpires, sbytes, slen, now)
  local smax = tonumber(ARGV[9]) or math.huge
  local renew = sexpires - now < retention
  if renew or sbytes > smax or slen > 1000000 then
    slen, sbytes = trim(KEYS[1], slen, sbytes, 1000000, smax, renew and now - retention or -1)
  end
  if renew then
    local expiry = now + math.floor(retention * 1.5)
    redis.call('PEXPIRE', KEYS[1] .. ':log', expiry - now)
    redis.call('PEXPIRE', KEYS[1] .. ':index', expiry - now)
    redis.call('SET', KEYS[1] .. ':last', slast .. ' ' .. string.format('%.0f %.0f', expiry, sbytes), 'PX', expiry - now)
  else
    redis.call('SET', KEYS[1] .. ':last', slast .. ' ' .. string.format('%.0f %.0f', sexpires, sbytes), 'KEEPTTL')
  end
end
-- The shard's common tick: no history, no pattern log with subscribers. The node's entry is logged and announced as it
-- came, in one XADD, RPUSH, PUBLISH and SET, with no work per publish but the counts asked for (each string made, each
-- number formatted and each reply slot costs Redis CPU).
if shard and ARGV[6] == '0' then
  local quiet = true
  for j = 2, hi do
    if redis.call('SCARD', KEYS[j] .. ':subs') > 0 then
      quiet = false
      break
    end
  end
  if quiet then
    local base, payload, size = KEYS[1], ARGV[hi + 10], ARGV[hi + 11]
    local lastkey = base .. ':last'
    local got = redis.call('GET', lastkey)
    local prev, e, b
    if got then prev, e, b = string.match(got, '^(%S+) ?(%d*) ?(%d*)$') end
    prev = prev or '0-0'
    local id = redis.call('XADD', base .. ':log', '*', 'p', payload)
    local len = redis.call('RPUSH', base .. ':index', id .. ' ' .. size)
    redis.call(ARGV[3] == 'S' and 'SPUBLISH' or 'PUBLISH', base, prev .. ' ' .. id .. ' ' .. payload)
    local bytes, expires = (tonumber(b) or 0) + size, tonumber(e) or 0
    local now = tonumber(string.match(id, '^(%d+)'))
    if expires - now >= retention and len <= 1000000 and bytes <= (tonumber(ARGV[9]) or math.huge) then
      -- The expiry as read: the text shard_save would format.
      redis.call('SET', lastkey, id .. ' ' .. e .. ' ' .. string.format('%d', bytes), 'KEEPTTL')
    else
      shard_save(id, expires, bytes, len, now)
    end
    local out = { 2, prev, id }
    if ARGV[hi + 13] ~= '' then
      -- The counts asked for: the channel's subscribers not in except, read in the publish's part of the entry.
      local starts, o, from = {}, 0, string.find(payload, ' ', 1, true) + 1
      for bytes in string.gmatch(ARGV[hi + 12], '%d+') do
        o = o + 1
        starts[o] = from
        from = from + bytes + 1
      end
      for c in string.gmatch(ARGV[hi + 13], '%d+') do
        local channel, except = string.match(payload, '^(%S+) %S+ (%S+) ', starts[tonumber(c)])
        local subs = ARGV[7] .. '{p:' .. channel .. '}:subs'
        local k = redis.call('SCARD', subs)
        if k > 0 and except ~= '-' then
          for x in string.gmatch(except, '[^,]+') do
            if redis.call('SISMEMBER', subs, x) == 1 then k = k - 1 end
          end
        end
        out[#out + 1] = k
      end
    end
    return out
  end
end
local n = {}
local any = false
for j = 1, nkeys do
  if j >= lo and j <= hi then n[j] = redis.call('SCARD', KEYS[j] .. ':subs') else n[j] = 0 end
  if n[j] > 0 then any = true end
end
if not any and ARGV[6] == '0' and not shard then return { 0 } end
local out = { 1 }
-- The shard: its last entry and when its keys expire; the waiting entry's parts, publishes, and the reply slots of its id.
local slast, sexpires, sbytes, slen, sn, sout = '', 0, 0, 0, 0, {}
-- The node's entry: where each publish's part starts and ends in it, the parts a history changed; the waiting entry's
-- first publish and whether a history changed one of its parts.
local spayload, starts, ends, mods, sfirst, smod, total
if shard then
  local got = redis.call('GET', KEYS[1] .. ':last')
  if got then
    local l, e, b = string.match(got, '^(%S+) ?(%d*) ?(%d*)$')
    slast, sexpires, sbytes = l or '0-0', tonumber(e) or 0, tonumber(b) or 0
  else
    slast = '0-0'
  end
end
-- Per key with subscribers: the newest id, the log's bytes, when its keys expire (ms; see the end) and the ms of the
-- index's head ('' unknown) as read (written back as they are when unchanged: formatting a number costs), the index length.
local last, bytes, expires, heads, lens, had
-- (Tables cost the script its time: made only when some pattern log has subscribers.)
if any then last, bytes, expires, heads, lens, had = {}, {}, {}, {}, {}, {} end
for j = 1, nkeys do
  local prev = ''
  if n[j] > 0 then
    local got = redis.call('MGET', KEYS[j] .. ':last', KEYS[j] .. ':bytes')
    prev = got[1] or '0-0'
    had[j] = got[1] ~= false and got[2] ~= false
    last[j] = prev
    local b, e, h = string.match(got[2] or '', '^(%d+) ?(%d*) ?(%d*)$')
    bytes[j] = tonumber(b) or 0
    expires[j], heads[j] = e or '', h or ''
  end
  out[j + 1] = prev
end
if shard then out[2] = slast end
-- Waiting announcements: per key its parts and the ordinals of its publishes; waiting[] in the order they go out.
local pending, has, hn, waiting = {}, {}, {}, {}
local cuts = {}
local pubcmd = ARGV[3] == 'S' and 'SPUBLISH' or 'PUBLISH'
local function announce()
  for w = 1, #waiting do
    local j = waiting[w]
    local parts = pending[j]
    parts[2] = tostring((#parts - 2) / 5)
    local payload = table.concat(parts, ' ')
    redis.call(pubcmd, KEYS[j], payload)
    pending[j], has[j] = nil, nil
  end
  waiting, hn = {}, {}
  -- The shard's entry goes last (see the cut rule below).
  if sn > 0 then
    -- The node's entry as it came when it is the whole tick, else the waiting publishes' parts.
    local payload
    local slastp = sfirst + sn - 1
    if smod then
      local parts = { tostring(sn) }
      for o = sfirst, slastp do parts[#parts + 1] = mods[o] or string.sub(spayload, starts[o], ends[o]) end
      payload = table.concat(parts, ' ')
    elseif sn == total then
      payload = spayload
    else
      payload = sn .. ' ' .. string.sub(spayload, starts[sfirst], ends[slastp])
    end
    local id = redis.call('XADD', KEYS[1] .. ':log', '*', 'p', payload)
    local size = #payload + 100
    slen = redis.call('RPUSH', KEYS[1] .. ':index', id .. ' ' .. size)
    sbytes = sbytes + size
    redis.call(pubcmd, KEYS[1], slast .. ' ' .. id .. ' ' .. payload)
    for i = 1, #sout do out[sout[i]] = id end
    slast, sn, smod, sout = id, 0, false, {}
  end
end
-- Whether a publish reaching the keys in inR may join the waiting announcements: it raises the newest
-- entry of each waiting key X it reaches, so every key waiting after X must hold nothing X lacks.
local function keepsOrder(inR)
  for v = 1, #waiting do
    local x = waiting[v]
    if inR[x] then
      for w = v + 1, #waiting do
        for t in pairs(has[waiting[w]]) do
          if not has[x][t] then return false end
        end
      end
    end
  end
  return true
end
local kept, counts = {}, {}
local nargs = #ARGV
local at, ordinal = 11, 0
-- With a shard: per publish, the pattern logs with subscribers it reaches (most publish to channels no pattern log has).
local reach, none = {}, {}
if shard then
  for j = lo, hi do
    if n[j] > 0 then
      for o in string.gmatch(ARGV[9 + j], '%d+') do
        o = tonumber(o)
        local r = reach[o]
        if not r then
          r = {}
          reach[o] = r
        end
        r[#r + 1] = j
      end
    end
  end
end
-- With a shard: per publish its history ('-' none) and whether to count its channel.
local hists, counted
if shard then
  spayload = ARGV[hi + 10]
  local from = string.find(spayload, ' ', 1, true) + 1
  starts, ends, mods, hists, counted = {}, {}, {}, {}, {}
  total = 0
  for bytes in string.gmatch(ARGV[hi + 12], '%d+') do
    total = total + 1
    starts[total] = from
    from = from + tonumber(bytes)
    ends[total] = from - 1
    from = from + 1
  end
  for o in string.gmatch(ARGV[hi + 13], '%d+') do counted[tonumber(o)] = true end
  for i = hi + 14, nargs do
    local o, h = string.match(ARGV[i], '^(%d+) (.*)$')
    hists[tonumber(o)] = h
  end
end
local now, clock, nowtext
-- Channel histories opened by this script (by key index, in the order opened), their ttls and sizes, the positions given.
local hs, hts, hsizes, horder, positions
local hmax = tonumber(ARGV[5]) or math.huge
while (shard and ordinal < total) or (not shard and at <= nargs) do
  ordinal = ordinal + 1
  local message, pub, except, length, hist, channel, countme
  -- The pattern logs it reaches (indexes into KEYS).
  local ks, nk
  if shard then
    -- The publish as the shard's entry holds it, built by the node; its fields are read only when needed.
    hist, countme = hists[ordinal] or '-', counted[ordinal] == true
    ks = reach[ordinal] or none
    nk = #ks
    -- Its fields, read in the node's entry only when needed: '<channel> <publish id> <except> <length> <message>'.
    if hist ~= '-' or nk > 0 then
      local from
      channel, pub, except, length, from = string.match(spayload, '^(%S+) (%S+) (%S+) (%d+) ()', starts[ordinal])
      message = string.sub(spayload, from, ends[ordinal])
    elseif countme then
      channel, except = string.match(spayload, '^(%S+) %S+ (%S+) ', starts[ordinal])
    end
  else
    nk = tonumber(ARGV[at])
    ks = {}
    for q = 1, nk do ks[q] = tonumber(ARGV[at + q]) end
    local m = at + nk + 1
    message, pub, except, length, hist = ARGV[m], ARGV[m + 1], ARGV[m + 2], ARGV[m + 3], ARGV[m + 4]
    at = m + 5
  end
  if hist ~= '-' then
    -- The channel's next position, spliced tail characters before the end; kept, then logged and announced as spliced.
    local hj, size, ttl, tail = string.match(hist, '^(%d+) (%d+) (%d+) (%d+)$')
    hj, size, ttl, tail = tonumber(hj), tonumber(size), tonumber(ttl), tonumber(tail)
    if not now then
      clock = redis.call('TIME')
      now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
      nowtext = string.format('%.0f ', now)
    end
    if not hs then hs, hts, hsizes, horder, positions = {}, {}, {}, {}, {} end
    local h = hs[hj]
    if not h then
      h = h_open(KEYS[hj], ttl, now, clock)
      h.pending = {}
      hs[hj] = h
      horder[#horder + 1] = hj
    end
    hts[hj], hsizes[hj] = ttl, size
    h.offset = h.offset + 1
    local pos = '{"epoch":"' .. h.epoch .. '","offset":' .. string.format('%.0f', h.offset) .. '}'
    message = string.sub(message, 1, #message - tail) .. pos .. string.sub(message, #message - tail + 1)
    length = tostring(tonumber(length) + #pos)
    -- Kept with one RPUSH per channel at the end of the script.
    local entry = nowtext .. message
    h.pending[#h.pending + 1] = entry
    h.bytes = h.bytes + #entry
    positions[#positions + 1] = pos
    if shard then mods[ordinal] = channel .. ' ' .. pub .. ' ' .. except .. ' ' .. length .. ' ' .. message end
  end
  local inR, r = nil, 0
  for q = 1, nk do
    local j = ks[q]
    if n[j] > 0 then
      local k, x = n[j], '-'
      if except ~= '-' then
        local found = {}
        local subs = KEYS[j] .. ':subs'
        for id in string.gmatch(except, '[^,]+') do
          if redis.call('SISMEMBER', subs, id) == 1 then
            k = k - 1
            found[#found + 1] = id
          end
        end
        if #found > 0 then x = table.concat(found, ',') end
      end
      counts[q], kept[q] = k, x
      if k > 0 then
        r = r + 1
        inR = inR or {}
        inR[j] = true
      end
    else
      counts[q] = -1
    end
  end
  local cut = r > 0 and #waiting > 0 and not keepsOrder(inR)
  if shard and r > 0 and not cut then
    -- Every publish is in the shard's entry, which is announced after the patterns': a session following a channel
    -- and a pattern gets the pattern's publishes first, then the channel's others. So a publish may join a pattern
    -- only while every publish in the entry matched that pattern too.
    for j in pairs(inR) do
      if (hn[j] or 0) < sn then
        cut = true
        break
      end
    end
  end
  if cut then
    announce()
    cuts[#cuts + 1] = ordinal
  end
  for q = 1, nk do
    local k = counts[q]
    -- Publishes of the entry a pattern with subscribers matched (all of them excluded: nobody there can get it).
    local j = ks[q]
    if shard and k >= 0 then hn[j] = (hn[j] or 0) + 1 end
    if k > 0 then
      local x = kept[q]
      local id = redis.call('XADD', KEYS[j] .. ':log', '*', 'm', message, 'u', pub, 'x', x)
      local size = #message + #pub + #x + 100
      lens[j] = redis.call('RPUSH', KEYS[j] .. ':index', id .. ' ' .. size)
      bytes[j] = bytes[j] + size
      local parts = pending[j]
      if not parts then
        parts = { last[j], '' }
        pending[j], has[j] = parts, {}
        waiting[#waiting + 1] = j
      end
      has[j][ordinal] = true
      local p = #parts
      parts[p + 1] = id
      parts[p + 2] = pub
      parts[p + 3] = x
      parts[p + 4] = length
      parts[p + 5] = message
      last[j] = id
      out[#out + 1] = k
      out[#out + 1] = id
    elseif k == 0 then
      out[#out + 1] = 0
      out[#out + 1] = ''
    end
  end
  if shard then
    local k = -1
    if countme then
      local subs = ARGV[7] .. '{p:' .. channel .. '}:subs'
      k = redis.call('SCARD', subs)
      if k > 0 and except ~= '-' then
        for id in string.gmatch(except, '[^,]+') do
          if redis.call('SISMEMBER', subs, id) == 1 then k = k - 1 end
        end
      end
    end
    if sn == 0 then sfirst = ordinal end
    if mods[ordinal] then smod = true end
    sn = sn + 1
    out[#out + 1] = k
    out[#out + 1] = ''
    sout[#sout + 1] = #out
  end
end
announce()
for i = 1, horder and #horder or 0 do
  local hj = horder[i]
  local h = hs[hj]
  h.len = redis.call('RPUSH', h.list, unpack(h.pending))
  h_bound(h, hsizes[hj], hmax)
  h_save(h, hts[hj])
  if h.len > 0 then redis.call('PEXPIRE', h.list, hts[hj]) end
end
local maxlen = tonumber(ARGV[1]) or math.huge
local maxbytes = tonumber(ARGV[4]) or math.huge
local cutoff
-- The shard's trim and expiry; Redis's clock: the ms of the entry just added (unless a history read TIME).
if shard and slast ~= out[2] then
  now = now or tonumber(string.match(slast, '^(%d+)'))
  shard_save(slast, sexpires, sbytes, slen, now)
end
for j = 1, nkeys do
  if n[j] > 0 and last[j] ~= out[j + 1] then
    local base = KEYS[j]
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    cutoff = now - retention
    local total = bytes[j]
    local len = lens[j]
    local htext = heads[j]
    local hms = tonumber(htext)
    -- The index is read only when something may be trimmed: the head's age is kept with the bytes.
    if hms == nil or len > maxlen or total > maxbytes or hms < cutoff then
      len, total, hms = trim(base, len, total, maxlen, maxbytes, cutoff)
      htext = string.format('%.0f', hms)
    end
    if total < 0 then total = 0 end
    -- The pattern's keys expire together, between retention and 1.5 x retention after its last publish:
    -- log and index get a new expiry only when less than retention of it is left, not at every publish.
    -- :bytes and :last get the same expiry then; between renewals they keep it (KEEPTTL), which only
    -- keys that exist may do (a key missing here gets a new expiry, and so do the others).
    local atext = expires[j]
    local at = tonumber(atext) or 0
    local keep = had[j] and at - now >= retention
    if not keep then
      at = now + math.floor(retention * 1.5)
      atext = string.format('%.0f', at)
      redis.call('PEXPIRE', base .. ':log', at - now)
      redis.call('PEXPIRE', base .. ':index', at - now)
    end
    local bytesText = string.format('%d %s %s', total, atext, htext)
    if keep then
      redis.call('SET', base .. ':bytes', bytesText, 'KEEPTTL')
      redis.call('SET', base .. ':last', last[j], 'KEEPTTL')
    else
      redis.call('SET', base .. ':bytes', bytesText, 'PX', at - now)
      redis.call('SET', base .. ':last', last[j], 'PX', at - now)
    end
  end
end
if positions then
  for p = 1, #positions do out[#out + 1] = positions[p] end
end
for c = 1, #cuts do out[#out + 1] = cuts[c] end
return out
