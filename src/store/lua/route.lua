-- The call path's lookup: the caller's route value on X and, when it names a
-- binding, that binding's record (shipment and party tags, for the call record),
-- in one round trip. No prelude: nothing here needs it, and a call pays for
-- every line a script defines.
-- KEYS[1] the route key. ARGV[1] the (sub-)pool's key prefix "{t}".
-- Replies {} (no route), {value} (a hold without a binding id) or {value, record}
-- (record '' when the shipment's record is gone).
local v = redis.call('GET', KEYS[1])
if not v then
  return {}
end
if #v < 22 then
  return { v }
end
-- The binding id carries the shipment hash: bytes 1-6, 8 and 10 (make_id).
local sh = string.sub(v, 1, 6) .. string.sub(v, 8, 8) .. string.sub(v, 10, 10)
return { v, redis.call('HGET', ARGV[1] .. 's' .. string.sub(sh, 1, 2), sh) or '' }
