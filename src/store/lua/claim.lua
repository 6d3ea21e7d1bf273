-- Sub-pools: runs in a shipment's home sub-pool when it has no number for the
-- parties; records (once) the sub-pool ARGV[4] the shipment is created in instead,
-- unless a live binding of it is here (then the caller retries here).
-- KEYS[1] the record's shard hash. ARGV: P now sh subpool
-- Returns {'h'} (live here) or {'j', recorded sub-pool}.
local r = rec_parse(redis.call('HGET', KEYS[1], ARGV[3]))
if r and r.exp > tonumber(ARGV[2]) then
  return { 'h' }
end
redis.call('HSETNX', P .. 'f', ARGV[3], ARGV[4])
return { 'j', redis.call('HGET', P .. 'f', ARGV[3]) }
