"""Inbound messages and status updates as claimed by the webhook intake."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from storage import keys


class MessagesStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def inbound_raw(self, wamid: str) -> dict[str, Any] | None:
        """The raw item the intake claimed for `wamid` (None once its 8-day claim expired)."""
        raw = await self._redis.get(keys.inbound(wamid))
        return None if raw is None else dict(json.loads(raw))

    async def status_raw(self, claim_id: str) -> dict[str, Any] | None:
        """The raw status item claimed as `<message id>:<status>`."""
        raw = await self._redis.get(keys.status_claim(claim_id))
        return None if raw is None else dict(json.loads(raw))

    async def other_events(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest non-message webhook changes, newest first."""
        raw = await self._redis.lrange(keys.OTHER_EVENTS, 0, limit - 1)
        return [dict(json.loads(r)) for r in raw]
