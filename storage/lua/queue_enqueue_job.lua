-- One arq job with a deterministic id (bot/runtime/queue.py `_enqueue`): skip when the job or
-- its result exists, else write it and queue it, atomically (arq's enqueue_job takes three
-- round trips for the same).
-- A queued job wakes idle workers: when the idle flag is set, delete it and publish on the
-- channel of the same name (storage/keys.py WORKER_IDLE).
-- KEYS: arq job key, arq result key, arq queue, idle flag. ARGV: job, expiry ms, score, job id.
-- Returns 1 when queued, 0 when the job already existed.
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
if redis.call('DEL', KEYS[4]) == 1 then redis.call('PUBLISH', KEYS[4], '1') end
return 1
