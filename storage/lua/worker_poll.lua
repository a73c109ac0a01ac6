-- The arq worker's poll (bot/runtime/arq_worker.py `_poll_iteration`): the due job ids, as
-- arq's ZRANGEBYSCORE reads them, and, when the worker would go idle (`arm`) and none is due,
-- the idle flag set in the same step and the score of the next job (deferred to a later
-- time), so that the idle worker sleeps until then at most. An enqueue after this script
-- finds the flag and publishes the wake-up (queue_enqueue_job, intake_submit); one before
-- it was in the answer: no job waits for the idle poll period.
-- KEYS: arq queue, idle flag (storage/keys.py WORKER_IDLE).
-- ARGV: now (ms), offset, count, arm (the flag's TTL in ms; 0: do not arm).
-- Returns {due job ids, score of the earliest queued job or false}.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
local arm = tonumber(ARGV[4])
local next_score = false
if #ids == 0 and arm > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', arm)
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first > 0 then next_score = first[2] end
end
return {ids, next_score}
