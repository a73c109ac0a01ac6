-- Move a queued arq job to a new time, keeping its payload (bot/runtime/queue.py
-- `move_run_callback`): only while it waits, extending its expiry.
-- KEYS: arq queue, arq job key, arq in-progress key. ARGV: job id, new score (ms), expiry ms.
-- Returns 'running', 'absent' or 'moved'.
if redis.call('EXISTS', KEYS[3]) == 1 then return 'running' end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'absent' end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 'moved'
