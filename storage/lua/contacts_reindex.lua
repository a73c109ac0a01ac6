-- The index entries of one contact from its stored name and phone (a rebuild); a contact
-- changed meanwhile is left to the write that changed it.
-- KEYS: contact, search index. ARGV: contact key, name, phone, name tokens, phone tokens.
-- Returns 1, or 0 when no such contact.
--@include contact_index
local h, ix = KEYS[1], KEYS[2]
local key, name, phone, name_tokens, phone_tokens = unpack(ARGV)
if redis.call('EXISTS', h) == 0 then return 0 end
reindex(h, ix, key, name, name_tokens)
index_phone(h, ix, key, phone, phone_tokens)
return 1
