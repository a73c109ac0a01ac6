-- Take one of a user's places for an open event stream (handlers/sse.py): drop the places
-- whose heartbeat deadline passed (their process died or stalled), then add this stream unless
-- the cap is reached. One script, so two web processes cannot both take the last place.
-- Redis's clock: the web hosts' clocks may differ. A stream that holds a place renews it.
-- KEYS: the user's set (keys.event_streams). ARGV: stream id, cap, ttl ms.
-- Returns 1 when taken, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
-- Only ever pushed back: another process's place may have a later deadline.
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
