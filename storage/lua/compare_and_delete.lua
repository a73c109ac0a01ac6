-- Delete a key only while it still holds the caller's token, so a holder whose claim expired
-- cannot free a claim someone else took meanwhile (contact locks, active-message claims).
-- KEYS: the key. ARGV: the token. Returns 1 when deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
