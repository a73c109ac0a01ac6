-- Put an assigned ticket back in its queue at its original place (status transferred).
-- ARGV: now, id, actor, excluded_until. Returns {'missing'}, {'closed'}, {'queued'} (waiting
-- already) or {'transferred', ticket id, agent id, ...}.
--@include tickets
local id = ARGV[2]
local status = redis.call('HGET', TK .. id, 'status')
if not status then return {'missing'} end
if status == 'closed' then return {'closed'} end
if status ~= 'open' then return {'queued'} end
local a, pnid = requeue(id, 'transferred', ARGV[4], ARGV[3], 'transfer')
return append({'transferred'}, drain(numbers_of(a, pnid)))
