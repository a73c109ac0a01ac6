-- Answer a pending transfer request (storage/transfer_requests.py `answer`); recorded in the
-- ticket's history in the same step.
-- KEYS[1] the request HASH (keys.transfer_request), KEYS[2] the ticket's history LIST
-- ARGV[1] now (epoch ms), ARGV[2] request id, ARGV[3] 'accepted' or 'declined',
-- ARGV[4] who answers, ARGV[5] TTL in seconds kept after the answer
-- Returns {'ok'}, {'missing'} (no such request), {'answered', its status} (answered before)
-- or {'expired'} (unanswered past expires_at: now recorded as expired).
local req, now = KEYS[1], tonumber(ARGV[1])
local r = redis.call('HMGET', req, 'id', 'status', 'expires_at', 'requester', 'holder')
if r[1] ~= ARGV[2] then return {'missing'} end
if r[2] ~= 'pending' then return {'answered', r[2]} end
local status, by, kind = ARGV[3], ARGV[4], 'transfer_' .. ARGV[3]
local outcome = 'ok'
if tonumber(r[3]) <= now then
  status, by, kind, outcome = 'expired', 'system', 'transfer_expired', 'expired'
end
redis.call('HSET', req, 'status', status, 'answered_by', outcome == 'ok' and by or '',
           'answered_at', ARGV[1])
redis.call('EXPIRE', req, tonumber(ARGV[5]))
redis.call('RPUSH', KEYS[2], cjson.encode({at = now, type = kind, agent_id = r[4], by = by,
  from = r[5], to = r[4], detail = r[1]}))
return {outcome}
