-- A callback goes pending -> opened, exactly once: the caller announces the callback only when
-- this returns 1.
-- KEYS: callback record, the number's pending index, row. ARGV: row id, opened ms, record TTL ms,
-- ticket id ('' unknown).
local record, pending, row = KEYS[1], KEYS[2], KEYS[3]
local id, at, ttl, ticket = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if redis.call('HGET', record, 'status') ~= 'pending' then return 0 end
redis.call('HSET', record, 'status', 'opened', 'opened_ms', at, 'ticket_id', ticket)
redis.call('PEXPIRE', record, ttl)
redis.call('ZREM', pending, id)
if redis.call('EXISTS', row) == 1 then
  redis.call('HSET', row, 'callback', 'opened', 'callback_ms', at, 'ticket_id', ticket)
end
return 1
