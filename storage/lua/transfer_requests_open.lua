-- Make a transfer request on a ticket (storage/transfer_requests.py `open`), unless one is
-- pending; recorded in the ticket's history in the same step.
-- KEYS[1] the request HASH (keys.transfer_request), KEYS[2] the ticket HASH (keys.ticket),
-- KEYS[3] the ticket's history LIST (keys.ticket_history)
-- ARGV[1] now (epoch ms), ARGV[2] request id, ARGV[3] requester, ARGV[4] holder (as the
-- caller read the ticket), ARGV[5] expires_at (epoch ms), ARGV[6] TTL in seconds,
-- ARGV[7] phone_number_id
-- Returns {'new'}, {'pending', id of the pending request} or {'changed'} (the ticket is no
-- longer open with that holder).
local req, now = KEYS[1], tonumber(ARGV[1])
local t = redis.call('HMGET', KEYS[2], 'status', 'agent_id')
if t[1] ~= 'open' or t[2] ~= ARGV[4] then return {'changed'} end
local old = redis.call('HMGET', req, 'id', 'status', 'expires_at', 'requester', 'holder')
if old[2] == 'pending' then
  if tonumber(old[3]) > now then return {'pending', old[1]} end
  -- Nobody answered in time: say so in the history before the new request replaces it.
  redis.call('RPUSH', KEYS[3], cjson.encode({at = now, type = 'transfer_expired',
    agent_id = old[4], by = 'system', from = old[5], to = old[4], detail = old[1]}))
end
redis.call('DEL', req)
redis.call('HSET', req, 'id', ARGV[2], 'requester', ARGV[3], 'holder', ARGV[4],
           'status', 'pending', 'created_at', ARGV[1], 'expires_at', ARGV[5],
           'phone_number_id', ARGV[7])
redis.call('EXPIRE', req, tonumber(ARGV[6]))
redis.call('RPUSH', KEYS[3], cjson.encode({at = now, type = 'transfer_requested',
  agent_id = ARGV[3], by = ARGV[3], from = ARGV[4], to = ARGV[3], detail = ARGV[2]}))
return {'new'}
