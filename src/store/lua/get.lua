-- Reads a live binding: its record and both route values (which hold the sealed
-- parties). KEYS[1] binding record. ARGV: P now gen ('' = any generation)
local now = tonumber(ARGV[2])
local gen = ARGV[3]
local raw = redis.call('GET', KEYS[1])
local r = rec_parse(raw)
if not r or r.exp <= now or (gen ~= '' and r.gen ~= gen) then
  return {}
end
return { raw, redis.call('GET', rkey(r.x, r.ha)) or '', redis.call('GET', rkey(r.x, r.hb)) or '' }
