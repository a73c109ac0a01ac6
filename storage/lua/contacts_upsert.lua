-- A contact from one inbound message: one round trip, atomic, idempotent. Identity fields (wa_id,
-- user_id, phone, name) follow the newest message applied so far (`seen_at`), so a late-processed
-- older message only fills gaps and never reverts a name; `last_inbound_at` and
-- `last_interaction_at` only move forward; `first_seen` only moves back. Applying the same
-- message again therefore writes the values that are already there.
-- KEYS: contact, recency index, user-id index, search index. ARGV: contact key, message ms, name,
-- wa_id, user_id, phone, opens window ('1'/'0'), name tokens, phone tokens. Returns HGETALL.
--@include contact_index
local h, recent, uids, ix = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local key, ts_s, name, wa_id, user_id, phone, opens, name_tokens, phone_tokens = unpack(ARGV)
local ts = tonumber(ts_s)
local function num(field)
  local v = redis.call('HGET', h, field)
  if v then return tonumber(v) end
  return nil
end
local first = num('first_seen')
if not first or ts < first then redis.call('HSET', h, 'first_seen', ts_s) end
local seen = num('seen_at')
local newest = (not seen) or ts >= seen
if newest then redis.call('HSET', h, 'seen_at', ts_s) end
local function put(field, value)
  if value == '' then return end
  if newest then redis.call('HSET', h, field, value) else redis.call('HSETNX', h, field, value) end
end
put('wa_id', wa_id)
put('phone', phone)
put('user_id', user_id)
put('name', name)
reindex(h, ix, key, name, name_tokens)
index_phone(h, ix, key, phone, phone_tokens)
if opens == '1' then
  local last_in = num('last_inbound_at')
  if not last_in or ts > last_in then redis.call('HSET', h, 'last_inbound_at', ts_s) end
  local last_ia = num('last_interaction_at')
  if not last_ia or ts > last_ia then redis.call('HSET', h, 'last_interaction_at', ts_s) end
end
redis.call('ZADD', recent, num('last_interaction_at') or num('first_seen'), key)
if user_id ~= '' then redis.call('HSET', uids, user_id, key) end
return redis.call('HGETALL', h)
