-- One page of a filtered contact listing, walked next to the data: the recency index from a
-- cursor (`score`, `skip`: see bot.contacts.Cursor) down to `low`, at most `budget` contacts,
-- keeping those whose folded fields (`f:email`, ...) contain every needle and, with a period,
-- that interacted. Stops before the (limit+1)-th match.
-- KEYS: recency index. ARGV: contact key prefix, cursor score ('' from the top), cursor skip,
-- low, budget, limit, interacted ('1'/'0'), then field, needle pairs.
-- Returns {cursor score, cursor skip, end, key, key, ...}; `end` is 1 when nothing is left after
-- the walk; the cursor is '' when the walk examined nothing.
local recent = KEYS[1]
local prefix, score_s, skip_s, low, budget, limit, interacted =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local high, skip, at, taken = '+inf', 0, nil, 0
if score_s ~= '' then
  high, skip = score_s, tonumber(skip_s)
  at, taken = tonumber(score_s), skip
end
local members = redis.call('ZREVRANGEBYSCORE', recent, high, low,
                           'WITHSCORES', 'LIMIT', skip, budget)
local found = {}
local function cursor(done)
  local out = {at and string.format('%d', at) or '', taken, done}
  for _, k in ipairs(found) do out[#out + 1] = k end
  return out
end
for i = 1, #members, 2 do
  local key, score = members[i], tonumber(members[i + 1])
  local h = prefix .. key
  local ok = interacted ~= '1' or redis.call('HEXISTS', h, 'last_interaction_at') == 1
  local j = 8
  while ok and j < #ARGV do
    local value = redis.call('HGET', h, ARGV[j])
    ok = value and string.find(value, ARGV[j + 1], 1, true) ~= nil
    j = j + 2
  end
  if ok then
    if #found == limit then return cursor(0) end
    found[#found + 1] = key
  end
  if at == score then taken = taken + 1 else at, taken = score, 1 end
end
return cursor(#members < 2 * budget and 1 or 0)
