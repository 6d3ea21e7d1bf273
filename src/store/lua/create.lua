-- Allocates a number and creates a binding, or returns the identical live one.
-- KEYS[1] pool meta, KEYS[2] the record's shard hash.
-- ARGV: P now sh gen exp shipment tA tB routeValueA routeValueB area pid recordHead
-- extLen ('' or 0 = no extension) extStart extStep [probe]
-- With ARGV[17] = 'probe' nothing is created: {'p', '1'} if a number is free for
-- the parties here, else {'p', '0'} (a sub-pooled shipment's fallback choice).
-- (the caller builds the route values and the record head; the script checks that
-- its pool id is still `pid`). An extension is probed from extStart by extStep
-- (coprime to 10, so every extension is visited) among those free on X.
local now = tonumber(ARGV[2])
local sh, gen = ARGV[3], ARGV[4]
local exp = tonumber(ARGV[5])
local ship, ha, hb, area = ARGV[6], ARGV[7], ARGV[8], ARGV[11]
local m = meta(KEYS[1])
if not m then
  return { 'e', 'nopool' }
end
if m.pid ~= ARGV[12] then
  return { 'e', 'pid' }
end
reap_due(now, m.cooling, m.shards, '64')

local raw = rec_get(sh)
local old = rec_parse(raw)
if old and old.exp > now then
  if old.ship == ship and old.ha == ha and old.hb == hb then
    return { 'x', raw, m.pid, redis.call('GET', rkey(old.x, old.ha)) or '',
      redis.call('GET', rkey(old.x, old.hb)) or '' }
  end
  return { 'e', 'conflict', raw, m.pid }
end

local elen = tonumber(ARGV[14] ~= '' and ARGV[14] or '0')
local espace = 1
for _ = 1, elen do
  espace = espace * 10
end

local function free(x)
  if redis.call('EXISTS', rkey(x, ha), rkey(x, hb)) ~= 0 then
    return false
  end
  return elen == 0 or ext_held(x, now) < espace
end

-- A free extension on x (x has room: checked by free).
local function take_ext(x)
  local c = tonumber(ARGV[15]) % espace
  local step = tonumber(ARGV[16])
  local z = ekey(x)
  for _ = 1, espace do
    local e = string.format('%0' .. elen .. 'd', c)
    if not redis.call('ZSCORE', z, e) then
      return e
    end
    c = (c + step) % espace
  end
  return nil
end

-- Least loaded first (ties: number order); stop at the cap. Small first batch:
-- usually the first candidate fits.
local function pick(z)
  local start, size = 0, 4
  while true do
    local batch = redis.call('ZRANGE', z, fmt(start), fmt(start + size - 1), 'WITHSCORES')
    if #batch == 0 then
      return nil
    end
    for i = 1, #batch, 2 do
      if tonumber(batch[i + 1]) >= m.cap then
        return nil
      end
      if free(batch[i]) then
        return batch[i]
      end
    end
    start = start + size
    size = 64
  end
end

local function choose()
  local x = nil
  if area ~= '' then
    x = pick(P .. 'la:' .. area)
  end
  return x or pick(P .. 'ld')
end

local x = choose()
if not x and redis.call('ZCOUNT', P .. 'nx', '-inf', fmt(now)) > 0 then
  -- Counts may still include expired bindings: make them exact, then retry.
  reap_due(now, m.cooling, m.shards, '-1')
  x = choose()
end
if ARGV[17] == 'probe' then
  return { 'p', x and '1' or '0' }
end
if not x then
  tally(now, 'x')
  return { 'e', 'exhausted' }
end

local ext = ''
if elen > 0 then
  ext = take_ext(x)
  if not ext then
    tally(now, 'x')
    return { 'e', 'exhausted' }
  end
end
local hold = fmt(exp + m.cooling)
redis.call('SET', rkey(x, ha), ARGV[9], 'PXAT', hold)
redis.call('SET', rkey(x, hb), ARGV[10], 'PXAT', hold)
if ext ~= '' then
  redis.call('ZADD', ekey(x), hold, ext)
  redis.call('HSET', ehkey(x), ext, sh .. gen)
end
local rec = ARGV[13] .. rec_tail(x, ext) .. ship
redis.call('HSET', KEYS[2], sh, rec)
redis.call('ZADD', lkey_of(x, sh, m.shards), fmt(exp), sh .. gen)
-- x's count was exact (or is recounted when due): count the new binding in.
for _, z in ipairs(load_keys(x)) do
  redis.call('ZINCRBY', z, '1', x)
end
redis.call('ZADD', P .. 'nx', 'LT', fmt(exp), x)
-- The live total, allocation tally, ends per minute and both parties' counts.
enqueue('c' .. ha .. hb .. ARGV[2] .. ':' .. ARGV[5])
return { 'n', rec, m.pid }
