-- Add one internal note (storage/notes.py `NotesStore.add`), idempotent on its id.
-- KEYS[1] the notes HASH (keys.ticket_notes or keys.contact_notes)
-- KEYS[2] the ticket HASH (keys.ticket) for a ticket's notes, whose TTL the notes take;
--         absent for a contact's notes, which get ARGV[5] and drop notes older than ARGV[6]
-- ARGV[1] note id, ARGV[2] the note as JSON, ARGV[3] NOTES_MAX,
-- ARGV[4] 'ticket' or 'contact', ARGV[5] TTL in seconds, ARGV[6] cutoff (epoch ms)
-- Returns {'new', json}, {'duplicate', the stored json}, {'full'} or {'missing'} (the ticket
-- is gone).
local notes, id = KEYS[1], ARGV[1]
local existing = redis.call('HGET', notes, id)
if existing then return {'duplicate', existing} end
if ARGV[4] == 'ticket' then
  if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
else
  local cutoff = tonumber(ARGV[6])
  local flat = redis.call('HGETALL', notes)
  for i = 1, #flat, 2 do
    local ok, note = pcall(cjson.decode, flat[i + 1])
    if not ok or tonumber(note['at']) == nil or tonumber(note['at']) < cutoff then
      redis.call('HDEL', notes, flat[i])
    end
  end
end
if redis.call('HLEN', notes) >= tonumber(ARGV[3]) then return {'full'} end
redis.call('HSET', notes, id, ARGV[2])
if ARGV[4] == 'ticket' then
  -- An active ticket has no TTL (nor do its notes); a closed one expires, its notes with it.
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', notes, ttl) end
else
  redis.call('EXPIRE', notes, tonumber(ARGV[5]))
end
return {'new', ARGV[2]}
