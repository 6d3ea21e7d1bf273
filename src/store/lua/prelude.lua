-- Shared helpers, prepended to every maskline store script.
-- ARGV[1] is the pool's key prefix "{pool}" (its hash tag); every key a script
-- touches starts with it, so a script stays on one Redis Cluster slot.
-- Times are milliseconds since the epoch, passed in by the caller (never TIME).
local P = ARGV[1]

local function fmt(n)
  return string.format('%d', n)
end

-- 6-byte big-endian unsigned integers (timestamps).
local function enc6(n)
  local b = {}
  for i = 6, 1, -1 do
    b[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(b[1], b[2], b[3], b[4], b[5], b[6])
end

local function dec6(s, i)
  local n = 0
  for j = i, i + 5 do
    n = n * 256 + string.byte(s, j)
  end
  return n
end

-- Binding record: gen(1-3) created(4-9) expires(10-15) state(16) hA(17-32)
-- hB(33-48) xlen(49) X digits, then the shipment id.
local function rec_parse(r)
  if not r or string.len(r) < 50 then
    return nil
  end
  local xl = string.byte(r, 49)
  return {
    gen = string.sub(r, 1, 3),
    created = dec6(r, 4),
    exp = dec6(r, 10),
    state = string.sub(r, 16, 16),
    ha = string.sub(r, 17, 32),
    hb = string.sub(r, 33, 48),
    x = string.sub(r, 50, 49 + xl),
    ship = string.sub(r, 50 + xl),
  }
end

local function rec_build(t)
  return t.gen .. enc6(t.created) .. enc6(t.exp) .. t.state .. t.ha .. t.hb
    .. string.char(string.len(t.x)) .. t.x .. t.ship
end

-- Binding id (16 bytes, a UUIDv8): sh[1..6] 0x80 sh[7] 0x80 sh[8] pid(3) gen(3).
local function make_id(sh, pid, gen)
  return string.sub(sh, 1, 6) .. '\128' .. string.sub(sh, 7, 7) .. '\128'
    .. string.sub(sh, 8, 8) .. pid .. gen
end

-- Route/hold key of party hash h on number x. Value: id(16) until(6) sealed callee
-- (the sealed part is empty once the hold is only cooling).
local function rkey(x, h)
  return P .. 'r' .. x .. h
end

-- Number info "<state a|r><caps 0-3><area>".
local function numinfo(x)
  local v = redis.call('HGET', P .. 'n', x)
  if not v then
    return nil, nil
  end
  return string.sub(v, 1, 1), string.sub(v, 3)
end

-- Recounts number x at `now` from its per-number ZSET l<x> (member sh..gen,
-- score = binding end): drops members whose cooling is over, writes the exact live
-- count into the load indexes and the next expiry into nx. Returns how many
-- bindings stopped being live since the last count.
local function refresh(x, now, cooling)
  local lk = P .. 'l' .. x
  redis.call('ZREMRANGEBYSCORE', lk, '-inf', fmt(now - cooling))
  local live = redis.call('ZCOUNT', lk, '(' .. fmt(now), '+inf')
  local state, area = numinfo(x)
  local gone = 0
  if state then
    local zk = P .. 'lr'
    if state == 'a' then
      zk = P .. 'ld'
    end
    local old = tonumber(redis.call('ZSCORE', zk, x) or '0')
    if old > live then
      gone = old - live
    end
    redis.call('ZADD', zk, live, x)
    if state == 'a' and area ~= '' then
      redis.call('ZADD', P .. 'la:' .. area, live, x)
    end
  end
  local nxt = redis.call('ZRANGEBYSCORE', lk, '(' .. fmt(now), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if nxt[2] then
    redis.call('ZADD', P .. 'nx', nxt[2], x)
  else
    redis.call('ZREM', P .. 'nx', x)
  end
  local last = redis.call('ZRANGE', lk, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', lk, fmt(tonumber(last[2]) + cooling))
  end
  return gone
end

-- Recounts the numbers whose next expiry is due (at most `limit`, -1 = all).
-- Returns the number of bindings that expired.
local function reap_due(now, cooling, limit)
  local due = redis.call('ZRANGEBYSCORE', P .. 'nx', '-inf', fmt(now), 'LIMIT', 0, limit)
  local gone = 0
  for _, x in ipairs(due) do
    gone = gone + refresh(x, now, cooling)
  end
  return gone
end

local function meta(k)
  local m = redis.call('HMGET', k, 'cooling_s', 'cap', 'grace_s', 'pid')
  if not m[1] then
    return nil
  end
  return { cooling = tonumber(m[1]) * 1000, cap = tonumber(m[2]), grace = tonumber(m[3]) * 1000, pid = m[4] }
end
