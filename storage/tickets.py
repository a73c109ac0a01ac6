"""Tickets and routing: one Lua script per decision, so any number of workers stay consistent.

A ticket is a HASH (`keys.ticket`) with the fields

    id, phone_number_id, contact (the contact key), wa_id, user_id, name (empty: absent),
    natural_key       the request that opened it
    source            absent for a message, "callback" for a callback
    status            waiting | open | transferred | closed
    agent_id          the agent holding it (kept on close: who served it)
    created_at, queued_at (its place in the queue: when the customer wrote),
    assigned_at, first_assigned_at, first_response_at, closed_at   (epoch ms)
    closed_by         agent | customer
    excluded, excluded_until   an agent the ticket is not offered to until then (the one
                      who transferred it away or did not answer it)

Every change that touches slots or the queue is one script (`_PRELUDE` + a body): it reads the
agents' status and slots, chooses, writes the ticket, the agent's slot set, the queue, the
history and the agent's event stream, all atomically. Two workers can therefore never give
the same ticket twice nor fill a slot twice, and an event is never lost between a change and
its announcement. The scripts reach per-agent and per-ticket keys they cannot declare up
front (which agents serve a number is only known inside), so this store needs one Redis, not
a cluster.

Routing (`pick` in the prelude): the contact's portfolio owner when attached, online and with
a free slot; else the attached online agent with a free slot holding the fewest tickets, ties
to the one whose last assignment is oldest (then by id); else the ticket waits, oldest first.
Agents on break or invisible get nothing. `bot.routing.choose_agent` is the same rule in
Python, the specification the property tests check the script against.

Ticket ids are `T`, the ticket's place in its number's own sequence (10 digits,
`keys.ticket_seq`), then ID_RANDOM_HEX random hex digits: `T0000000042` + `9f3a0c51d2`. The
sequence is per number, so an id says nothing about other numbers' volume (ids before this
change used one sequence for all numbers, `keys.TICKET_SEQ`, and 6 random digits: they stay
valid, every reader takes any `[A-Za-z0-9_.-]{1,64}` id and history cursors any
`T[0-9a-f]{10,20}`). It keeps what the global counter gave: within a number, ids sort in
creation order, which breaks the ties of equal scores in the number's indexes (the queue
scores a ticket by its customer's message time, whole seconds from Meta, so two customers of
one second are served in the order their tickets were opened). The random part makes ids
unguessable; what a guess would hit is a 404 anyway outside the caller's numbers.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from redis.asyncio import Redis

from bot import phones
from bot.config import NumberConfig
from bot.errors import ConflictError, NotFoundError
from bot.history import CURSOR_RE
from bot.monitoring import business_ms
from bot.tickets import (
    Ticket,
    TicketContact,
    TicketEvent,
    TicketMessage,
    TicketRequest,
    TicketStatus,
    derive_status,
)
from storage import keys
from storage.monitoring import monitor_lua
from storage.numbers import NumbersStore

# Waiting tickets one drain looks at per number; a drain stops early once no agent of the
# numbers has a free slot, so this only bounds a script over a long queue with exclusions.
DRAIN_BATCH: Final = 200
# Tickets listed per page.
LIST_MAX: Final = 500
# History pages examine at most this many tickets of an index per call (then hand a cursor).
SEARCH_SCAN_MAX: Final = 2000
# Hex digits of randomness in a ticket id (see "Ticket ids" in the module docstring).
ID_RANDOM_HEX: Final = 10
# A reply or a close computes its business time from times read just before its script; the
# script refuses ('stale') when they changed meanwhile, and it is tried again this often.
STALE_TRIES: Final = 5

_NA_PREFIX, _NA_SUFFIX = keys.number_agents("\0").split("\0")
_OPEN_PREFIX, _OPEN_MIDDLE, _OPEN_SUFFIX = re.split("[\0\1]", keys.open_ticket("\0", "\1"))

_PRELUDE: Final = """
local TK, TKM, TKH = '@TK@', '@TKM@', '@TKH@'
local Q, IDLE, UNANS, ACTIVE, ALL = '@Q@', '@IDLE@', '@UNANS@', '@ACTIVE@', '@ALL@'
local AG, AGTK, EV, PF = '@AG@', '@AGTK@', '@EV@', '@PF@'
local NA_PRE, NA_SUF = '@NA_PRE@', '@NA_SUF@'
local OPEN_PRE, OPEN_MID, OPEN_SUF = '@OPEN_PRE@', '@OPEN_MID@', '@OPEN_SUF@'
local ASEQ, LAST, HOLDERS = '@ASEQ@', '@LAST@', '@HOLDERS@'
local EVMAX, EVTTL, TTL, BATCH = @EVMAX@, @EVTTL@, @TTL@, @BATCH@
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
  for _, k in ipairs({TK .. id, TKM .. id, TKH .. id}) do redis.call('EXPIRE', k, TTL) end
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
"""

# KEYS: request marker, open-ticket pointer, the number's ticket sequence.
# ARGV: now, pnid, contact, wa_id, user_id, name, (unused), source, wamid, at, rand (ID_RANDOM_HEX
# hex digits), marker ttl, natural key.
_OPEN: Final = """
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
"""

# ARGV: now, pnids...
_DRAIN: Final = """
local pnids = {}
for i = 2, #ARGV do pnids[#pnids + 1] = ARGV[i] end
return drain(pnids)
"""

# ARGV: now, id, by (agent|customer), actor, detail, first_assigned_at as read before (the
# service time's start), business ms from it to now. 'stale' when first_assigned_at changed.
_CLOSE: Final = """
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
"""

# ARGV: now, id, target agent, actor
_TRANSFER_AGENT: Final = """
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
"""

# ARGV: now, id, actor, excluded_until
_TRANSFER_QUEUE: Final = """
local id = ARGV[2]
local status = redis.call('HGET', TK .. id, 'status')
if not status then return {'missing'} end
if status == 'closed' then return {'closed'} end
if status ~= 'open' then return {'queued'} end
local a, pnid = requeue(id, 'transferred', ARGV[4], ARGV[3], 'transfer')
return append({'transferred'}, drain(numbers_of(a, pnid)))
"""

# Requeue the tickets of an agent who is no longer available (invisible, deleted, or detached
# from the ticket's number). ARGV: now, agent, ticket ids...
_REQUEUE_HELD: Final = """
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
"""

# Route again the tickets assigned before `cutoff` that got no first reply.
# ARGV: now, pnid, cutoff, excluded_until
_REROUTE: Final = """
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
"""

# Close as lost (or abandoned, if it was ever assigned) the waiting tickets idle since before
# `cutoff`. ARGV: now, pnid, cutoff, JSON {id: [first_assigned_at, business ms to now]} for the
# tickets an agent had (read before: a ticket assigned since is left for the next sweep).
_EXPIRE: Final = """
local pnid, cutoff = ARGV[2], ARGV[3]
local given = cjson.decode(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', IDLE .. pnid, '-inf', cutoff, 'LIMIT', 0, BATCH)
local out = {}
for _, id in ipairs(ids) do
  local t = redis.call('HMGET', TK .. id, 'status', 'first_assigned_at')
  local status, g = t[1], given[id]
  local known = str(t[2]) == '' or (g ~= nil and g[1] == t[2])
  if (status == 'waiting' or status == 'transferred') and known then
    if g ~= nil then service_biz[id] = tonumber(g[2]) end
    close(id, 'customer', 'system', 'no_agent_in_time')
    out[#out + 1] = id
  elseif status ~= 'waiting' and status ~= 'transferred' then
    redis.call('ZREM', IDLE .. pnid, id)
  end
end
return out
"""

# KEYS: the reply's idempotency marker. ARGV: now, id, agent, message id, text, marker ttl,
# assigned_at and awaiting_since as read before, business ms from assigned_at to now and from
# the response's start to now. 'stale' when either time changed since the read.
_REPLY: Final = """
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
"""

# ARGV: now, id, actor, tags (JSON array, normalised by bot.tickets.TicketTagsInput)
_TAGS: Final = """
local id, actor, raw = ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('HMGET', TK .. id, 'status', 'phone_number_id', 'created_at', 'tags')
if not t[1] then return {'missing'} end
local pnid, created, active = t[2], num(t[3]), t[1] ~= 'closed'
local old, new = {}, {}
for _, tag in ipairs(m_tags_of(t[4])) do old[tag] = true end
for _, tag in ipairs(cjson.decode(raw)) do new[tag] = true end
local changed = false
for tag in pairs(old) do
  if not new[tag] then m_tag(pnid, id, created, tag, -1, active); changed = true end
end
for tag in pairs(new) do
  if not old[tag] then m_tag(pnid, id, created, tag, 1, active); changed = true end
end
if raw == '[]' then
  redis.call('HDEL', TK .. id, 'tags')
else
  redis.call('HSET', TK .. id, 'tags', raw)
end
if changed then hist(id, {type = 'tagged', by = actor, detail = raw}) end
return {changed and 'changed' or 'same'}
"""

# Read-only: every hash of KEYS, as flat field/value lists (empty for a missing key).
_HASHES: Final = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""


def _script(body: str) -> str:
    text = monitor_lua() + _PRELUDE + body
    for name, value in {
        "@TK@": keys.ticket(""),
        "@TKM@": keys.ticket_messages(""),
        "@TKH@": keys.ticket_history(""),
        "@Q@": keys.ticket_queue(""),
        "@IDLE@": keys.tickets_idle(""),
        "@UNANS@": keys.tickets_unanswered(""),
        "@ACTIVE@": keys.tickets_active(""),
        "@ALL@": keys.tickets_all(""),
        "@AG@": keys.agent(""),
        "@AGTK@": keys.agent_tickets(""),
        "@EV@": keys.agent_events(""),
        "@PF@": keys.portfolio(""),
        "@NA_PRE@": _NA_PREFIX,
        "@NA_SUF@": _NA_SUFFIX,
        "@OPEN_PRE@": _OPEN_PREFIX,
        "@OPEN_MID@": _OPEN_MIDDLE,
        "@OPEN_SUF@": _OPEN_SUFFIX,
        "@ASEQ@": keys.ASSIGN_SEQ,
        "@LAST@": keys.LAST_ASSIGNED,
        "@HOLDERS@": keys.TICKET_HOLDERS,
        "@EVMAX@": str(keys.AGENT_EVENTS_MAX),
        "@EVTTL@": str(keys.AGENT_EVENTS_TTL_S),
        "@TTL@": str(keys.TICKET_TTL_S),
        "@BATCH@": str(DRAIN_BATCH),
    }.items():
        text = text.replace(name, value)
    return text


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _text(value: bytes | str | int) -> str:
    # Lua numbers come back as integers, strings as bytes.
    return value.decode() if isinstance(value, bytes) else str(value)


def _opt(value: bytes | str | None) -> str | None:
    """A hash field as text, None when absent or empty."""
    return _text(value) if value else None


def _busy(ticket_id: str) -> ConflictError:
    return ConflictError("busy", f"ticket {ticket_id} is changing too fast; retry")


def _pairs(flat: list[Any]) -> list[tuple[str, str]]:
    items = [_text(v) for v in flat]
    return list(zip(items[::2], items[1::2], strict=True))


OpenOutcome = Literal["created", "attached", "duplicate"]


@dataclass(frozen=True, slots=True)
class Opened:
    """What `open_or_attach` did: the ticket, and where it stands now.

    `position` is the ticket's place in its queue (1 = next) while it waits, else 0.
    `opened_by_request` is True when this request's natural key opened the ticket (also on a
    "duplicate": a retried job can finish what the first run started).
    """

    ticket_id: str
    outcome: OpenOutcome
    agent_id: str | None
    position: int
    opened_by_request: bool


@dataclass(frozen=True, slots=True)
class Routed:
    """One assignment a script made: ticket -> agent."""

    ticket_id: str
    agent_id: str


def _routed(flat: list[Any]) -> list[Routed]:
    return [Routed(t, a) for t, a in _pairs(flat)]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of `TicketsStore.search`: `next_cursor` continues it (None: nothing more)."""

    items: list[Ticket]
    next_cursor: str | None


_FINAL: Final = ("closed", "abandoned", "lost")


@dataclass(frozen=True, slots=True)
class Held:
    """A ticket held by an agent (for the offline sweep)."""

    ticket_id: str
    phone_number_id: str


def _ticket(raw: dict[str, str]) -> Ticket:
    first_assigned = _time(raw.get("first_assigned_at"))
    first_response = _time(raw.get("first_response_at"))
    closed_by = raw.get("closed_by") or None
    status = derive_status(
        raw.get("status", "waiting"),
        closed_by=closed_by,
        ever_assigned=first_assigned is not None,
        answered=first_response is not None,
    )
    return Ticket(
        id=raw["id"],
        phone_number_id=raw["phone_number_id"],
        status=status,
        agent_id=raw.get("agent_id") or None,
        contact=TicketContact(
            wa_id=raw.get("wa_id") or None,
            name=raw.get("name") or None,
            phone=phones.e164(raw["wa_id"]) if raw.get("wa_id") else None,
        ),
        contact_key=raw.get("contact", ""),
        user_id=raw.get("user_id") or None,
        created_at=_time(raw.get("created_at")) or datetime.fromtimestamp(0, tz=UTC),
        assigned_at=_time(raw.get("assigned_at")),
        first_response_at=first_response,
        closed_at=_time(raw.get("closed_at")),
        closed_by=closed_by,
        source=raw.get("source") or "message",
        queued_at=_time(raw.get("queued_at")),
        tags=tuple(json.loads(raw["tags"])) if raw.get("tags") else (),
    )


class TicketsStore:
    """Tickets per number, agents' slots, queues and portfolios (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # register_script: EVALSHA, loading the script again after a Redis restart.
        self._open = redis.register_script(_script(_OPEN))
        self._drain = redis.register_script(_script(_DRAIN))
        self._close = redis.register_script(_script(_CLOSE))
        self._to_agent = redis.register_script(_script(_TRANSFER_AGENT))
        self._to_queue = redis.register_script(_script(_TRANSFER_QUEUE))
        self._requeue_held = redis.register_script(_script(_REQUEUE_HELD))
        self._reroute = redis.register_script(_script(_REROUTE))
        self._expire = redis.register_script(_script(_EXPIRE))
        self._reply = redis.register_script(_script(_REPLY))
        self._tags = redis.register_script(_script(_TAGS))
        self._hashes = redis.register_script(_HASHES)
        # Service hours, for the business time of replies and closes (monitoring).
        self._numbers = NumbersStore(redis)

    # --- changes --------------------------------------------------------------------------

    async def open_or_attach(self, request: TicketRequest, *, now: datetime) -> Opened:
        """Open a ticket for the contact, or attach the message to the contact's active one,
        then route the number's queue (the new ticket waits behind older ones).

        Idempotent on (`phone_number_id`, `natural_key`): a redelivered message or a retried
        job gets the same ticket back with outcome "duplicate", and nothing is written.
        """
        pnid = request.phone_number_id
        raw = await self._open(
            keys=[
                keys.ticket_request(pnid, request.natural_key),
                keys.open_ticket(pnid, request.contact),
                keys.ticket_seq(pnid),
            ],
            args=[
                _ms(now),
                pnid,
                request.contact,
                request.wa_id or "",
                request.user_id or "",
                request.name or "",
                "",
                request.source,
                request.wamid or "",
                _ms(request.at),
                secrets.token_hex(ID_RANDOM_HEX // 2),
                keys.CLAIM_TTL_S,
                request.natural_key,
            ],
        )
        ticket_id, outcome, agent_id, position, mine = (_text(v) for v in raw)
        return Opened(
            ticket_id=ticket_id,
            outcome=outcome,  # type: ignore[arg-type]  # the script answers one of the three
            agent_id=agent_id or None,
            position=int(position),
            opened_by_request=mine == "1",
        )

    async def drain(self, phone_number_ids: list[str], *, now: datetime) -> list[Routed]:
        """Route the waiting tickets of these numbers to agents with free slots, oldest first
        across the numbers; the assignments made. Idempotent: with no free slot or no waiting
        ticket it changes nothing."""
        if not phone_number_ids:
            return []
        return _routed(await self._drain(args=[_ms(now), *phone_number_ids]))

    async def close(
        self,
        ticket_id: str,
        *,
        by: Literal["agent", "customer"],
        actor: str,
        now: datetime,
        detail: str | None = None,
    ) -> list[Routed]:
        """Close a ticket, free its agent's slot and let that agent pull the oldest waiting
        ticket of their numbers; the assignments that made.

        Idempotent: closing a closed ticket changes nothing (and returns []).

        Raises:
            NotFoundError: no such ticket.
        """
        for _ in range(STALE_TRIES):
            pnid, assigned = await self._redis.hmget(
                keys.ticket(ticket_id), ["phone_number_id", "first_assigned_at"]
            )
            config = await self._config(pnid)
            biz = business_ms(config, _time(_opt(assigned)), now)
            raw = await self._close(
                args=[_ms(now), ticket_id, by, actor, detail or "", _opt(assigned) or "", biz]
            )
            outcome = _text(raw[0])
            if outcome == "missing":
                raise NotFoundError(f"ticket {ticket_id} not found")
            if outcome != "stale":
                return _routed(raw[1:])
        raise _busy(ticket_id)

    async def transfer_to_agent(
        self, ticket_id: str, agent_id: str, *, actor: str, now: datetime
    ) -> list[Routed]:
        """Move a ticket to `agent_id`, who must be attached to its number, online and have a
        free slot. The previous holder's slot is freed (and may pull a waiting ticket).

        Raises:
            NotFoundError: no such ticket.
            ConflictError: `closed`, `same_agent`, `not_attached` or `agent_unavailable`.
        """
        raw = await self._to_agent(args=[_ms(now), ticket_id, agent_id, actor])
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        if outcome == "closed":
            raise ConflictError("closed", f"ticket {ticket_id} is closed")
        if outcome == "same":
            raise ConflictError("same_agent", f"{agent_id} already holds ticket {ticket_id}")
        if outcome == "not_attached":
            raise ConflictError(
                "not_attached", f"agent {agent_id} does not serve this ticket's number"
            )
        if outcome == "unavailable":
            status, load, slots = (_text(v) for v in raw[1:4])
            raise ConflictError(
                "agent_unavailable",
                f"agent {agent_id} cannot take it now (status {status or 'unknown'}, "
                f"{load} of {slots} slots in use)",
            )
        return _routed(raw[1:])

    async def transfer_to_queue(
        self, ticket_id: str, *, actor: str, now: datetime, exclude_for: timedelta
    ) -> list[Routed]:
        """Put an assigned ticket back in its number's queue at its original place, with
        status `transferred`; the agent who held it is not offered it again for `exclude_for`.
        Idempotent: a ticket already waiting stays as it is.

        Raises:
            NotFoundError: no such ticket.
            ConflictError: `closed`.
        """
        until = _ms(now + exclude_for)
        raw = await self._to_queue(args=[_ms(now), ticket_id, actor, until])
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        if outcome == "closed":
            raise ConflictError("closed", f"ticket {ticket_id} is closed")
        return _routed(raw[1:])

    async def record_reply(
        self, ticket_id: str, agent_id: str, message_id: str, text: str, *, now: datetime
    ) -> bool:
        """Record an agent's reply on the ticket they hold; True when it is the first reply
        (it sets `first_response_at`). The contact's portfolio owner becomes `agent_id`.

        Idempotent on `message_id`: recording it again raises `ConflictError("duplicate")`.

        Raises:
            NotFoundError: no such ticket.
            ConflictError: `closed`, `not_assigned` (the ticket waits in the queue),
                `served_by_another` (its message names the holder's id: the API replaces it
                with their name), `duplicate`.
        """
        marker = keys.ticket_reply(message_id)
        for _ in range(STALE_TRIES):
            pnid, assigned, awaiting = (
                _opt(v)
                for v in await self._redis.hmget(
                    keys.ticket(ticket_id), ["phone_number_id", "assigned_at", "awaiting_since"]
                )
            )
            config = await self._config(pnid)
            assigned_at, awaiting_at = _time(assigned), _time(awaiting)
            start = max(awaiting_at, assigned_at or awaiting_at) if awaiting_at else None
            raw = await self._reply(
                keys=[marker],
                args=[
                    _ms(now),
                    ticket_id,
                    agent_id,
                    message_id,
                    text,
                    keys.CLAIM_TTL_S,
                    assigned or "",
                    awaiting or "",
                    business_ms(config, assigned_at, now),
                    business_ms(config, start, now),
                ],
            )
            if _text(raw[0]) != "stale":
                break
        else:
            raise _busy(ticket_id)
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        if outcome == "closed":
            raise ConflictError("closed", f"ticket {ticket_id} is closed")
        if outcome == "not_assigned":
            raise ConflictError("not_assigned", f"ticket {ticket_id} is waiting for an agent")
        if outcome == "served_by_another":
            raise ConflictError("served_by_another", _text(raw[1]))
        if outcome == "duplicate":
            raise ConflictError("duplicate", f"message {message_id} was already sent")
        return _text(raw[1]) == "1"

    async def requeue_held(
        self, agent_id: str, ticket_ids: list[str], *, now: datetime
    ) -> list[str]:
        """Put back in their queues those of `ticket_ids` that `agent_id` holds while
        invisible, deleted, or no longer attached to the ticket's number (checked inside the
        script, so an agent who came back online in the meantime keeps them); the ids moved.
        With no ticket left, the agent leaves the holders' set (see `holders`)."""
        raw = await self._requeue_held(args=[_ms(now), agent_id, *ticket_ids])
        return [_text(v) for v in raw]

    async def reroute_unanswered(
        self,
        phone_number_id: str,
        *,
        assigned_before: datetime,
        now: datetime,
        exclude_for: timedelta,
    ) -> list[str]:
        """Route again the number's tickets assigned before `assigned_before` without a first
        reply; their agent is not offered them again for `exclude_for`. The ids moved (at
        most DRAIN_BATCH: call again while it returns that many)."""
        raw = await self._reroute(
            args=[_ms(now), phone_number_id, _ms(assigned_before), _ms(now + exclude_for)]
        )
        return [_text(v) for v in raw]

    async def expire_waiting(
        self, phone_number_id: str, *, idle_before: datetime, now: datetime
    ) -> list[str]:
        """Close the number's waiting tickets idle (no agent, no new message) since before
        `idle_before`: lost, or abandoned when an agent had had it. The ids closed (at most
        DRAIN_BATCH per call)."""
        candidates = [
            _text(i)
            for i in await self._redis.zrangebyscore(
                keys.tickets_idle(phone_number_id), "-inf", _ms(idle_before), 0, DRAIN_BATCH
            )
        ]
        given: dict[str, list[str | int]] = {}
        if candidates:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ticket_id in candidates:
                    pipe.hget(keys.ticket(ticket_id), "first_assigned_at")
                assigned = await pipe.execute()
            config = await self._config(phone_number_id)
            for ticket_id, value in zip(candidates, assigned, strict=True):
                start = _opt(value)
                if start is not None:
                    given[ticket_id] = [start, business_ms(config, _time(start), now)]
        raw = await self._expire(
            args=[_ms(now), phone_number_id, _ms(idle_before), json.dumps(given)]
        )
        return [_text(v) for v in raw]

    async def set_tags(
        self, ticket_id: str, tags: tuple[str, ...], *, actor: str, now: datetime
    ) -> bool:
        """Replace the ticket's tags (normalised by `bot.tickets.TicketTagsInput`), keeping
        the per-tag counts and the history's tag index in step; True when the set changed
        (then its history records it). Idempotent: the same set again changes nothing.

        Raises:
            NotFoundError: no such ticket.
        """
        raw = await self._tags(args=[_ms(now), ticket_id, actor, json.dumps(list(tags))])
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        return outcome == "changed"

    async def _config(self, phone_number_id: bytes | str | None) -> NumberConfig | None:
        if not phone_number_id:
            return None
        return await self._numbers.config(_text(phone_number_id))

    async def set_owner(self, phone_number_id: str, contact: str, agent_id: str | None) -> None:
        """Set (or with None, clear) the contact's portfolio owner on the number."""
        if agent_id is None:
            await self._redis.hdel(keys.portfolio(phone_number_id), contact)
        else:
            await self._redis.hset(keys.portfolio(phone_number_id), contact, agent_id)

    # --- reads ----------------------------------------------------------------------------

    async def owner(self, phone_number_id: str, contact: str) -> str | None:
        value = await self._redis.hget(keys.portfolio(phone_number_id), contact)
        return None if value is None else _text(value)

    async def get(self, ticket_id: str) -> Ticket | None:
        raw = await self._redis.hgetall(keys.ticket(ticket_id))
        if not raw or b"id" not in raw:
            return None
        return _ticket({_text(k): _text(v) for k, v in raw.items()})

    async def get_many(self, ticket_ids: list[str]) -> list[Ticket]:
        """The existing tickets among `ticket_ids`, in that order (one round trip, one
        command: a client spends more per command than Redis per hash)."""
        if not ticket_ids:
            return []
        flats = await self._hashes(keys=[keys.ticket(t) for t in ticket_ids])
        out = []
        for flat in flats:
            raw = {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
            if "id" in raw:
                out.append(_ticket(raw))
        return out

    async def open_for_contacts(
        self, pairs: list[tuple[str, str]]
    ) -> dict[tuple[str, str], Ticket]:
        """The active ticket of each (phone_number_id, contact key) that has one (two round
        trips whatever the number of pairs)."""
        if not pairs:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for pnid, key in pairs:
                pipe.get(keys.open_ticket(pnid, key))
            ids = await pipe.execute()
        found = {pair: _text(i) for pair, i in zip(pairs, ids, strict=True) if i is not None}
        tickets = {t.id: t for t in await self.get_many(list(found.values()))}
        return {pair: tickets[i] for pair, i in found.items() if i in tickets}

    async def messages(self, ticket_id: str) -> list[TicketMessage]:
        """The ticket's messages, in the order they joined it (inbound ones carry ids only:
        their content is on the contact's timeline)."""
        out = []
        for value in await self._redis.lrange(keys.ticket_messages(ticket_id), 0, -1):
            data = json.loads(value)
            out.append(
                TicketMessage(
                    id=data["id"],
                    direction="in" if data.get("d") == "in" else "out",
                    at=datetime.fromtimestamp(int(data["at"]) / 1000, tz=UTC),
                    agent_id=data.get("agent_id"),
                    text=data.get("text"),
                )
            )
        return out

    async def history(self, ticket_id: str) -> list[TicketEvent]:
        out = []
        for value in await self._redis.lrange(keys.ticket_history(ticket_id), 0, -1):
            data = json.loads(value)
            detail = data.get("detail") or None
            out.append(
                TicketEvent(
                    at=datetime.fromtimestamp(int(data["at"]) / 1000, tz=UTC),
                    type=data["type"],
                    agent_id=data.get("agent_id") or None,
                    by=data.get("by") or None,
                    detail=detail,
                    from_agent=data.get("from") or None,
                    to_agent=data.get("to") or None,
                )
            )
        return out

    async def queue(self, phone_number_id: str, limit: int = LIST_MAX) -> list[str]:
        """The number's waiting ticket ids, next first."""
        ids = await self._redis.zrange(keys.ticket_queue(phone_number_id), 0, limit - 1)
        return [_text(i) for i in ids]

    async def position(self, ticket_id: str, phone_number_id: str) -> int | None:
        """The ticket's place in its queue (1 = next), None when it is not waiting."""
        rank = await self._redis.zrank(keys.ticket_queue(phone_number_id), ticket_id)
        return None if rank is None else int(rank) + 1

    async def held_by(self, agent_id: str) -> list[Held]:
        """The tickets occupying the agent's slots, with their numbers."""
        ids = sorted(_text(i) for i in await self._redis.smembers(keys.agent_tickets(agent_id)))
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket_id in ids:
                pipe.hget(keys.ticket(ticket_id), "phone_number_id")
            numbers = await pipe.execute()
        return [Held(t, _text(n)) for t, n in zip(ids, numbers, strict=True) if n is not None]

    async def holders(self) -> list[str]:
        """Agents who may hold tickets (a superset: `requeue_held` prunes those who hold none),
        deleted agents included."""
        return sorted(_text(m) for m in await self._redis.smembers(keys.TICKET_HOLDERS))

    async def load(self, agent_id: str) -> int:
        """How many of the agent's slots are taken."""
        return int(await self._redis.scard(keys.agent_tickets(agent_id)))

    async def for_number(
        self, phone_number_id: str, status: TicketStatus | None = None, limit: int = LIST_MAX
    ) -> list[Ticket]:
        """The number's tickets, newest first (waiting ones in queue order), at most `limit`.

        Waiting and transferred tickets come from the queue, open ones from the active index,
        the rest from the number's index of every ticket (kept TICKET_TTL_S).
        """
        if status in ("waiting", "transferred"):
            ids = await self.queue(phone_number_id, LIST_MAX)
            found = await self.get_many(ids)
            return [t for t in found if t.status == status][:limit]
        index = keys.tickets_active if status == "open" else keys.tickets_all
        out: list[Ticket] = []
        start = 0
        page = max(limit, 100)
        while len(out) < limit:
            ids = [
                _text(i)
                for i in await self._redis.zrevrange(
                    index(phone_number_id), start, start + page - 1
                )
            ]
            if not ids:
                break
            start += page
            out.extend(t for t in await self.get_many(ids) if status is None or t.status == status)
        return out[:limit]

    async def search(
        self,
        phone_number_id: str,
        *,
        since: datetime,
        until: datetime,
        agent_id: str | None = None,
        status: TicketStatus | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> SearchResult:
        """The number's tickets created in [since, until), newest first, filtered: `agent_id`
        held them at some time, `status` is their status now, they carry `tag`.

        Reads the narrowest index the filters allow (tag, agent, final status, active, all)
        and checks the other filters ticket by ticket, examining at most SEARCH_SCAN_MAX
        tickets per call: a page may come back short with a `next_cursor` to go on from.

        Raises:
            ValueError: a malformed `cursor` (see `bot.history.valid_cursor`).
        """
        if tag is not None:
            index = keys.tickets_by_tag(phone_number_id, tag)
        elif agent_id is not None:
            index = keys.tickets_by_agent(phone_number_id, agent_id)
        elif status in _FINAL:
            index = keys.tickets_by_outcome(phone_number_id, status)
        elif status is not None:
            index = keys.tickets_active(phone_number_id)
        else:
            index = keys.tickets_all(phone_number_id)
        low, high = _ms(since), _ms(until) - 1
        position: tuple[int, str] | None = None
        if cursor is not None:
            match = CURSOR_RE.fullmatch(cursor)
            if match is None:
                raise ValueError("malformed cursor")
            position = (int(match[1]), match[2])
        items: list[Ticket] = []
        examined = 0
        exhausted = False
        while len(items) < limit and examined < SEARCH_SCAN_MAX:
            want = min(max(limit, 100), SEARCH_SCAN_MAX - examined)
            chunk = await self._entries_below(index, low, high, position, want)
            found = {t.id: t for t in await self.get_many([i for _, i in chunk])}
            held = await self._also_held(phone_number_id, agent_id if tag else None, chunk)
            for entry in chunk:
                examined += 1
                position = entry
                ticket = found.get(entry[1])
                if ticket is None or (status is not None and ticket.status != status):
                    continue
                if (tag is not None and tag not in ticket.tags) or entry[1] not in held:
                    continue
                items.append(ticket)
                if len(items) == limit:
                    break
            if len(chunk) < want and position == (chunk[-1] if chunk else position):
                exhausted = True
                break
        next_cursor = None if exhausted or position is None else f"{position[0]}:{position[1]}"
        return SearchResult(items=items, next_cursor=next_cursor)

    async def _entries_below(
        self, index: str, low: int, high: int, position: tuple[int, str] | None, n: int
    ) -> list[tuple[int, str]]:
        """Up to `n` (score, id) of `index` in [low, high], newest first, strictly after
        `position` in that order (equal scores come in reverse id order)."""
        top = high if position is None else min(high, position[0])
        out: list[tuple[int, str]] = []
        skip = 0
        while len(out) < n and top >= low:
            pairs = await self._redis.zrevrangebyscore(
                index, top, low, start=skip, num=n, withscores=True
            )
            for member, score in pairs:
                entry = (int(score), _text(member))
                if position is None or entry[0] < position[0] or entry[1] < position[1]:
                    out.append(entry)
            if len(pairs) < n:
                break
            skip += n
        return out[:n]

    async def _also_held(
        self, phone_number_id: str, agent_id: str | None, entries: list[tuple[int, str]]
    ) -> set[str]:
        """The ids of `entries` that `agent_id` held (all of them when no agent is asked)."""
        ids = [i for _, i in entries]
        if agent_id is None or not ids:
            return set(ids)
        scores = await self._redis.zmscore(keys.tickets_by_agent(phone_number_id, agent_id), ids)
        return {i for i, score in zip(ids, scores, strict=True) if score is not None}
