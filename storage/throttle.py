"""Auto-reply throttle: at most one reply of a kind per closed period and per cooldown.

The check and the mark are one Lua call, so two workers deciding for the same contact at the
same time cannot both reply (the per-contact lock already serialises them; this holds even
without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from storage import keys, lua


@dataclass(frozen=True, slots=True)
class AutoReplyMark:
    period: str
    at: datetime


class ThrottleStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._claim = lua.register(redis, "throttle_claim")

    async def claim(
        self,
        phone_number_id: str,
        contact: str,
        kind: str,
        *,
        period: str,
        now: datetime,
        cooldown_s: int,
        by: str = "",
    ) -> bool:
        """Take the right to send one auto-reply of `kind`; False when throttled.

        Throttled when the last reply of this kind was in the same `period` (a closed period,
        an absence) or less than `cooldown_s` ago. Idempotent on `by` (the message id): a
        retried job that was granted the right before a crash is granted it again.
        """
        granted = await self._claim(
            keys=[keys.auto_reply_mark(phone_number_id, contact, kind)],
            args=[int(now.timestamp() * 1000), cooldown_s * 1000, period, keys.THROTTLE_TTL_S, by],
        )
        return bool(granted)

    async def marks(
        self, phone_number_id: str, contact: str, kinds: list[str]
    ) -> dict[str, AutoReplyMark]:
        """The last auto-reply of each kind, for the decision's inputs."""
        out: dict[str, AutoReplyMark] = {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for kind in kinds:
                pipe.hmget(
                    keys.auto_reply_mark(phone_number_id, contact, kind), ["period", "at_ms"]
                )
            rows = await pipe.execute()
        for kind, (period, at_ms) in zip(kinds, rows, strict=True):
            if period is not None and at_ms is not None:
                out[kind] = AutoReplyMark(
                    period.decode(), datetime.fromtimestamp(int(at_ms) / 1000, UTC)
                )
        return out

    async def mark_agent_active(self, phone_number_id: str, contact: str, quiet_s: int) -> None:
        """An agent just wrote to this contact: hold auto-replies for `quiet_s` seconds."""
        await self._redis.set(keys.agent_active(phone_number_id, contact), "1", ex=quiet_s)

    async def agent_active(self, phone_number_id: str, contact: str) -> bool:
        return bool(await self._redis.exists(keys.agent_active(phone_number_id, contact)))
