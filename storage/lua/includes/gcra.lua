-- GCRA (generic cell rate algorithm) state on the server's clock (TIME), so processes with
-- skewed clocks still share one limit. A limit is one key holding its theoretical arrival time
-- `tat` (ms); a slot is free when `now >= tat - interval * (burst - 1)`.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- The limit's tat (never before now) and how long until a slot is free (0: one is).
local function gcra_state(key, interval, burst)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  return tat, math.max(0, tat - interval * (burst - 1) - now)
end

-- Store a tat; one in the past is a limit at rest, which is no key at all.
local function gcra_put(key, tat)
  if tat > now then
    redis.call('SET', key, tat, 'PX', tat - now)
  else
    redis.call('DEL', key)
  end
end
