-- EXISTS: live()
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id
-- Reply: SessionStatus (1 Live | 0 | -1 | -2)
return live(ARGV[2], now_ms())
