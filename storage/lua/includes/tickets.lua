-- The ticket scripts' prelude (storage/tickets.py): every script that touches slots or the
-- queue starts with it, so reading the agents, choosing and writing happen in one atomic step.
-- It pulls in the monitoring helpers first (they keep the aggregates in the same step) and
-- defines the routing rule (`pick`; bot.routing.choose_agent is its specification), taking and
-- releasing slots, `drain`, `close` and `requeue`. `now` is every ticket script's ARGV[1], the
-- change's time in epoch ms.
--@include monitor
local TK, TKM, TKH = '@TICKET@', '@TICKET_MESSAGES@', '@TICKET_HISTORY@'
-- The desk's internal notes on a ticket (storage/notes.py) are kept as long as the ticket.
local TKN = '@TICKET_NOTES@'
local Q, IDLE, UNANS, ACTIVE, ALL =
  '@TICKET_QUEUE@', '@TICKETS_IDLE@', '@TICKETS_UNANSWERED@', '@TICKETS_ACTIVE@', '@TICKETS_ALL@'
local AG, AGTK, EV, PF = '@AGENT@', '@AGENT_TICKETS@', '@AGENT_EVENTS@', '@PORTFOLIO@'
local NA_PRE, NA_SUF = '@NUMBER_AGENTS_PRE@', '@NUMBER_AGENTS_SUF@'
local OPEN_PRE, OPEN_MID, OPEN_SUF = '@OPEN_TICKET_PRE@', '@OPEN_TICKET_MID@', '@OPEN_TICKET_SUF@'
local ASEQ, LAST, HOLDERS = '@ASSIGN_SEQ@', '@LAST_ASSIGNED@', '@TICKET_HOLDERS@'
local EVMAX, EVTTL, TTL, BATCH =
  @AGENT_EVENTS_MAX@, @AGENT_EVENTS_TTL_S@, @TICKET_TTL_S@, @DRAIN_BATCH@
local now = tonumber(ARGV[1])

local function str(v) if v == false or v == nil then return '' end return v end
local function num(v) return tonumber(str(v)) or 0 end
local function null_if_empty(v) if str(v) == '' then return cjson.null end return v end

local function hist(id, entry)
  entry['at'] = now
  redis.call('RPUSH', TKH .. id, cjson.encode(entry))
end

local function publish(agent, etype, id, extra)
  local t = redis.call('HMGET', TK .. id, 'phone_number_id', 'wa_id', 'name', 'status')
  local data = {ticket_id = id, phone_number_id = str(t[1]), wa_id = null_if_empty(t[2]),
                name = null_if_empty(t[3]), status = str(t[4]), agent_id = agent}
  if extra then for k, v in pairs(extra) do data[k] = v end end
  redis.call('XADD', EV .. agent, 'MAXLEN', '~', EVMAX, '*', 'type', etype,
             'data', cjson.encode(data))
  redis.call('EXPIRE', EV .. agent, EVTTL)
end

local agents = {}
local function agent(a)
  local c = agents[a]
  if c == nil then
    local h = redis.call('HMGET', AG .. a, 'status', 'slots', 'numbers')
    if not h[1] and not h[2] then
      c = false
    else
      c = {status = str(h[1]), slots = num(h[2]), numbers = str(h[3]),
           load = redis.call('SCARD', AGTK .. a), last = num(redis.call('HGET', LAST, a))}
    end
    agents[a] = c
  end
  return c
end
local function free(c) return c and c.status == 'online' and c.load < c.slots end
local function released(a)
  local c = agents[a]
  if c then c.load = c.load - 1 end
end

local members_of = {}
local function members(pnid)
  local m = members_of[pnid]
  if m == nil then
    m = redis.call('SMEMBERS', NA_PRE .. pnid .. NA_SUF)
    table.sort(m)
    members_of[pnid] = m
  end
  return m
end
local function attached(pnid, a)
  return redis.call('SISMEMBER', NA_PRE .. pnid .. NA_SUF, a) == 1
end
local function capacity(pnid)
  for _, a in ipairs(members(pnid)) do if free(agent(a)) then return true end end
  return false
end

-- The routing rule (bot.routing.choose_agent is its specification).
local function pick(pnid, contact, excluded)
  local owner = redis.call('HGET', PF .. pnid, contact)
  if owner and owner ~= excluded and attached(pnid, owner) and free(agent(owner)) then
    return owner, 'portfolio'
  end
  local best, bc = nil, nil
  for _, a in ipairs(members(pnid)) do
    if a ~= excluded then
      local c = agent(a)
      if free(c) and (best == nil or c.load < bc.load
                      or (c.load == bc.load and c.last < bc.last)) then
        best, bc = a, c
      end
    end
  end
  return best, 'balance'
end

local function excluded_of(id)
  local e = redis.call('HMGET', TK .. id, 'excluded', 'excluded_until')
  if str(e[1]) ~= '' and num(e[2]) > now then return e[1] end
  return nil
end

-- Give ticket `id` (of number `pnid`) to agent `a`: takes one of a's slots.
local function take(id, pnid, a)
  local before = redis.call('HMGET', TK .. id, 'status', 'created_at', 'first_response_at')
  local created = num(before[2])
  m_status(pnid, created, str(before[1]), 'open')
  redis.call('ZREM', M_Q .. pnid, id)
  if str(before[3]) ~= '' then redis.call('ZADD', M_SVC .. pnid, before[3], id) end
  ix_add(ix_agent(pnid, a), created, id)
  redis.call('ZREM', Q .. pnid, id)
  redis.call('ZREM', IDLE .. pnid, id)
  redis.call('SADD', AGTK .. a, id)
  redis.call('SADD', HOLDERS, a)
  local seq = redis.call('INCR', ASEQ)
  redis.call('HSET', LAST, a, seq)
  redis.call('HSET', TK .. id, 'status', 'open', 'agent_id', a, 'assigned_at', now,
             'excluded', '', 'excluded_until', '')
  redis.call('HSETNX', TK .. id, 'first_assigned_at', now)
  if str(redis.call('HGET', TK .. id, 'first_response_at')) == '' then
    redis.call('ZADD', UNANS .. pnid, now, id)
  end
  local c = agent(a)
  if c then c.load = c.load + 1; c.last = seq end
end

local function route_to(id, pnid, a, how)
  take(id, pnid, a)
  hist(id, {type = 'routed', agent_id = a, detail = how})
  publish(a, 'ticket.routed', id, {reason = how})
end

-- Route the waiting tickets of `pnids`, oldest first across them, while agents have room.
-- Returns a flat list: ticket id, agent id, ticket id, agent id, ...
local function drain(pnids)
  local heads, seen = {}, {}
  for _, pnid in ipairs(pnids) do
    if not seen[pnid] and capacity(pnid) then
      seen[pnid] = true
      local r = redis.call('ZRANGE', Q .. pnid, 0, BATCH - 1, 'WITHSCORES')
      for i = 1, #r, 2 do heads[#heads + 1] = {r[i], tonumber(r[i + 1]), pnid} end
    end
  end
  table.sort(heads, function(x, y)
    if x[2] ~= y[2] then return x[2] < y[2] end
    return x[1] < y[1]
  end)
  local done = {}
  for _, h in ipairs(heads) do
    local id, pnid = h[1], h[3]
    if capacity(pnid) then
      local a, how = pick(pnid, str(redis.call('HGET', TK .. id, 'contact')), excluded_of(id))
      if a then
        route_to(id, pnid, a, how)
        done[#done + 1] = id
        done[#done + 1] = a
      end
    end
  end
  return done
end

-- The numbers whose queues may use the slot `a` just freed: `first`, then a's others.
local function numbers_of(a, first)
  local list = {first}
  local c = agent(a)
  if c and c.numbers ~= '' then
    for _, n in ipairs(cjson.decode(c.numbers)) do list[#list + 1] = n end
  end
  return list
end

local function append(list, more)
  for _, v in ipairs(more) do list[#list + 1] = v end
  return list
end

local function expire_closed(id)
  for _, k in ipairs({TK .. id, TKM .. id, TKH .. id, TKN .. id}) do
    redis.call('EXPIRE', k, TTL)
  end
end

-- Close ticket `id`; returns the agent that held it ('' when none) or false when it was not
-- active.
local service_biz = {}
local function close(id, by, actor, detail)
  local t = redis.call('HMGET', TK .. id, 'status', 'agent_id', 'phone_number_id', 'contact',
                       'created_at', 'first_response_at', 'first_assigned_at', 'tags')
  if not t[1] or t[1] == 'closed' then return false end
  local pnid, a = t[3], str(t[2])
  -- The status reports show (bot.tickets.derive_status): the customer left unanswered.
  local outcome = 'closed'
  if by == 'customer' and str(t[6]) == '' then
    outcome = str(t[7]) ~= '' and 'abandoned' or 'lost'
  end
  local created = num(t[5])
  m_status(pnid, created, t[1], outcome)
  redis.call('ZREM', M_Q .. pnid, id)
  redis.call('ZREM', M_SVC .. pnid, id)
  m_tags_closed(pnid, t[8])
  ix_add(ix_outcome(pnid, outcome), created, id)
  if outcome == 'closed' and str(t[7]) ~= '' then
    local wall = now - num(t[7])
    m_add(pnid, now, 'sv', 1)
    m_add(pnid, now, 'svms', wall)
    m_add(pnid, now, 'svbms', service_biz[id] or wall)
  end
  if t[1] == 'open' and a ~= '' then
    redis.call('SREM', AGTK .. a, id)
    released(a)
    m_add(pnid, now, 'ac:' .. a, 1)
  else
    a = ''
  end
  for _, z in ipairs({Q, IDLE, UNANS, ACTIVE}) do redis.call('ZREM', z .. pnid, id) end
  local open_key = OPEN_PRE .. pnid .. OPEN_MID .. str(t[4]) .. OPEN_SUF
  if redis.call('GET', open_key) == id then redis.call('DEL', open_key) end
  redis.call('HSET', TK .. id, 'status', 'closed', 'closed_at', now, 'closed_by', by)
  hist(id, {type = 'closed', agent_id = null_if_empty(a), by = actor, detail = detail})
  if a ~= '' then publish(a, 'ticket.closed', id, {closed_by = by}) end
  expire_closed(id)
  return a
end

-- Put assigned ticket `id` back in its queue at its original place; returns its former agent.
local function requeue(id, status, excluded_until, by, detail)
  local t = redis.call('HMGET', TK .. id, 'agent_id', 'phone_number_id', 'queued_at',
                       'created_at', 'status')
  local a, pnid = str(t[1]), t[2]
  m_status(pnid, num(t[4]), str(t[5]), status)
  redis.call('ZADD', M_Q .. pnid, now, id)
  redis.call('ZREM', M_SVC .. pnid, id)
  redis.call('SREM', AGTK .. a, id)
  released(a)
  redis.call('ZREM', UNANS .. pnid, id)
  redis.call('HSET', TK .. id, 'status', status, 'agent_id', '', 'assigned_at', '',
             'excluded', a, 'excluded_until', excluded_until)
  redis.call('ZADD', Q .. pnid, num(t[3]), id)
  redis.call('ZADD', IDLE .. pnid, now, id)
  hist(id, {type = status == 'transferred' and 'transferred' or 'requeued', agent_id = a,
            by = by, detail = detail, from = a, to = cjson.null})
  publish(a, 'ticket.transferred', id, {from = a, to = cjson.null, reason = detail})
  return a, pnid
end
