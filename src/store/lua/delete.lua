-- Ends a live binding now; both parties start cooling on its number.
-- KEYS[1] pool meta, KEYS[2] binding record. ARGV: P now gen
local now = tonumber(ARGV[2])
local m = meta(KEYS[1])
local r = rec_parse(redis.call('GET', KEYS[2]))
if not m or not r or r.exp <= now or r.gen ~= ARGV[3] then
  return { 'e', 'notfound' }
end
local id = make_id(string.sub(KEYS[2], -8), m.pid, r.gen)
local cool = fmt(now + m.cooling)
redis.call('SET', rkey(r.x, r.ha), id .. enc6(now), 'PXAT', cool)
redis.call('SET', rkey(r.x, r.hb), id .. enc6(now), 'PXAT', cool)
redis.call('DEL', KEYS[2])
redis.call('ZADD', P .. 'l' .. r.x, fmt(now), string.sub(KEYS[2], -8) .. r.gen)
refresh(r.x, now, m.cooling)
return { 'o' }
