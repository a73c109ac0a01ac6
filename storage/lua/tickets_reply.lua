-- Record an agent's reply on the ticket they hold (first reply, response times, portfolio).
-- KEYS: the reply's idempotency marker. ARGV: now, id, agent, message id, text, marker ttl,
-- assigned_at and awaiting_since as read before, business ms from assigned_at to now and from
-- the response's start to now. 'stale' when either time changed since the read.
-- Returns {'ok', 1 on the first reply else 0} or {outcome[, agent]} when refused.
--@include tickets
local id, a, message_id, text = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local t = redis.call('HMGET', TK .. id, 'status', 'agent_id', 'first_response_at',
                     'phone_number_id', 'contact', 'assigned_at', 'awaiting_since')
if not t[1] then return {'missing'} end
if t[1] == 'closed' then return {'closed', str(t[2])} end
if t[1] ~= 'open' or str(t[2]) == '' then return {'not_assigned'} end
if t[2] ~= a then return {'served_by_another', t[2]} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
if str(t[6]) ~= ARGV[7] or str(t[7]) ~= ARGV[8] then return {'stale'} end
redis.call('SET', KEYS[1], id, 'EX', ARGV[6])
redis.call('RPUSH', TKM .. id, cjson.encode({id = message_id, d = 'out', at = now,
                                             agent_id = a, text = text}))
local first, pnid = 0, t[4]
if str(t[3]) == '' then
  redis.call('HSET', TK .. id, 'first_response_at', now)
  redis.call('ZREM', UNANS .. pnid, id)
  redis.call('ZADD', M_SVC .. pnid, now, id)
  first = 1
  local wait, biz = now - num(t[6]), tonumber(ARGV[9])
  m_add(pnid, now, 'fr', 1)
  m_add(pnid, now, 'frms', wait)
  m_add(pnid, now, 'frbms', biz)
  m_max(pnid, now, 'frmax', wait)
  m_max(pnid, now, 'frbmax', biz)
end
if str(t[7]) ~= '' then
  -- An answer to the customer: timed from their oldest unanswered message, or from the
  -- assignment when they wrote before the agent had the ticket.
  local since = math.max(num(t[7]), num(t[6]))
  m_add(pnid, now, 'rs', 1)
  m_add(pnid, now, 'rsms', now - since)
  m_add(pnid, now, 'rsbms', tonumber(ARGV[10]))
  redis.call('HDEL', TK .. id, 'awaiting_since')
end
-- The portfolio follows whoever last served the customer.
redis.call('HSET', PF .. t[4], t[5], a)
return {'ok', first}
