-- Start a poll's worth of arq jobs in one call (bot/worker.py DesklineWorker). For each id, the
-- same check-and-set arq makes with WATCH/MULTI per job (four round trips each): not in
-- progress elsewhere, still queued, due; then its in-progress key is set. arq's key layout
-- stays in bot/worker.py (arq.constants): the caller passes the queue and the prefix.
-- KEYS: the queue. ARGV: now (epoch ms), in-progress ttl (ms), arq's in-progress key prefix,
-- job ids... Returns [id, score, id, score, ...] of those started.
local now, ttl, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', prefix .. id) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= now then
      redis.call('PSETEX', prefix .. id, ttl, '1')
      out[#out + 1] = id
      out[#out + 1] = score
    end
  end
end
return out
