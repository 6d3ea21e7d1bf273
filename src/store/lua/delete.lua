-- Ends a live binding now; both parties start cooling on its number.
-- KEYS[1] pool meta, KEYS[2] the record's shard hash. ARGV: P now gen sh
local now = tonumber(ARGV[2])
local m = meta(KEYS[1])
local sh = ARGV[4]
local r = rec_parse(redis.call('HGET', KEYS[2], sh))
if not m or not r or r.exp <= now or r.gen ~= ARGV[3] then
  return { 'e', 'notfound' }
end
local id = make_id(sh, m.pid, r.gen)
local cool = fmt(now + m.cooling)
redis.call('SET', rkey(r.x, r.ha), id .. enc6(now), 'PXAT', cool)
redis.call('SET', rkey(r.x, r.hb), id .. enc6(now), 'PXAT', cool)
ext_move(r.x, r.ext, now + m.cooling)
redis.call('HDEL', KEYS[2], sh)
redis.call('ZADD', lkey_of(r.x, sh, m.shards), fmt(now), sh .. r.gen)
refresh(r.x, now, m.cooling, m.shards)
ends_move(r.exp, now)
top_bump({ r.ha, r.hb }, -1)
return { 'o' }
