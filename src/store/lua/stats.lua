-- Pool statistics at `now`, exact without reaping: per number (digits, info, live)
-- and the number of (party, number) holds in cooling.
-- KEYS[1] pool meta. ARGV: P now
local now = tonumber(ARGV[2])
local m = meta(KEYS[1])
if not m then
  return { 'e', 'nopool' }
end
local lo = '(' .. fmt(now - m.cooling)
local hi = fmt(now)
local cool = redis.call('ZCOUNT', P .. 'c', lo, hi)
local out = { 'o', 0 }
local all = redis.call('HGETALL', P .. 'n')
for i = 1, #all, 2 do
  local live = 0
  for k = 0, m.shards - 1 do
    local lk = lkey(all[i], k)
    live = live + redis.call('ZCOUNT', lk, '(' .. hi, '+inf')
    cool = cool + 2 * redis.call('ZCOUNT', lk, lo, hi)
  end
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = live
end
out[2] = cool
return out
