-- Where a call keyed with extension ext on number x goes (read only).
-- ARGV: P now x ext. Replies {'l', record, routeValueOfB} for a live binding (B's
-- route value holds the sealed party A, the callee), {'d'} for an extension whose
-- binding has ended (still held: cooling), {'u'} for an unknown extension.
local now = tonumber(ARGV[2])
local x, ext = ARGV[3], ARGV[4]
local held = redis.call('ZSCORE', ekey(x), ext)
if not held or tonumber(held) <= now then
  return { 'u' }
end
local v = redis.call('HGET', ehkey(x), ext)
if not v then
  return { 'u' }
end
local sh, gen = string.sub(v, 1, 8), string.sub(v, 9, 11)
local raw = rec_get(sh)
local r = rec_parse(raw)
if not r or r.gen ~= gen or r.x ~= x or r.ext ~= ext or r.exp <= now then
  return { 'd' }
end
return { 'l', raw, redis.call('GET', rkey(r.x, r.hb)) or '' }
