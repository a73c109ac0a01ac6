-- Move a pending callback to a new due time (record, index, row mirror, TTL).
-- KEYS: callback record, the number's pending index, row. ARGV: row id, due ms ('' unscheduled),
-- record TTL ms. Returns 1 when moved, 0 when the callback is not pending.
local record, pending, row = KEYS[1], KEYS[2], KEYS[3]
local id, due, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('HGET', record, 'status') ~= 'pending' then return 0 end
redis.call('HSET', record, 'due_ms', due)
redis.call('PEXPIRE', record, ttl)
redis.call('ZADD', pending, due == '' and '+inf' or due, id)
if redis.call('EXISTS', row) == 1 then redis.call('HSET', row, 'callback_ms', due) end
return 1
