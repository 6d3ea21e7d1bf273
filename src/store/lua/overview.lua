-- The ops overview of a pool at `now`, from counters only (cost: O(1) for the
-- live total, O(log n) per quantile, O(minutes of the cooling period) for
-- cooling; never a scan of bindings). Also samples the live total into the
-- current hour's counters (field L<minute>), for the console's charts.
-- KEYS[1] pool meta. ARGV: P now.
-- Returns {'o', active, draining, retired, quarantined, live, cooling,
--   min, median, p95, max, n parties, (tag, live) * n,
--   then 24 hours oldest first (allocations, exhausted, live sample or -1),
--   then allocations and exhausted of the last 60 minutes}.
local now = tonumber(ARGV[2])
local m = meta(KEYS[1])
if not m then
  return { 'e', 'nopool' }
end
-- Queued counter updates first (fewer than FOLD_AT unless Redis was restored
-- from an old snapshot; bounded anyway).
for _ = 1, 64 do
  if fold(1024) < 1024 then
    break
  end
end
local function total(z)
  local s = 0
  local all = redis.call('ZRANGE', z, '0', '-1', 'WITHSCORES')
  for i = 2, #all, 2 do
    s = s + tonumber(all[i])
  end
  return s
end
local active = redis.call('ZCARD', P .. 'ld')
local retired_all = redis.call('ZCARD', P .. 'lr')
local draining = redis.call('ZCOUNT', P .. 'lr', '(0', '+inf')
local quarantined = redis.call('ZCARD', P .. 'lq')
-- The running total kept by create and recounts; summed once (O(numbers)) for a
-- pool that predates it.
local live = redis.call('HGET', P .. 't', 'live')
if live then
  live = tonumber(live)
else
  live = total(P .. 'ld') + total(P .. 'lr') + total(P .. 'lq')
  redis.call('HSET', P .. 't', 'live', fmt(live))
end

-- Cooling: bindings that ended within the last cooling period (x2 parties),
-- plus parties replaced by a handover.
local cool = 0
local nowmin = math.floor(now / 60000)
local lo = math.floor((now - m.cooling) / 60000)
local ke = redis.call('HGETALL', P .. 'ke')
local stale = {}
for i = 1, #ke, 2 do
  local mn, c = tonumber(ke[i]), tonumber(ke[i + 1])
  if mn < lo or c <= 0 and mn <= nowmin then
    stale[#stale + 1] = ke[i]
  elseif mn < nowmin then
    cool = cool + c
  end
end
if #stale > 0 then
  redis.call('HDEL', P .. 'ke', unpack(stale))
end
cool = 2 * cool + redis.call('ZCOUNT', P .. 'c', '(' .. fmt(now - m.cooling), fmt(now))

local out = { 'o', active, draining, retired_all - draining, quarantined, live, cool }
local function at_rank(r)
  local v = redis.call('ZRANGE', P .. 'ld', fmt(r), fmt(r), 'WITHSCORES')
  return tonumber(v[2] or '0')
end
if active > 0 then
  out[#out + 1] = at_rank(0)
  out[#out + 1] = at_rank(math.floor((active - 1) * 0.5))
  out[#out + 1] = at_rank(math.floor((active - 1) * 0.95))
  out[#out + 1] = at_rank(active - 1)
else
  for _ = 1, 4 do
    out[#out + 1] = 0
  end
end
local top = redis.call('ZREVRANGE', P .. 'P', '0', '9', 'WITHSCORES')
out[#out + 1] = #top / 2
for i = 1, #top do
  out[#out + 1] = top[i]
end

local hour = math.floor(now / 3600000)
local minute = nowmin % 60
local hk = P .. 'k' .. fmt(hour)
redis.call('HSET', hk, 'L' .. fmt(minute), fmt(live))
redis.call('PEXPIREAT', hk, fmt((hour + 26) * 3600000))
local la, lx = 0, 0
for h = hour - 23, hour do
  local f = redis.call('HGETALL', P .. 'k' .. fmt(h))
  local a, x, l, lm = 0, 0, -1, -1
  for i = 1, #f, 2 do
    local kind, mn, v = string.sub(f[i], 1, 1), tonumber(string.sub(f[i], 2)), tonumber(f[i + 1])
    local recent = (h == hour and mn <= minute) or (h == hour - 1 and mn > minute)
    if kind == 'a' then
      a = a + v
      if recent then
        la = la + v
      end
    elseif kind == 'x' then
      x = x + v
      if recent then
        lx = lx + v
      end
    elseif kind == 'L' and mn > lm then
      l, lm = v, mn
    end
  end
  out[#out + 1] = a
  out[#out + 1] = x
  out[#out + 1] = l
end
out[#out + 1] = la
out[#out + 1] = lx
return out
