-- HSET on a hash that still exists (HSET on an expired row or callback would resurrect it
-- without a TTL). KEYS: the hash. ARGV: field, value, field, value, ... Returns 1 when written.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
