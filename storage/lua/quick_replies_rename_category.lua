-- Rename a quick reply category, keeping the names index in step.
-- KEYS: the owner's categories, their names index. ARGV: id, natural key, name, updated at.
-- Returns {'ok', doc}, {'missing'} or {'taken'} (another category has the name).
local cats, names = KEYS[1], KEYS[2]
local id, nk, name, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('HGET', cats, id)
if not cur then return {'missing'} end
local other = redis.call('HGET', names, nk)
if other and other ~= id then return {'taken'} end
local data = cjson.decode(cur)
if data.name == name then return {'ok', cur} end
redis.call('HDEL', names, data.key)
redis.call('HSET', names, nk, id)
data.name, data.key, data.updated_at = name, nk, at
local doc = cjson.encode(data)
redis.call('HSET', cats, id, doc)
return {'ok', doc}
