-- Add (or update) an after-hours row for one message, idempotently on its wamid. `requested_return`
-- only ever rises (N/D < no < yes): "yes" from a "notify me" tap sticks whatever order the jobs
-- run in, and "no" (was offered the button) outranks "N/D" (the option was off at some message).
-- Times: `first_ms` is the earliest message, `last_ms` the latest, whatever order they come in.
-- KEYS: row, its seen-wamids set, the number's row index. ARGV: wamid, message ms, now ms, keep
-- ms, row id, requested return, contact, wa_id, user_id, name, phone, period, next opening.
-- Returns {stored, created, fresh message, announced}.
local row, seen, index = KEYS[1], KEYS[2], KEYS[3]
local wamid, at, now, keep = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local id, requested = ARGV[5], ARGV[6]
local rank = {['N/D'] = 0, ['no'] = 1, ['yes'] = 2}
local created = 0
if redis.call('EXISTS', row) == 0 then
  if at + keep <= now then return {0, 0, 0, 0} end
  redis.call('HSET', row, 'contact', ARGV[7], 'wa_id', ARGV[8], 'user_id', ARGV[9],
    'name', ARGV[10], 'phone', ARGV[11], 'period', ARGV[12], 'next_opening', ARGV[13],
    'first_ms', at, 'last_ms', at, 'messages', 0, 'requested_return', requested,
    'message_sent', 0)
  created = 1
end
local fresh = redis.call('SADD', seen, wamid)
if fresh == 1 then
  redis.call('HINCRBY', row, 'messages', 1)
  if at < tonumber(redis.call('HGET', row, 'first_ms')) then
    redis.call('HSET', row, 'first_ms', at)
  end
  if at >= tonumber(redis.call('HGET', row, 'last_ms')) then
    redis.call('HSET', row, 'last_ms', at)
    for i, field in ipairs({'wa_id', 'user_id', 'name', 'phone'}) do
      if ARGV[7 + i] ~= '' then redis.call('HSET', row, field, ARGV[7 + i]) end
    end
  end
end
if rank[requested] > rank[redis.call('HGET', row, 'requested_return')] then
  redis.call('HSET', row, 'requested_return', requested)
end
local first = tonumber(redis.call('HGET', row, 'first_ms'))
local ttl = first + keep - now
if ttl <= 0 then
  redis.call('DEL', row, seen)
  redis.call('ZREM', index, id)
  return {0, 0, 0, 0}
end
redis.call('PEXPIRE', row, ttl)
redis.call('PEXPIRE', seen, ttl)
redis.call('ZADD', index, first, id)
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. (now - keep))
redis.call('PEXPIRE', index, keep + 86400000)
return {1, created, fresh, redis.call('HEXISTS', row, 'announced')}
