-- Sets a number's state: 'a' active (back in service), 'q' quarantined, 'r'
-- retired. Quarantined and retired numbers leave the allocation indexes; their
-- live bindings stay. KEYS[1] pool meta. ARGV: P digits state.
-- Returns {'o', previous state}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'e', 'nopool' }
end
local x, to = ARGV[2], ARGV[3]
local v = redis.call('HGET', P .. 'n', x)
if not v then
  return { 'e', 'nonumber' }
end
local from = string.sub(v, 1, 1)
if from == to then
  return { 'o', from }
end
local olds = load_keys(x)
local load = '0'
if olds[1] then
  load = redis.call('ZSCORE', olds[1], x) or '0'
end
for _, z in ipairs(olds) do
  redis.call('ZREM', z, x)
end
redis.call('HSET', P .. 'n', x, to .. string.sub(v, 2))
for _, z in ipairs(load_keys(x)) do
  redis.call('ZADD', z, load, x)
end
return { 'o', from }
