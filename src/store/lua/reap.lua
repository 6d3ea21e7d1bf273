-- Makes one pool's counters exact at `now`: recounts numbers with due expiries
-- (at most ARGV[3] of them) and forgets finished cooling holds.
-- KEYS[1] pool meta. ARGV: P now limit. Returns {expired bindings, numbers still due}.
local now = tonumber(ARGV[2])
local m = meta(KEYS[1])
if not m then
  return { 0, 0 }
end
local gone = reap_due(now, m.cooling, m.shards, ARGV[3])
redis.call('ZREMRANGEBYSCORE', P .. 'c', '-inf', fmt(now - m.cooling))
return { gone, redis.call('ZCOUNT', P .. 'nx', '-inf', fmt(now)) }
