-- The steps before a send, atomically (STYLE.md 2.3: check done -> claim): done already? ->
-- join the contact's order (NX keeps a first place) -> first in it (heads whose outcome is
-- known, or that are stale, are dropped) -> take the in-progress claim. One round trip where
-- these steps took six, and no window between the done check and the claim.
-- KEYS: done-marker, claim, order. ARGV: natural key, enqueued ms, order TTL s, now ms,
-- stale ms, claim TTL s, done-marker prefix. Returns {'duplicate'}, {'wait'}, {'busy', pttl}
-- or {'go'}.
if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[3], ARGV[3])
local now, stale = tonumber(ARGV[4]), tonumber(ARGV[5])
local first = false
for _ = 1, 10 do
  local head = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if #head == 0 or head[1] == ARGV[1] then
    first = true
    break
  end
  if now - tonumber(head[2]) > stale or redis.call('EXISTS', ARGV[7] .. head[1]) == 1 then
    redis.call('ZREM', KEYS[3], head[1])
  else
    break
  end
end
if not first then return {'wait'} end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then
  return {'busy', redis.call('PTTL', KEYS[2])}
end
return {'go'}
