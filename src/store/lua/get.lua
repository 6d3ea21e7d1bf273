-- Reads a live binding: its record and both route values (which hold the sealed
-- parties). KEYS[1] the record's shard hash. ARGV: P now gen ('' = any) sh
local now = tonumber(ARGV[2])
local gen = ARGV[3]
local raw = redis.call('HGET', KEYS[1], ARGV[4])
local r = rec_parse(raw)
if not r or r.exp <= now or (gen ~= '' and r.gen ~= gen) then
  return {}
end
return { raw, redis.call('GET', rkey(r.x, r.ha)) or '', redis.call('GET', rkey(r.x, r.hb)) or '' }
