"""Rate limits shared by every process: GCRA (generic cell rate algorithm) in one Lua call.

GCRA keeps one number per limit (the theoretical arrival time), allows bursts up to `burst`,
and answers how long to wait instead of just "no", so a job can sleep or defer precisely.

The limit on failed authentications is GCRA too, around each credential check: a slot is
reserved before the check (so concurrent requests cannot all slip through before the first
failure is counted), given back when the check passes (a success never counts), kept when it
fails. Each step is one Lua call over the client's limits and the global one
(storage/lua/ratelimit_*.lua, on the server's clock).
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.domain.auth_limits import CheckSlot, FailureCount, FailureLimits, interval_ms
from storage import keys, lua


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._acquire = lua.register(redis, "ratelimit_acquire")
        self._begin = lua.register(redis, "ratelimit_check_begin")
        self._passed = lua.register(redis, "ratelimit_check_passed")
        self._failed = lua.register(redis, "ratelimit_check_failed")

    async def acquire(self, name: str, *, per_second: float, burst: int = 1) -> int:
        """Take one slot of limit `name`; return 0 when taken, else milliseconds to wait.

        Args:
            per_second: sustained rate.
            burst: how many may go at once after a quiet period.
        """
        wait = await self._acquire(keys=[keys.rate(name)], args=[interval_ms(per_second), burst])
        return int(wait)

    async def begin_check(
        self, client: str, limits: FailureLimits, *, reserve: bool = True
    ) -> CheckSlot:
        """Whether `client` (an address, a network: any string) may have a credential checked
        now, and if so reserve the slot that check would use (unless `reserve` is False: a
        request that carries no credential only needs the answer).

        Refused (`wait_ms > 0`) when the client's budget is used up, or when the global budget
        is and the client failed recently. A client with no recent failure is allowed even
        when the global budget is spent: it then holds no global slot (`global_slot` False).
        """
        raw = await self._begin(keys=_check_keys(client), args=[*limits.args(), int(reserve)])
        wait_ms = int(raw[0])
        return CheckSlot(
            wait_ms=wait_ms,
            reserved=reserve and not wait_ms,
            global_slot=bool(raw[1]),
            recent_failure=len(raw) > 2 and bool(raw[2]),
        )

    async def check_passed(self, client: str, limits: FailureLimits, slot: CheckSlot) -> None:
        """Give back the slots `slot` reserved: the check succeeded and does not count."""
        if not slot.reserved:
            return
        await self._passed(keys=_check_keys(client), args=[*limits.args(), int(slot.global_slot)])

    async def check_failed(
        self, client: str, limits: FailureLimits, slot: CheckSlot
    ) -> FailureCount:
        """Count the failed check `slot` was reserved for (the reserved slots are kept) and
        mark the client as having failed recently. A check that ran past the global budget
        costs the client its whole burst."""
        # Only a check that was let through without a global slot ran past the global budget.
        past_global = slot.reserved and not slot.global_slot
        raw = await self._failed(keys=_check_keys(client), args=[*limits.args(), int(past_global)])
        return FailureCount(client_wait_ms=int(raw), past_global=past_global)


def _check_keys(client: str) -> list[str]:
    return [
        keys.rate(f"auth:{client}"),
        keys.rate(f"auth-failed:{client}"),
        keys.rate("auth-global"),
    ]
