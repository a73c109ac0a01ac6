-- After a credential check that passed: give its reserved slots back (a success never counts).
-- KEYS and ARGV[1..4] as ratelimit_check_begin; ARGV[5]: 1 when it held a global slot.
-- Other checks may have moved the limits meanwhile: GCRA charges add up, so subtracting one
-- interval undoes exactly this one (never below now: a limit at rest is no key).
--@include gcra
local function release(key, interval)
  local tat = tonumber(redis.call('GET', key))
  if tat then gcra_put(key, tat - interval) end
end
release(KEYS[1], tonumber(ARGV[1]))
if ARGV[5] == '1' then release(KEYS[3], tonumber(ARGV[3])) end
return 0
