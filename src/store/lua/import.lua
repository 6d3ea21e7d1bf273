-- Adds numbers to a pool; numbers already in it are skipped (a retired one stays
-- retired). KEYS[1] pool meta. ARGV: P then triples (digits, caps 0-3, area or '').
-- Returns 1 (added) or 0 (skipped) per triple.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'e', 'nopool' }
end
local out = { 'o' }
for i = 2, #ARGV, 3 do
  local x, caps, area = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HSETNX', P .. 'n', x, 'a' .. caps .. area) == 1 then
    redis.call('ZADD', P .. 'ld', '0', x)
    redis.call('ZADD', P .. 'N', '0', x)
    if area ~= '' then
      redis.call('ZADD', P .. 'la:' .. area, '0', x)
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
