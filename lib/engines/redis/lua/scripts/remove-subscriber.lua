-- REMOVE_SUBSCRIBER: a session leaves a pattern's subscribers (an unsubscribe, a removed session's grave, a failed subscribe).
-- KEYS[1] pattern base
-- ARGV[1] id
-- Reply: 0 it was not present on the channel | { the version of the leave it makes (its user's last session) | 0, user ('' anonymous) }
redis.call('SREM', KEYS[1] .. ':subs', ARGV[1])
return p_remove(KEYS[1], ARGV[1]) or 0
