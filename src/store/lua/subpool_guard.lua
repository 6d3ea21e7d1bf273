-- Sub-pools (pools spanning several slots): prepended to create.lua for pools with
-- more than one sub-pool. A shipment whose home sub-pool recorded another sub-pool
-- for it (claim.lua) is created there, never here: answer where.
-- ARGV[3] = sh (as in create.lua).
local moved = redis.call('HGET', P .. 'f', ARGV[3])
if moved then
  return { 'e', 'moved', moved }
end
