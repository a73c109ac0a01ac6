-- Delete a reply and its title. KEYS: the category's replies, their titles index. ARGV: id.
-- Returns 1, or 0 when no such reply.
local replies, titles = KEYS[1], KEYS[2]
local cur = redis.call('HGET', replies, ARGV[1])
if not cur then return 0 end
redis.call('HDEL', titles, cjson.decode(cur).key)
redis.call('HDEL', replies, ARGV[1])
return 1
