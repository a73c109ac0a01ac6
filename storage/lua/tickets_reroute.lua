-- Route again the tickets assigned before `cutoff` that got no first reply (at most BATCH).
-- ARGV: now, pnid, cutoff, excluded_until. Returns the ids requeued.
--@include tickets
local pnid, cutoff, excluded_until = ARGV[2], ARGV[3], ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', UNANS .. pnid, '-inf', cutoff, 'LIMIT', 0, BATCH)
local out, pnids = {}, {pnid}
for _, id in ipairs(ids) do
  local t = redis.call('HMGET', TK .. id, 'status', 'first_response_at')
  if t[1] == 'open' and str(t[2]) == '' then
    local a = requeue(id, 'waiting', excluded_until, 'system', 'no_first_reply')
    out[#out + 1] = id
    append(pnids, numbers_of(a, pnid))
  else
    redis.call('ZREM', UNANS .. pnid, id)
  end
end
drain(pnids)
return out
