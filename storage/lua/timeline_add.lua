-- Add one timeline entry (ZADD + HSET, idempotent on the message id), then trim every entry
-- older than the retention before the newest one (entries stamped after `now_max` do not count
-- as newest) and refresh both keys' TTL, so that an idle contact's timeline disappears a
-- retention after its last entry.
-- KEYS: the timeline ZSET, its entries HASH. ARGV: message id, timestamp s, entry JSON,
-- retention s, TTL s, now_max s. Returns {new, kept}: whether the id was new, and whether the
-- entry survived the trim (an entry older than the retention does not).
local z, h = KEYS[1], KEYS[2]
local member, score, entry = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local retention, ttl, now_max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local new = redis.call('ZADD', z, score, member)
redis.call('HSET', h, member, entry)
local top = redis.call('ZREVRANGEBYSCORE', z, now_max, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #top > 0 then
  local cutoff = '(' .. tostring(tonumber(top[2]) - retention)
  while true do
    local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff, 'LIMIT', 0, 500)
    if #old == 0 then break end
    redis.call('HDEL', h, unpack(old))
    redis.call('ZREM', z, unpack(old))
  end
end
redis.call('EXPIRE', z, ttl)
redis.call('EXPIRE', h, ttl)
local kept = 0
if redis.call('ZSCORE', z, member) then kept = 1 end
return {new, kept}
