-- Heartbeat of an open event stream: push its place's deadline back, only while it still
-- holds it (a stream that missed its deadline may have been dropped and its place taken).
-- KEYS: the user's set (keys.event_streams). ARGV: stream id, ttl ms.
-- Returns 1 when the place is held, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if deadline == false or tonumber(deadline) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
