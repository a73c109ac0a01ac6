-- The monitoring aggregates' helpers (storage/monitoring.py reads what they keep): the ticket
-- scripts run them in the same atomic step as each change, so the figures never disagree with
-- the tickets they count. Goes before the ticket scripts' prelude, which calls these helpers;
-- `m_now` is their ARGV[1], the change's time in epoch ms. Lua numbers are doubles: epoch ms and
-- sums of durations stay far below 2^53, and Redis prints them as integers.
local M_DAY_PRE, M_DAY_MID = '@MONITOR_DAY_PRE@', '@MONITOR_DAY_MID@'
local M_Q, M_SVC, M_TAGS = '@MONITOR_WAITING@', '@MONITOR_IN_SERVICE@', '@MONITOR_TAGS@'
local IX_AG_PRE, IX_AG_MID = '@TICKETS_BY_AGENT_PRE@', '@TICKETS_BY_AGENT_MID@'
local IX_TAG_PRE, IX_TAG_MID = '@TICKETS_BY_TAG_PRE@', '@TICKETS_BY_TAG_MID@'
local IX_DONE_PRE, IX_DONE_MID = '@TICKETS_BY_OUTCOME_PRE@', '@TICKETS_BY_OUTCOME_MID@'
local M_BUCKET, M_PER_DAY = @MONITOR_BUCKET_MS@, @MONITOR_BUCKETS_PER_DAY@
local M_TTL, IX_TTL = @MONITOR_DAY_TTL_S@, @TICKET_TTL_S@
local m_now = tonumber(ARGV[1])

local function m_field(pnid, at, metric)
  local b = math.floor(at / M_BUCKET)
  return M_DAY_PRE .. pnid .. M_DAY_MID .. string.format('%d', math.floor(b / M_PER_DAY)),
         metric .. ':' .. string.format('%d', b)
end

-- Add `by` to `metric` in the bucket of instant `at` (epoch ms).
local function m_add(pnid, at, metric, by)
  if by == 0 then return end
  local k, f = m_field(pnid, at, metric)
  redis.call('HINCRBY', k, f, string.format('%d', by))
  redis.call('EXPIRE', k, M_TTL)
end

-- Keep the largest `value` of `metric` in the bucket of `at`.
local function m_max(pnid, at, metric, value)
  local k, f = m_field(pnid, at, metric)
  local old = tonumber(redis.call('HGET', k, f) or '-1')
  if value > old then redis.call('HSET', k, f, string.format('%d', value)) end
  redis.call('EXPIRE', k, M_TTL)
end

-- A ticket created at `created` went from status `old` (nil: it is new) to `new`.
local function m_status(pnid, created, old, new)
  if old == new then return end
  if old and old ~= '' then m_add(pnid, created, 's:' .. old, -1) end
  m_add(pnid, created, 's:' .. new, 1)
end

-- A history index entry: trimmed to its retention and expiring with it.
local function ix_add(key, score, id)
  redis.call('ZADD', key, score, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf',
             '(' .. string.format('%d', m_now - IX_TTL * 1000))
  redis.call('EXPIRE', key, IX_TTL)
end

local function ix_agent(pnid, a) return IX_AG_PRE .. pnid .. IX_AG_MID .. a end
local function ix_outcome(pnid, o) return IX_DONE_PRE .. pnid .. IX_DONE_MID .. o end

local function m_tags_of(raw)
  if not raw or raw == '' then return {} end
  return cjson.decode(raw)
end

-- Add (by = 1) or remove (by = -1) `tag` on ticket `id`; `active`: the ticket is not closed.
local function m_tag(pnid, id, created, tag, by, active)
  m_add(pnid, created, 't:' .. tag, by)
  if active then
    if redis.call('HINCRBY', M_TAGS .. pnid, tag, by) <= 0 then
      redis.call('HDEL', M_TAGS .. pnid, tag)
    end
  end
  local key = IX_TAG_PRE .. pnid .. IX_TAG_MID .. tag
  if by > 0 then ix_add(key, created, id) else redis.call('ZREM', key, id) end
end

-- A ticket with these tags closed: it no longer counts as active for them.
local function m_tags_closed(pnid, raw)
  for _, tag in ipairs(m_tags_of(raw)) do
    if redis.call('HINCRBY', M_TAGS .. pnid, tag, -1) <= 0 then
      redis.call('HDEL', M_TAGS .. pnid, tag)
    end
  end
end
