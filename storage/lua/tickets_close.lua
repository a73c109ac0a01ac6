-- Close a ticket and let its agent's freed slot pull the oldest waiting ticket of their numbers.
-- ARGV: now, id, by (agent|customer), actor, detail, first_assigned_at as read before (the
-- service time's start), business ms from it to now. 'stale' when first_assigned_at changed.
-- Returns {'missing'}, {'stale'}, {'already'} or {'closed', ticket id, agent id, ...}.
--@include tickets
local id = ARGV[2]
local status = redis.call('HGET', TK .. id, 'status')
if not status then return {'missing'} end
if status ~= 'closed' and str(redis.call('HGET', TK .. id, 'first_assigned_at')) ~= ARGV[6] then
  return {'stale'}
end
service_biz[id] = tonumber(ARGV[7])
local a = close(id, ARGV[3], ARGV[4], ARGV[5])
if a == false then return {'already'} end
local out = {'closed'}
if a ~= '' then
  append(out, drain(numbers_of(a, redis.call('HGET', TK .. id, 'phone_number_id'))))
end
return out
