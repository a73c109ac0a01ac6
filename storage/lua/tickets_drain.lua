-- Route the waiting tickets of the numbers in ARGV, oldest first across them.
-- ARGV: now, pnids... Returns ticket id, agent id, ...
--@include tickets
local pnids = {}
for i = 2, #ARGV do pnids[#pnids + 1] = ARGV[i] end
return drain(pnids)
