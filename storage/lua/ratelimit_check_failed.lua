-- After a credential check that failed: keep its reserved slot, and mark a recent failure.
-- KEYS and ARGV[1..4] as ratelimit_check_begin; ARGV[5]: 1 when the check ran past the global
-- budget, which costs the client its whole burst (and counts as that many failures).
-- Returns the client's wait ms after it (0: it may try again now).
--@include gcra
local ci, cb = tonumber(ARGV[1]), tonumber(ARGV[2])
local ctat = gcra_state(KEYS[1], ci, cb)
-- The reservation is in ctat already; should the check have outlasted its slot (a slow
-- lookup), it is charged one interval from now.
if ctat < now + ci then ctat = now + ci end
local charge = ci
if ARGV[5] == '1' then
  ctat = ctat + ci * (cb - 1)
  charge = ci * cb
end
gcra_put(KEYS[1], ctat)
gcra_put(KEYS[2], gcra_state(KEYS[2], ci, cb) + charge)
return math.max(0, ctat - ci * (cb - 1) - now)
