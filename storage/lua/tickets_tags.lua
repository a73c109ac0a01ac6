-- Replace a ticket's tags, keeping the per-tag counts and the tag index in step.
-- ARGV: now, id, actor, tags (JSON array, normalised by bot.tickets.TicketTagsInput).
-- Returns {'missing'}, {'changed'} or {'same'}.
--@include tickets
local id, actor, raw = ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('HMGET', TK .. id, 'status', 'phone_number_id', 'created_at', 'tags')
if not t[1] then return {'missing'} end
local pnid, created, active = t[2], num(t[3]), t[1] ~= 'closed'
local old, new = {}, {}
for _, tag in ipairs(m_tags_of(t[4])) do old[tag] = true end
for _, tag in ipairs(cjson.decode(raw)) do new[tag] = true end
local changed = false
for tag in pairs(old) do
  if not new[tag] then m_tag(pnid, id, created, tag, -1, active); changed = true end
end
for tag in pairs(new) do
  if not old[tag] then m_tag(pnid, id, created, tag, 1, active); changed = true end
end
if raw == '[]' then
  redis.call('HDEL', TK .. id, 'tags')
else
  redis.call('HSET', TK .. id, 'tags', raw)
end
if changed then hist(id, {type = 'tagged', by = actor, detail = raw}) end
return {changed and 'changed' or 'same'}
