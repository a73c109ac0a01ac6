-- Publish one event to several agents' streams, once: the marker and the appends are one
-- atomic step, so a retried producer publishes nothing more, and a crash before the step
-- leaves nothing marked (the retry publishes it).
-- KEYS: the marker (keys.event_once), then one stream per agent (keys.agent_events).
-- ARGV: marker ttl s, type, data (JSON), stream max length, stream ttl s.
-- Returns how many streams got the event (0: published before).
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
for i = 2, #KEYS do
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[4], '*', 'type', ARGV[2], 'data', ARGV[3])
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
return #KEYS - 1
