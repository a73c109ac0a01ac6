-- One number's contact search, computed next to the data (one round trip, no candidate list
-- crosses the network): the prefix ranges of the index; for a phone query their union; for a
-- name query the smallest complete range, each candidate checked against the other words through
-- the tokens its contact hash keeps (`ixn`); then the candidates' recency scores, and the first
-- `limit` by score descending, key ascending.
-- KEYS: the number's search index, its recency index. ARGV: the contact key prefix, the query
-- kind ('phone' or 'name'), cap (members read per range), limit, then the query's prefixes.
-- Returns {truncated, matched, key, score, key, score, ...}; truncated (1) when a range used was
-- cut at `cap`.
local ix, recent = KEYS[1], KEYS[2]
local contact_prefix, kind, cap, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefixes = {}
for i = 5, #ARGV do prefixes[#prefixes + 1] = ARGV[i] end
local function range(prefix, most)
  local members = redis.call('ZRANGEBYLEX', ix, '[' .. prefix, '[' .. prefix .. '\255',
                             'LIMIT', 0, most)
  local out = {}
  for _, m in ipairs(members) do
    out[#out + 1] = string.sub(m, string.find(m, '\0', 1, true) + 1)
  end
  return out, #members >= most
end
local function has_words(key)
  local tokens = redis.call('HGET', contact_prefix .. key, 'ixn') or ''
  for _, p in ipairs(prefixes) do
    local found = false
    for t in string.gmatch(tokens, '%S+') do
      if string.sub(t, 1, #p) == p then found = true break end
    end
    if not found then return false end
  end
  return true
end
local candidates, truncated = {}, false
if kind == 'phone' then
  -- A phone query has a prefix per spelling (up to a couple of hundred for a number typed
  -- without its area code); together they read at most `cap` members.
  local seen = {}
  for _, p in ipairs(prefixes) do
    if #candidates >= cap then truncated = true break end
    local found, cut = range(p, cap - #candidates)
    truncated = truncated or cut
    for _, k in ipairs(found) do
      if not seen[k] then seen[k] = true candidates[#candidates + 1] = k end
    end
  end
else
  local best, best_cut = nil, true
  for _, p in ipairs(prefixes) do
    local found, cut = range(p, cap)
    if best == nil or (best_cut and not cut) or (best_cut == cut and #found < #best) then
      best, best_cut = found, cut
    end
  end
  truncated = best_cut
  if #prefixes == 1 then
    candidates = best
  else
    for _, k in ipairs(best) do
      if has_words(k) then candidates[#candidates + 1] = k end
    end
  end
end
local scored = {}
for _, k in ipairs(candidates) do
  scored[#scored + 1] = {tonumber(redis.call('ZSCORE', recent, k) or '0'), k}
end
table.sort(scored, function(a, b)
  if a[1] ~= b[1] then return a[1] > b[1] end
  return a[2] < b[2]
end)
local out = {truncated and 1 or 0, #scored}
for i = 1, math.min(limit, #scored) do
  out[#out + 1] = scored[i][2]
  out[#out + 1] = string.format('%d', scored[i][1])
end
return out
