-- Move a ticket to an attached, online agent with a free slot; the former holder's slot may
-- pull a waiting ticket. ARGV: now, id, target agent, actor.
-- Returns {outcome, ...}: 'missing', 'closed', 'same', 'not_attached', {'unavailable', status,
-- load, slots} or {'transferred', ticket id, agent id, ...}.
--@include tickets
local id, target, actor = ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('HMGET', TK .. id, 'status', 'agent_id', 'phone_number_id')
if not t[1] then return {'missing'} end
if t[1] == 'closed' then return {'closed'} end
local pnid, old = t[3], str(t[2])
if t[1] == 'open' and old == target then return {'same'} end
if not attached(pnid, target) then return {'not_attached'} end
local c = agent(target)
if not free(c) then
  return {'unavailable', c and c.status or '', c and c.load or 0, c and c.slots or 0}
end
if t[1] == 'open' and old ~= '' then
  redis.call('SREM', AGTK .. old, id)
  released(old)
  redis.call('ZREM', UNANS .. pnid, id)
  publish(old, 'ticket.transferred', id, {from = old, to = target})
else
  old = ''
end
take(id, pnid, target)
hist(id, {type = 'transferred', agent_id = target, by = actor, from = null_if_empty(old),
          to = target})
publish(target, 'ticket.transferred', id, {from = null_if_empty(old), to = target})
local out = {'transferred'}
if old ~= '' then append(out, drain(numbers_of(old, pnid))) end
return out
