"""The sandbox outbox's list: what would have gone to Meta when no access token is set."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from storage import keys


class SandboxStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def keep(self, entry: dict[str, Any]) -> None:
        """Prepend one sent message; the list keeps the latest SANDBOX_OUTBOX_MAX."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(keys.SANDBOX_OUTBOX, json.dumps(entry, separators=(",", ":")))
            pipe.ltrim(keys.SANDBOX_OUTBOX, 0, keys.SANDBOX_OUTBOX_MAX - 1)
            await pipe.execute()

    async def latest(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest kept messages, newest first."""
        raw = await self._redis.lrange(keys.SANDBOX_OUTBOX, 0, limit - 1)
        return [dict(json.loads(r)) for r in raw]
