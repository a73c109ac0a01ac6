-- The webhook intake (bot/runtime/queue.py `Intake`): for each item, claim it (SET NX, the
-- raw JSON as the value) and, only when the claim is new, write its arq job and queue it.
-- New jobs wake idle workers: when the idle flag is set, delete it and publish on the channel
-- of the same name (storage/keys.py WORKER_IDLE).
-- KEYS: served numbers (set), arq queue, intake stats (hash), other events (list), then per
-- item its claim key and its arq job key, then the idle flag.
-- ARGV: claim TTL ms, job TTL ms, queue score, item count, other-event count, other-list
-- cap, then per item: phone_number_id, job id, raw JSON, job; then the other events.
-- Returns {new, duplicate, unknown_number}.
local numbers, queue, stats, other = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local claim_ttl, job_ttl, score = ARGV[1], ARGV[2], ARGV[3]
local n_items, n_other, other_max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local new, dup, unknown = 0, 0, 0
local known = {}
for i = 0, n_items - 1 do
  local a = 7 + i * 4
  local pnid, job_id, raw, job = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local served = known[pnid]
  if served == nil then
    served = redis.call('SISMEMBER', numbers, pnid) == 1
    known[pnid] = served
  end
  if not served then
    unknown = unknown + 1
  elseif redis.call('SET', KEYS[5 + i * 2], raw, 'NX', 'PX', claim_ttl) then
    redis.call('SET', KEYS[6 + i * 2], job, 'PX', job_ttl)
    redis.call('ZADD', queue, score, job_id)
    new = new + 1
  else
    dup = dup + 1
  end
end
if new > 0 then
  local idle = KEYS[5 + n_items * 2]
  if redis.call('DEL', idle) == 1 then redis.call('PUBLISH', idle, '1') end
end
if unknown > 0 then redis.call('HINCRBY', stats, 'unknown_number', unknown) end
if n_other > 0 then
  for j = 0, n_other - 1 do redis.call('LPUSH', other, ARGV[7 + n_items * 4 + j]) end
  redis.call('LTRIM', other, 0, other_max - 1)
  redis.call('HINCRBY', stats, 'other_event', n_other)
end
return {new, dup, unknown}
