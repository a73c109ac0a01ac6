-- The record of a send Meta accepted. Keeps any state statuses already reached (they may
-- arrive first); `accepted_at` keeps its first value, so a repeated call changes nothing.
-- KEYS: the message. ARGV: phone_number_id, wa_id, kind, natural key, body type, accepted ms,
-- TTL s, ticket id ('' when none). Returns the state.
local h = KEYS[1]
redis.call('HSET', h, 'recorded', '1', 'phone_number_id', ARGV[1], 'wa_id', ARGV[2],
  'kind', ARGV[3], 'natural_key', ARGV[4], 'body_type', ARGV[5])
if ARGV[8] ~= nil and ARGV[8] ~= '' then redis.call('HSET', h, 'ticket_id', ARGV[8]) end
redis.call('HSETNX', h, 'accepted_at', ARGV[6])
redis.call('HSETNX', h, 'state', 'accepted')
redis.call('EXPIRE', h, ARGV[7])
return redis.call('HGET', h, 'state')
