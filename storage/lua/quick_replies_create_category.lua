-- Create a quick reply category unless its name is taken (then answer the existing one).
-- KEYS: the owner's categories, their names index. ARGV: id, natural key, document, max.
-- Returns {'created', doc}, {'exists', doc}, {'retry'} (id taken) or {'full'}.
local cats, names = KEYS[1], KEYS[2]
local id, nk, doc, max = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local existing = redis.call('HGET', names, nk)
if existing then return {'exists', redis.call('HGET', cats, existing)} end
if redis.call('HEXISTS', cats, id) == 1 then return {'retry'} end
if redis.call('HLEN', cats) >= max then return {'full'} end
redis.call('HSET', cats, id, doc)
redis.call('HSET', names, nk, id)
return {'created', doc}
