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

-- Ops counters (all under the pool's hash tag; see the store's module docs).
-- Live bindings per party, approximately and in fixed memory: `{p}Q` is a
-- count-min sketch (4 rows x 65,536 u16 counters, indexed by the party tag's
-- bytes, which are uniformly random, then the total as a u32: 512 KiB a pool),
-- read with the count-mean-min estimator (each row's counter minus that row's
-- average noise, the median of the rows, at most the smallest counter), and
-- `{p}P` keeps the TOPK parties with the highest estimates.
local TOPK = 32
local CMS_W = 65536
-- Adds `ds[i]` to party `hs[i]`'s counters (one BITFIELD for up to 128 parties)
-- and returns their estimates, in order. Offsets and increments go to Redis as
-- Lua numbers (no strings built per row).
local CMS_TOTAL = 4 * CMS_W * 16
local function cms_add(hs, ds)
  local args = { P .. 'Q', 'OVERFLOW', 'SAT' }
  local k = 3
  local sum = 0
  for i, h in ipairs(hs) do
    local d = ds[i]
    local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(h, 1, 8)
    args[k + 1], args[k + 2], args[k + 3], args[k + 4] = 'INCRBY', 'u16', (b1 * 256 + b2) * 16, d
    args[k + 5], args[k + 6], args[k + 7], args[k + 8] = 'INCRBY', 'u16', (CMS_W + b3 * 256 + b4) * 16, d
    args[k + 9], args[k + 10], args[k + 11], args[k + 12] = 'INCRBY', 'u16', (2 * CMS_W + b5 * 256 + b6) * 16, d
    args[k + 13], args[k + 14], args[k + 15], args[k + 16] = 'INCRBY', 'u16', (3 * CMS_W + b7 * 256 + b8) * 16, d
    k = k + 16
    sum = sum + d
  end
  args[k + 1], args[k + 2], args[k + 3], args[k + 4] = 'INCRBY', 'u32', CMS_TOTAL, sum
  local v = redis.call('BITFIELD', unpack(args))
  local n = v[#v]
  local out = {}
  for p = 0, #hs - 1 do
    local c1, c2, c3, c4 = v[4 * p + 1], v[4 * p + 2], v[4 * p + 3], v[4 * p + 4]
    local mn = math.min(c1, c2, c3, c4)
    -- Count-mean-min: each counter less its row's mean noise; the median of the
    -- four is the mean of the middle two (sum less the smallest and largest).
    local f = (CMS_W - 1)
    local e1, e2, e3, e4 = c1 - (n - c1) / f, c2 - (n - c2) / f, c3 - (n - c3) / f, c4 - (n - c4) / f
    local mid = (e1 + e2 + e3 + e4 - math.min(e1, e2, e3, e4) - math.max(e1, e2, e3, e4)) / 2
    local m = math.floor(mid + 0.5)
    if m > mn then
      m = mn
    end
    out[p + 1] = m
  end
  return out
end

-- A party enters the busiest list from this many live bindings on: one binding
-- makes nobody the busiest, and most customers hold one (their creates skip the
-- list's calls). A pool of sub-pools splits a party's bindings over them, so
-- there every party counts (set by `meta`).
local top_min = 2

local function top_set(h, est, d)
  if d > 0 and est < top_min then
    return
  end
  local z = P .. 'P'
  if redis.call('ZSCORE', z, h) then
    if est <= 0 then
      redis.call('ZREM', z, h)
    else
      redis.call('ZADD', z, fmt(est), h)
    end
  elseif d > 0 then
    if redis.call('ZCARD', z) < TOPK then
      redis.call('ZADD', z, fmt(est), h)
    else
      local mn = redis.call('ZRANGE', z, '0', '0', 'WITHSCORES')
      if est > tonumber(mn[2]) then
        redis.call('ZREM', z, mn[1])
        redis.call('ZADD', z, fmt(est), h)
      end
    end
  end
end

-- Adds `d` (+1 or -1) live bindings to each party of `hs`: queued (see `fold`).
local fold
local FOLD_AT = 128
local function enqueue(e)
  if redis.call('RPUSH', P .. 'kq', e) >= FOLD_AT then
    fold(FOLD_AT)
  end
end
local function top_bump(hs, d)
  enqueue((d > 0 and '+' or '-') .. table.concat(hs))
end

-- `{p}t` field `live`: the pool's running live total, the overview's O(1) count.
-- Started by the first overview (which sums the load indexes once); until then
-- there is nothing to keep.
local function live_add(d)
  if redis.call('HEXISTS', P .. 't', 'live') == 1 then
    redis.call('HINCRBY', P .. 't', 'live', fmt(d))
  end
end

-- `{p}ke`: binding ends by minute (field: minute since the epoch), so cooling
-- bindings are the ends within the last cooling period (pruned by the overview).
local function ends_move(from, to)
  if from then
    redis.call('HINCRBY', P .. 'ke', fmt(math.floor(from / 60000)), '-1')
  end
  if to then
    redis.call('HINCRBY', P .. 'ke', fmt(math.floor(to / 60000)), '1')
  end
end

-- `{p}k<hour>`: per-minute counters of one hour (fields a<min> allocations,
-- x<min> exhausted answers, L<min> live-binding samples), kept 26 hours.
local function tally(now, kind)
  local hour = math.floor(now / 3600000)
  local k = P .. 'k' .. fmt(hour)
  if redis.call('HINCRBY', k, kind .. fmt(math.floor(now / 60000) % 60), '1') == 1 then
    redis.call('PEXPIREAT', k, fmt((hour + 26) * 3600000))
  end
end

-- `{p}kq`: ops counter updates queued by allocations and binding ends, applied
-- here in batches (the per-party sketch, the busiest list, the allocation tally,
-- ends per minute, the live total), so an allocation pays one RPUSH instead of
-- ~30 µs of Lua (measured: loadtest/README.md). Entries: `c<tagA><tagB><now>:<exp>`
-- (an allocation), or `+`/`-` then tags (parties gaining or losing a binding).
-- Folded every FOLD_AT entries by the script that queued the last one, and
-- entirely by the overview before it reads, so what ops see is exact.
local TL = 8
fold = function(limit)
  local es = redis.call('LPOP', P .. 'kq', fmt(limit))
  if not es then
    return 0
  end
  local delta, order = {}, {}
  local function party(h, d)
    local c = delta[h]
    if c == nil then
      order[#order + 1] = h
      delta[h] = d
    else
      delta[h] = c + d
    end
  end
  local alloc, ends, live = {}, {}, 0
  for _, e in ipairs(es) do
    local kind = string.sub(e, 1, 1)
    if kind == 'c' then
      party(string.sub(e, 2, 1 + TL), 1)
      party(string.sub(e, 2 + TL, 1 + 2 * TL), 1)
      local rest = string.sub(e, 2 + 2 * TL)
      local colon = string.find(rest, ':', 1, true)
      local am = math.floor(tonumber(string.sub(rest, 1, colon - 1)) / 60000)
      local em = math.floor(tonumber(string.sub(rest, colon + 1)) / 60000)
      alloc[am] = (alloc[am] or 0) + 1
      ends[em] = (ends[em] or 0) + 1
      live = live + 1
    else
      local d = kind == '+' and 1 or -1
      for i = 2, #e, TL do
        party(string.sub(e, i, i + TL - 1), d)
      end
    end
  end
  local hs, ds = {}, {}
  for _, h in ipairs(order) do
    if delta[h] ~= 0 then
      hs[#hs + 1] = h
      ds[#ds + 1] = delta[h]
    end
  end
  for first = 1, #hs, 128 do
    local bh, bd = {}, {}
    for i = first, math.min(first + 127, #hs) do
      bh[#bh + 1], bd[#bd + 1] = hs[i], ds[i]
    end
    local est = cms_add(bh, bd)
    for i, h in ipairs(bh) do
      top_set(h, est[i], bd[i])
    end
  end
  for am, n in pairs(alloc) do
    local hour = math.floor(am / 60)
    local k = P .. 'k' .. fmt(hour)
    if redis.call('HINCRBY', k, 'a' .. fmt(am % 60), fmt(n)) == n then
      redis.call('PEXPIREAT', k, fmt((hour + 26) * 3600000))
    end
  end
  for em, n in pairs(ends) do
    redis.call('HINCRBY', P .. 'ke', fmt(em), fmt(n))
  end
  if live ~= 0 then
    live_add(live)
  end
  return #es
end

-- Virtual numbers inside records are BCD-packed (two digits a byte, 0xF pads).
local function bcd_enc(d)
  local b, n = {}, string.len(d)
  for i = 1, n, 2 do
    local lo = 15
    if i < n then
      lo = string.byte(d, i + 1) - 48
    end
    b[#b + 1] = (string.byte(d, i) - 48) * 16 + lo
  end
  return string.char(unpack(b))
end

local function bcd_dec(b)
  local out = {}
  for i = 1, #b do
    local v = string.byte(b, i)
    out[#out + 1] = string.char(48 + math.floor(v / 16))
    if v % 16 ~= 15 then
      out[#out + 1] = string.char(48 + v % 16)
    end
  end
  return table.concat(out)
end

-- Binding record (kept under 64 bytes for typical shipment ids, so record hashes
-- stay listpack-encoded): gen(1-3) created(4-9) expires(10-15) state(16) tA(17-24)
-- tB(25-32) lens(33) X as BCD, the extension as BCD, then the shipment id. tA/tB
-- are the parties' tags; lens = X's BCD bytes + 16 * extension digits (0: none).
local function rec_parse(r)
  if not r or string.len(r) < 34 then
    return nil
  end
  local lens = string.byte(r, 33)
  local xl = lens % 16
  local el = math.floor(lens / 16)
  local eb = math.floor((el + 1) / 2)
  local ext = ''
  if el > 0 then
    ext = bcd_dec(string.sub(r, 34 + xl, 33 + xl + eb))
  end
  return {
    gen = string.sub(r, 1, 3),
    created = dec6(r, 4),
    exp = dec6(r, 10),
    state = string.sub(r, 16, 16),
    ha = string.sub(r, 17, 24),
    hb = string.sub(r, 25, 32),
    x = bcd_dec(string.sub(r, 34, 33 + xl)),
    ext = ext,
    ship = string.sub(r, 34 + xl + eb),
  }
end

-- The record bytes from X on: lens, X and extension as BCD.
local function rec_tail(x, ext)
  local xb = bcd_enc(x)
  local eb = ''
  if ext ~= '' then
    eb = bcd_enc(ext)
  end
  return string.char(string.len(xb) + 16 * string.len(ext)) .. xb .. eb
end

local function rec_build(t)
  return t.gen .. enc6(t.created) .. enc6(t.exp) .. t.state .. t.ha .. t.hb
    .. rec_tail(t.x, t.ext) .. t.ship
end

-- Extensions of number x: ZSET e<x> (member: extension, score: end of its hold =
-- the binding's end + cooling) and hash E<x> (extension -> sh .. gen of its
-- binding). Held extensions are never handed out again until their score passes.
local function ekey(x)
  return P .. 'e' .. x
end

local function ehkey(x)
  return P .. 'E' .. x
end

-- Forgets extensions of x whose hold is over; returns how many are still held.
local function ext_held(x, now)
  local z = ekey(x)
  local over = redis.call('ZRANGEBYSCORE', z, '-inf', fmt(now))
  if #over > 0 then
    redis.call('HDEL', ehkey(x), unpack(over))
    redis.call('ZREMRANGEBYSCORE', z, '-inf', fmt(now))
  end
  return redis.call('ZCARD', z)
end

-- Moves the hold of extension ext on x (if any) to end at `upto`.
local function ext_move(x, ext, upto)
  if ext ~= '' then
    redis.call('ZADD', ekey(x), 'XX', fmt(upto), ext)
  end
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

-- Binding records live in small hashes (listpack-encoded) sharded by the first two
-- bytes of the shipment hash: field = sh (8 bytes), value = record.
local function rec_shard(sh)
  return P .. 's' .. string.sub(sh, 1, 2)
end

local function rec_get(sh)
  return redis.call('HGET', rec_shard(sh), sh)
end

-- Forgets a record if it is still generation `gen` of that shipment.
local function rec_forget(sh, gen)
  local k = rec_shard(sh)
  local r = redis.call('HGET', k, sh)
  if r and string.sub(r, 1, 3) == gen then
    redis.call('HDEL', k, sh)
  end
end

-- Bindings of number x: `shards` small ZSETs l<x>:<k>, member sh..gen (11 bytes),
-- score = the binding's end (expiry, or when it was deleted). Members stay through
-- the cooling period: live count = ZCOUNT (now +inf, cooling = ends in the last
-- cooling period.
local function lkey(x, k)
  return P .. 'l' .. x .. ':' .. fmt(k)
end

local function lkey_of(x, sh, shards)
  return lkey(x, string.byte(sh, 8) % shards)
end

-- Number info "<state a|r|q><caps 0-3><area>" (q: quarantined by ops).
local function numinfo(x)
  local v = redis.call('HGET', P .. 'n', x)
  if not v then
    return nil, nil
  end
  return string.sub(v, 1, 1), string.sub(v, 3)
end

local function load_keys(x)
  local state, area = numinfo(x)
  if not state then
    return {}
  end
  if state == 'q' then
    return { P .. 'lq' }
  end
  if state ~= 'a' then
    return { P .. 'lr' }
  end
  if area ~= '' then
    return { P .. 'ld', P .. 'la:' .. area }
  end
  return { P .. 'ld' }
end

-- Removes the sealed callee from a binding's route values once it has ended (the
-- keys stay as cooling holds). `id` check: only this binding's values.
local function strip(r, sh)
  for _, h in ipairs({ r.ha, r.hb }) do
    local k = rkey(r.x, h)
    local v = redis.call('GET', k)
    if v and string.len(v) > 22 and string.sub(v, 1, 16) == make_id(sh, string.sub(v, 11, 13), r.gen) then
      redis.call('SET', k, string.sub(v, 1, 22), 'KEEPTTL')
    end
  end
end

-- Recounts number x at `now`: strips the sealed callee from bindings that expired
-- since the last recount, forgets bindings whose cooling is over (and their
-- records), writes the exact live count into the load indexes and the time of x's
-- next event (an expiry or a cooling end) into nx. Returns how many bindings stopped
-- being live since the last count.
local function refresh(x, now, cooling, shards)
  local live, nxt = 0, nil
  local over = fmt(now - cooling)
  -- Bindings that ended since the last recount of x: strip their sealed callees.
  local since = redis.call('HGET', P .. 'nt', x) or '0'
  redis.call('HSET', P .. 'nt', x, fmt(now))
  for k = 0, shards - 1 do
    local lk = lkey(x, k)
    if tonumber(since) < now then
      for _, mbr in ipairs(redis.call('ZRANGEBYSCORE', lk, '(' .. since, fmt(now))) do
        local sh = string.sub(mbr, 1, 8)
        local r = rec_parse(rec_get(sh))
        if r and r.gen == string.sub(mbr, 9, 11) and r.exp <= now then
          strip(r, sh)
          top_bump({ r.ha, r.hb }, -1)
        end
      end
    end
    local dead = redis.call('ZRANGEBYSCORE', lk, '-inf', over)
    if #dead > 0 then
      for _, mbr in ipairs(dead) do
        rec_forget(string.sub(mbr, 1, 8), string.sub(mbr, 9, 11))
      end
      redis.call('ZREMRANGEBYSCORE', lk, '-inf', over)
    end
    live = live + redis.call('ZCOUNT', lk, '(' .. fmt(now), '+inf')
    local f = redis.call('ZRANGEBYSCORE', lk, '(' .. fmt(now), '+inf', 'WITHSCORES', 'LIMIT', '0', '1')
    if f[2] then
      local t = tonumber(f[2])
      if not nxt or t < nxt then
        nxt = t
      end
    end
    local o = redis.call('ZRANGE', lk, '0', '0', 'WITHSCORES')
    if o[2] and tonumber(o[2]) <= now then
      local t = tonumber(o[2]) + cooling
      if not nxt or t < nxt then
        nxt = t
      end
    end
  end
  local gone = 0
  local zs = load_keys(x)
  if zs[1] then
    local old = tonumber(redis.call('ZSCORE', zs[1], x) or '0')
    if old > live then
      gone = old - live
    end
    if old ~= live then
      live_add(live - old)
    end
    for _, z in ipairs(zs) do
      redis.call('ZADD', z, fmt(live), x)
    end
  end
  if nxt then
    redis.call('ZADD', P .. 'nx', fmt(nxt), x)
  else
    redis.call('ZREM', P .. 'nx', x)
  end
  return gone
end

-- Recounts the numbers whose next event is due (at most `limit`, '-1' = all; a
-- string: numbers passed to redis.call are formatted with %.17g, which is slow).
-- Returns the number of bindings that expired.
local function reap_due(now, cooling, shards, limit)
  local due = redis.call('ZRANGEBYSCORE', P .. 'nx', '-inf', fmt(now), 'LIMIT', '0', limit)
  local gone = 0
  for _, x in ipairs(due) do
    gone = gone + refresh(x, now, cooling, shards)
  end
  return gone
end

local function meta(k)
  local m = redis.call('HMGET', k, 'cooling_s', 'cap', 'grace_s', 'pid', 'shards', 'subpools')
  if not m[1] then
    return nil
  end
  if tonumber(m[6] or '1') > 1 then
    top_min = 1
  end
  return {
    cooling = tonumber(m[1]) * 1000,
    cap = tonumber(m[2]),
    grace = tonumber(m[3]) * 1000,
    pid = m[4],
    shards = tonumber(m[5] or '1'),
  }
end
