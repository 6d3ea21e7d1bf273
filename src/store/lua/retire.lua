-- Retires (drains) a number: it leaves the allocation indexes, live bindings stay.
-- KEYS[1] pool meta. ARGV: P digits
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'e', 'nopool' }
end
local x = ARGV[2]
local v = redis.call('HGET', P .. 'n', x)
if not v then
  return { 'e', 'nonumber' }
end
if string.sub(v, 1, 1) == 'r' then
  return { 'o' }
end
redis.call('HSET', P .. 'n', x, 'r' .. string.sub(v, 2))
local area = string.sub(v, 3)
local load = redis.call('ZSCORE', P .. 'ld', x) or redis.call('ZSCORE', P .. 'lq', x) or '0'
redis.call('ZREM', P .. 'ld', x)
redis.call('ZREM', P .. 'lq', x)
if area ~= '' then
  redis.call('ZREM', P .. 'la:' .. area, x)
end
redis.call('ZADD', P .. 'lr', load, x)
return { 'o' }
