-- ADD_SUBSCRIBER: step 2 of subscribe.
-- KEYS[1] pattern base   KEYS[2] the base of the log the pattern is logged in, when not its own (a channel in the shard)
-- ARGV[1] id   ARGV[2] 'p' also present on the channel (ARGV[3] user, '' anonymous; ARGV[4] info JSON, '' none), or absent
-- Reply: the stream id of the log's newest entry ('0-0' none; a shard's, as written): the subscriber's position;
--   with 'p': { that id, the presence version of the join it makes (the user's first session on the channel) or 0 }
redis.call('SADD', KEYS[1] .. ':subs', ARGV[1])
local last = redis.call('GET', (KEYS[2] or KEYS[1]) .. ':last')
last = last and string.match(last, '^%S+') or '0-0'
if ARGV[2] ~= 'p' then return last end
return { last, p_add(KEYS[1], ARGV[1], ARGV[3], ARGV[4]) }
