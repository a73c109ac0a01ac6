-- Take one slot of a limit. KEYS: the limit. ARGV: interval ms, burst.
-- Returns 0 when taken, else the milliseconds to wait for one.
--@include gcra
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat, wait = gcra_state(KEYS[1], interval, burst)
if wait > 0 then return wait end
gcra_put(KEYS[1], tat + interval)
return 0
