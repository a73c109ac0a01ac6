-- Close as lost (or abandoned, if it was ever assigned) the waiting tickets idle since before
-- `cutoff` (at most BATCH). ARGV: now, pnid, cutoff, JSON {id: [first_assigned_at, business ms
-- to now]} for the tickets an agent had (read before: a ticket assigned since is left for the
-- next sweep). Returns the ids closed.
--@include tickets
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
