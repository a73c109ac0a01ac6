-- Make a deferred arq job due now (bot/runtime/queue.py `hurry_reply`): only while it waits in
-- the queue (a running job decides for itself) and only to bring it forward.
-- KEYS: arq queue, arq job key, arq in-progress key. ARGV: job id, new score (ms).
-- Returns 1 when moved, else 0.
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
