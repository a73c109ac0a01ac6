-- One CSV row onto a contact, atomically: known fields given in the file are set, extra
-- columns set as `x:<column>`, `phone`/`wa_id`/`first_seen` only filled when absent. A new
-- contact enters the recency index with score 0 (it never interacted: it lists last) and no
-- `last_inbound_at`, so an import never opens the 24-hour window. Applying the same row again
-- changes nothing.
-- KEYS: contact, recency index, search index. ARGV: contact key, now ms, phone, wa_id, name,
-- email, city, document, name tokens, phone tokens, folded email, city and document, then
-- column, value pairs of the extra columns. Returns {existed, changed}.
--@include contact_index
local h, recent, ix = KEYS[1], KEYS[2], KEYS[3]
local key, now_ms, phone, wa_id, name, email, city, document, name_tokens, phone_tokens =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local existed = redis.call('EXISTS', h)
local changed = 0
local function set(field, value)
  if value == '' then return end
  if redis.call('HGET', h, field) ~= value then
    redis.call('HSET', h, field, value)
    changed = 1
  end
end
local function fill(field, value)
  if value ~= '' and redis.call('HSETNX', h, field, value) == 1 then changed = 1 end
end
fill('phone', phone)
fill('wa_id', wa_id)
fill('first_seen', now_ms)
set('name', name)
-- `f:<field>`: the folded value the listing filters search (bot.contacts.fold).
local function set_folded(field, value, folded)
  set(field, value)
  if value ~= '' then redis.call('HSET', h, 'f:' .. field, folded) end
end
set_folded('email', email, ARGV[11])
set_folded('city', city, ARGV[12])
set_folded('document', document, ARGV[13])
for i = 14, #ARGV, 2 do set('x:' .. ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', recent, 'NX', 0, key)
reindex(h, ix, key, name, name_tokens)
index_phone(h, ix, key, phone, phone_tokens)
return {existed, changed}
