-- Take the right to send one auto-reply of a kind: the check and the mark in one step, so two
-- workers deciding for the same contact cannot both reply.
-- KEYS: the contact's mark for the kind. ARGV: now ms, cooldown ms, period, mark TTL s, by (the
-- message id, '' none). Returns 1 when granted, 0 when throttled.
local mark = redis.call('HMGET', KEYS[1], 'period', 'at_ms', 'by')
local now, cooldown, period, by = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[5]
-- The same message asking again (its job is being retried) keeps the right it was given.
if mark[3] and by ~= '' and mark[3] == by then return 1 end
if mark[1] and period ~= '' and mark[1] == period then return 0 end
if mark[2] and now - tonumber(mark[2]) < cooldown then return 0 end
redis.call('HSET', KEYS[1], 'period', period, 'at_ms', now, 'by', by)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
