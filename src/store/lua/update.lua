-- Reassigns parties and/or changes expiry (or marks delivered) of a live binding.
-- KEYS[1] pool meta, KEYS[2] the record's shard hash.
-- ARGV: P now gen newHA sealedNewA newHB sealedNewB newExp delivered sh
-- (empty strings = unchanged; delivered = '1' sets expiry to now + grace).
local now = tonumber(ARGV[2])
local m = meta(KEYS[1])
local sh = ARGV[10]
local r = rec_parse(redis.call('HGET', KEYS[2], sh))
if not m or not r or r.exp <= now or r.gen ~= ARGV[3] then
  return { 'e', 'notfound' }
end
local ra = redis.call('GET', rkey(r.x, r.ha)) or ''
local rb = redis.call('GET', rkey(r.x, r.hb)) or ''
local id = make_id(sh, m.pid, r.gen)
local seal_a, seal_b = string.sub(rb, 23), string.sub(ra, 23)
local fa, fb = r.ha, r.hb
if ARGV[4] ~= '' then
  fa = ARGV[4]
end
if ARGV[6] ~= '' then
  fb = ARGV[6]
end
if fa == fb then
  if ARGV[6] ~= '' and fb ~= r.hb then
    return { 'e', 'same', 'party_b' }
  end
  return { 'e', 'same', 'party_a' }
end
if fa ~= r.ha and redis.call('EXISTS', rkey(r.x, fa)) == 1 then
  return { 'e', 'held', 'party_a' }
end
if fb ~= r.hb and redis.call('EXISTS', rkey(r.x, fb)) == 1 then
  return { 'e', 'held', 'party_b' }
end
local exp = r.exp
local state = r.state
if ARGV[9] == '1' then
  exp = now + m.grace
  state = 'd'
elseif ARGV[8] ~= '' then
  exp = tonumber(ARGV[8])
end
-- A replaced party cools on X from now.
local cool = fmt(now + m.cooling)
if fa ~= r.ha then
  redis.call('SET', rkey(r.x, r.ha), id .. enc6(now), 'PXAT', cool)
  redis.call('ZADD', P .. 'c', fmt(now), r.x .. r.ha)
  seal_a = ARGV[5]
end
if fb ~= r.hb then
  redis.call('SET', rkey(r.x, r.hb), id .. enc6(now), 'PXAT', cool)
  redis.call('ZADD', P .. 'c', fmt(now), r.x .. r.hb)
  seal_b = ARGV[7]
end
local hold = fmt(exp + m.cooling)
local va = id .. enc6(exp) .. seal_b
local vb = id .. enc6(exp) .. seal_a
redis.call('SET', rkey(r.x, fa), va, 'PXAT', hold)
redis.call('SET', rkey(r.x, fb), vb, 'PXAT', hold)
if fa ~= r.ha then
  top_bump({ r.ha }, -1)
  top_bump({ fa }, 1)
end
if fb ~= r.hb then
  top_bump({ r.hb }, -1)
  top_bump({ fb }, 1)
end
if exp ~= r.exp then
  ends_move(r.exp, exp)
end
r.ha, r.hb, r.state = fa, fb, state
local rec_changed = exp ~= r.exp
r.exp = exp
local rec = rec_build(r)
redis.call('HSET', KEYS[2], sh, rec)
if rec_changed then
  ext_move(r.x, r.ext, exp + m.cooling)
  redis.call('ZADD', lkey_of(r.x, sh, m.shards), fmt(exp), sh .. r.gen)
  refresh(r.x, now, m.cooling, m.shards)
end
return { 'o', rec, m.pid, va, vb }
