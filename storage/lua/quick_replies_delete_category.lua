-- Delete a quick reply category with its replies.
-- KEYS: the owner's categories, their names index, the category's replies, their titles index.
-- ARGV: id. Returns 1, or 0 when no such category.
local cats, names, replies, titles = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cur = redis.call('HGET', cats, ARGV[1])
if not cur then return 0 end
redis.call('HDEL', names, cjson.decode(cur).key)
redis.call('HDEL', cats, ARGV[1])
redis.call('DEL', replies, titles)
return 1
