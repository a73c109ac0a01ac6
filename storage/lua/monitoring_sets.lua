-- Read-only: the members of every set of KEYS (one command instead of one per agent).
-- Returns one list of members per key, in KEYS order.
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('SMEMBERS', key) end
return out
