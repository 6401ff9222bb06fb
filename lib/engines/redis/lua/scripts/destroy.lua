-- DESTROY: remove a live session.
-- KEYS[1] B      bucket base
-- ARGV[1] nodech   ARGV[2] id
-- Reply: 1 Destroyed | 2 DestroyedWithGrave | 0 | -1 | -2 (gone)
local id = ARGV[2]
local st = live(id, now_ms())
if st ~= 1 then return st end
return remove(id)
