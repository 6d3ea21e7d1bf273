-- One page of a pool's numbers in number order: `{p}N` (all numbers, score 0)
-- read by lexical range, rebuilt from `{p}n` once if it is missing numbers
-- (pools imported before it existed).
-- KEYS[1] pool meta. ARGV: P after ('' = from the start) limit.
-- Returns {'o', next or '', then (digits, info, live) per number}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'e', 'nopool' }
end
local idx = P .. 'N'
if redis.call('ZCARD', idx) ~= redis.call('HLEN', P .. 'n') then
  for _, x in ipairs(redis.call('HKEYS', P .. 'n')) do
    redis.call('ZADD', idx, '0', x)
  end
end
local limit = tonumber(ARGV[3])
local from = '-'
if ARGV[2] ~= '' then
  from = '(' .. ARGV[2]
end
local xs = redis.call('ZRANGE', idx, from, '+', 'BYLEX', 'LIMIT', '0', fmt(limit + 1))
local out = { 'o', '' }
for i = 1, math.min(#xs, limit) do
  local x = xs[i]
  local info = redis.call('HGET', P .. 'n', x) or ''
  local z = load_keys(x)
  local live = 0
  if z[1] then
    live = tonumber(redis.call('ZSCORE', z[1], x) or '0')
  end
  out[#out + 1] = x
  out[#out + 1] = info
  out[#out + 1] = live
end
if #xs > limit then
  out[2] = xs[limit]
end
return out
