-- Create the callback record unless there is one (the first request wins: a second tap, or a
-- redelivery, changes nothing), index it as pending and mirror it on the row (if still there:
-- HSET on an expired row would resurrect it without a TTL).
-- KEYS: callback record, the number's pending index, row. ARGV: row id, due ms ('' unscheduled),
-- record TTL ms, index TTL ms, contact, wa_id, user_id, name, period. Returns 1 when created.
local record, pending, row = KEYS[1], KEYS[2], KEYS[3]
local id, due, ttl, pending_ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', record) == 1 then return 0 end
redis.call('HSET', record, 'status', 'pending', 'contact', ARGV[5], 'wa_id', ARGV[6],
  'user_id', ARGV[7], 'name', ARGV[8], 'period', ARGV[9], 'due_ms', due)
redis.call('PEXPIRE', record, ttl)
redis.call('ZADD', pending, due == '' and '+inf' or due, id)
redis.call('PEXPIRE', pending, pending_ttl)
if redis.call('EXISTS', row) == 1 then
  redis.call('HSET', row, 'callback', 'scheduled', 'callback_ms', due)
end
return 1
