-- Add a reply to a category unless its title is taken (the same title with the same text answers
-- the existing reply).
-- KEYS: the owner's categories, the category's replies, their titles index. ARGV: category id,
-- id, natural key, document, text, max. Returns {'created', doc}, {'exists', doc}, {'missing'}
-- (no category), {'taken'}, {'retry'} (id taken) or {'full'}.
local cats, replies, titles = KEYS[1], KEYS[2], KEYS[3]
local cid, id, nk, doc, text, max = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
if redis.call('HEXISTS', cats, cid) == 0 then return {'missing'} end
local existing = redis.call('HGET', titles, nk)
if existing then
  local cur = redis.call('HGET', replies, existing)
  if cjson.decode(cur).text == text then return {'exists', cur} end
  return {'taken'}
end
if redis.call('HEXISTS', replies, id) == 1 then return {'retry'} end
if redis.call('HLEN', replies) >= max then return {'full'} end
redis.call('HSET', replies, id, doc)
redis.call('HSET', titles, nk, id)
return {'created', doc}
