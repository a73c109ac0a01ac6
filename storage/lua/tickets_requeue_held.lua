-- Requeue the tickets of an agent who is no longer available (invisible, deleted, or detached
-- from the ticket's number). ARGV: now, agent, ticket ids... Returns the ids requeued.
--@include tickets
local a = ARGV[2]
local c = agent(a)
local out = {}
local pnids = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local t = redis.call('HMGET', TK .. id, 'status', 'agent_id', 'phone_number_id')
  if t[1] == 'open' and t[2] == a
     and (not c or c.status == 'invisible' or not attached(t[3], a)) then
    requeue(id, 'waiting', 0, 'system', 'agent_offline')
    out[#out + 1] = id
    pnids[#pnids + 1] = t[3]
  elseif t[1] ~= 'open' or t[2] ~= a then
    redis.call('SREM', AGTK .. a, id)  -- a stale slot entry (should not happen): free it
  end
end
if redis.call('SCARD', AGTK .. a) == 0 then redis.call('SREM', HOLDERS, a) end
drain(pnids)
return out
