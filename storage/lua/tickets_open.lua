-- Open a ticket for a contact, or attach the message to the contact's active ticket, then route
-- the number's queue. Idempotent on the request: its marker (KEYS[1]) answers 'duplicate'.
-- KEYS: request marker, open-ticket pointer, the number's ticket sequence (keys.ticket_seq).
-- ARGV: now, pnid, contact, wa_id, user_id, name, (unused), source, wamid, at, rand
-- (ID_RANDOM_HEX hex digits), marker ttl, natural key.
-- Returns {id, outcome (created|attached|duplicate), agent, queue position (0: not waiting),
-- 1 when this natural key opened the ticket}.
--@include tickets
local pnid, contact = ARGV[2], ARGV[3]
local wa_id, user_id, name = ARGV[4], ARGV[5], ARGV[6]
local source, wamid, at, rand, marker_ttl = ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11], ARGV[12]
local function answer(id, outcome)
  local rank = redis.call('ZRANK', Q .. pnid, id)
  local t = redis.call('HMGET', TK .. id, 'agent_id', 'natural_key')
  local mine = 0
  if t[2] == ARGV[13] then mine = 1 end
  return {id, outcome, str(t[1]), rank and rank + 1 or 0, mine}
end
local seen = redis.call('GET', KEYS[1])
if seen then return answer(seen, 'duplicate') end
local function add_message(id)
  if wamid ~= '' then
    redis.call('RPUSH', TKM .. id, cjson.encode({id = wamid, d = 'in', at = at}))
  end
end
local id = redis.call('GET', KEYS[2])
if id and (str(redis.call('HGET', TK .. id, 'status')) == ''
           or redis.call('HGET', TK .. id, 'status') == 'closed') then
  id = false
end
if id then
  add_message(id)
  -- The customer's oldest message no agent has answered yet (the response time's start).
  if wamid ~= '' then redis.call('HSETNX', TK .. id, 'awaiting_since', math.min(at, now)) end
  local status = redis.call('HGET', TK .. id, 'status')
  if name ~= '' then redis.call('HSET', TK .. id, 'name', name) end
  -- The customer wrote again: a waiting ticket is not lost yet.
  if status == 'waiting' or status == 'transferred' then
    redis.call('ZADD', IDLE .. pnid, now, id)
  end
  redis.call('SET', KEYS[1], id, 'EX', marker_ttl)
  return answer(id, 'attached')
end
-- Ids: see the module docstring. Two numbers at the same place in their sequences
-- collide only if their random parts do too (1 in 2^40): then the next place is taken.
repeat
  id = 'T' .. string.format('%010d', redis.call('INCR', KEYS[3])) .. rand
until redis.call('EXISTS', TK .. id) == 0
local place = math.min(at, now)
redis.call('HSET', TK .. id, 'id', id, 'phone_number_id', pnid, 'contact', contact,
           'natural_key', ARGV[13], 'status', 'waiting', 'created_at', now, 'queued_at', place)
-- Empty values are not stored: a hash field costs memory for every ticket kept 100 days.
for field, value in pairs({wa_id = wa_id, user_id = user_id, name = name}) do
  if value ~= '' then redis.call('HSET', TK .. id, field, value) end
end
if source ~= 'message' then redis.call('HSET', TK .. id, 'source', source) end
if wamid ~= '' then redis.call('HSET', TK .. id, 'awaiting_since', place) end
m_status(pnid, now, nil, 'waiting')
redis.call('ZADD', M_Q .. pnid, now, id)
redis.call('SET', KEYS[2], id)
redis.call('SET', KEYS[1], id, 'EX', marker_ttl)
redis.call('ZADD', Q .. pnid, place, id)
redis.call('ZADD', IDLE .. pnid, now, id)
redis.call('ZADD', ACTIVE .. pnid, now, id)
redis.call('ZADD', ALL .. pnid, now, id)
redis.call('ZREMRANGEBYSCORE', ALL .. pnid, '-inf', now - TTL * 1000)
redis.call('EXPIRE', ALL .. pnid, TTL)
add_message(id)
hist(id, {type = 'created', detail = source})
-- Through the queue, not straight to an agent: an older waiting ticket goes first.
drain({pnid})
return answer(id, 'created')
