-- Keeps the search index (keys.contact_index) in step with the contact hash `h`, for the values
-- the calling script wrote (`incoming` equals what is stored now; a stored value this call did
-- not write was indexed by the call that wrote it). Tokens come from bot.contacts.
-- - reindex: the name's members become `tokens`, replacing the previous ones, which the hash
--   keeps in `ixn` (a rename must remove exactly them).
-- - index_phone: a phone never changes once set (for a number, the contact key is the number),
--   so its members are only added; adding them again is a no-op.
local function reindex(h, ix, key, incoming, tokens)
  if incoming == '' or redis.call('HGET', h, 'name') ~= incoming then return end
  local old = redis.call('HGET', h, 'ixn') or ''
  if old == tokens then return end
  for t in string.gmatch(old, '%S+') do redis.call('ZREM', ix, t .. '\0' .. key) end
  for t in string.gmatch(tokens, '%S+') do redis.call('ZADD', ix, 0, t .. '\0' .. key) end
  if tokens == '' then redis.call('HDEL', h, 'ixn') else redis.call('HSET', h, 'ixn', tokens) end
end
local function index_phone(h, ix, key, incoming, tokens)
  if incoming == '' or redis.call('HGET', h, 'phone') ~= incoming then return end
  for t in string.gmatch(tokens, '%S+') do redis.call('ZADD', ix, 0, t .. '\0' .. key) end
end
