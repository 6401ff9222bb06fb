-- ADD_SUBSCRIBER: step 2 of subscribe.
-- KEYS[1] pattern base
-- ARGV[1] id
-- Reply: the stream id of the log's newest entry ('0-0' none): the subscriber's position
redis.call('SADD', KEYS[1] .. ':subs', ARGV[1])
return redis.call('GET', KEYS[1] .. ':last') or '0-0'
