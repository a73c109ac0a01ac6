-- Apply one status webhook to an outgoing message: the state only moves forward, `failed` is
-- final and only before delivery, each status keeps its earliest time (storage/outgoing.py).
-- A status for a message not recorded yet creates a pending record.
-- KEYS: the message. ARGV: status, time ms, errors JSON ('' none), recorded TTL s, pending TTL s.
-- Returns 'applied', 'unchanged' or 'pending'.
local h = KEYS[1]
local status, ts, errors = ARGV[1], ARGV[2], ARGV[3]
local recorded_ttl, pending_ttl = ARGV[4], ARGV[5]
local rank = {accepted = 0, sent = 1, delivered = 2, read = 3, played = 4}
local existed = redis.call('EXISTS', h) == 1
local state = redis.call('HGET', h, 'state')
local moved = false
local function earliest(field)
  local cur = redis.call('HGET', h, field)
  if not cur or tonumber(ts) < tonumber(cur) then redis.call('HSET', h, field, ts) end
end
if state ~= 'failed' then
  local current = -1
  if state then current = rank[state] or -1 end
  if status == 'failed' then
    if current < rank['delivered'] then
      redis.call('HSET', h, 'state', 'failed', 'failed_at', ts)
      if errors ~= '' then redis.call('HSET', h, 'errors', errors) end
      moved = true
    end
  else
    earliest(status .. '_at')
    if status == 'read' or status == 'played' then earliest('delivered_at') end
    if rank[status] > current then
      redis.call('HSET', h, 'state', status)
      moved = true
    end
  end
end
local recorded = redis.call('HGET', h, 'recorded') == '1'
if recorded then
  redis.call('EXPIRE', h, recorded_ttl)
elseif not existed then
  redis.call('EXPIRE', h, pending_ttl)
end
if not recorded then return 'pending' end
if moved then return 'applied' end
return 'unchanged'
