-- arq's finish_job transaction as one script (bot/worker.py DesklineWorker; no result kept:
-- deskline sets keep_result=0).
-- KEYS: in-progress, retry, job, queue, abort set. ARGV: finish (1/0), score increment ('' for
-- none), in-progress ms to keep ('' to delete it), job id. Returns 1.
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[5], ARGV[4])
  redis.call('ZREM', KEYS[4], ARGV[4])
elseif ARGV[2] ~= '' then
  redis.call('ZINCRBY', KEYS[4], ARGV[2], ARGV[4])
end
return 1
