-- Before a credential check: refuse, or reserve the slot the check would use.
-- KEYS: the client's limit (reserved and failed checks), the client's failures only (a key
-- that exists while a failure of theirs has not decayed: a "recent failure"), the global limit.
-- ARGV: client interval ms, client burst, global interval ms, global burst, reserve (1) or
-- only look (0).
-- Returns {wait ms (0: the check may run), 1 when a global slot was reserved, 1 when the client
-- failed recently}.
--@include gcra
local ci, cb = tonumber(ARGV[1]), tonumber(ARGV[2])
local gi, gb = tonumber(ARGV[3]), tonumber(ARGV[4])
local ctat, client_wait = gcra_state(KEYS[1], ci, cb)
-- Refused with no recent failure: the budget is held by checks in flight (a burst of right
-- tokens, say 50 desks of one office reconnecting), which give their slots back in a moment.
if client_wait > 0 then return {client_wait, 0, redis.call('EXISTS', KEYS[2])} end
local gtat, global_wait = gcra_state(KEYS[3], gi, gb)
-- The global budget spent: a client that failed recently waits; one that did not is checked
-- all the same (without a global slot), so an attacker cannot lock everybody out.
if global_wait > 0 and redis.call('EXISTS', KEYS[2]) == 1 then return {global_wait, 0, 1} end
if ARGV[5] ~= '1' then return {0, 0} end
gcra_put(KEYS[1], ctat + ci)
if global_wait > 0 then return {0, 0} end
gcra_put(KEYS[3], gtat + gi)
return {0, 1}
