-- Set a reply's title and text, keeping the titles index in step.
-- KEYS: the category's replies, their titles index. ARGV: id, natural key, title, text, updated
-- at. Returns {'ok', doc}, {'missing'} or {'taken'} (another reply has the title).
local replies, titles = KEYS[1], KEYS[2]
local id, nk, title, text, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local cur = redis.call('HGET', replies, id)
if not cur then return {'missing'} end
local other = redis.call('HGET', titles, nk)
if other and other ~= id then return {'taken'} end
local data = cjson.decode(cur)
if data.title == title and data.text == text then return {'ok', cur} end
redis.call('HDEL', titles, data.key)
redis.call('HSET', titles, nk, id)
data.title, data.text, data.key, data.updated_at = title, text, nk, at
local doc = cjson.encode(data)
redis.call('HSET', replies, id, doc)
return {'ok', doc}
