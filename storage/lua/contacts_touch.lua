-- Outbound messages move `last_interaction_at` forward, on an existing contact only.
-- KEYS: contact, recency index. ARGV: contact key, ms. Returns 1, or 0 when no such contact.
local h, recent = KEYS[1], KEYS[2]
local key, ts_s = ARGV[1], ARGV[2]
if redis.call('EXISTS', h) == 0 then return 0 end
local cur = redis.call('HGET', h, 'last_interaction_at')
if not cur or tonumber(ts_s) > tonumber(cur) then
  redis.call('HSET', h, 'last_interaction_at', ts_s)
  redis.call('ZADD', recent, ts_s, key)
end
return 1
