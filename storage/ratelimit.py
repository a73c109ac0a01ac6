"""Rate limits shared by every process: GCRA (generic cell rate algorithm) in one Lua call.

GCRA keeps one number per limit (the theoretical arrival time), allows bursts up to `burst`,
and answers how long to wait instead of just "no", so a job can sleep or defer precisely.
"""

from __future__ import annotations

from typing import Final

from redis.asyncio import Redis

from storage import keys

# Uses the server's clock (TIME), so processes with skewed clocks still share one limit.
_GCRA: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local tau = interval * (burst - 1)
if now < tat - tau then return tat - tau - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return 0
"""


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA)

    async def acquire(self, name: str, *, per_second: float, burst: int = 1) -> int:
        """Take one slot of limit `name`; return 0 when taken, else milliseconds to wait.

        Args:
            per_second: sustained rate.
            burst: how many may go at once after a quiet period.
        """
        interval_ms = max(1, round(1000 / per_second))
        wait = await self._script(keys=[keys.rate(name)], args=[interval_ms, burst])
        return int(wait)
