"""Dead letters: jobs that failed for good, kept for operators to inspect and replay."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from storage import keys


class DeadLettersStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, entry: dict[str, Any], at_ms: int) -> None:
        """Keep one failed job under `entry["id"]` (its arq job id). Idempotent per id."""
        job_id = str(entry["id"])
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.DEAD_LETTERS, job_id, json.dumps(entry, default=str))
            pipe.zadd(keys.DEAD_LETTERS_INDEX, {job_id: at_ms})
            await pipe.execute()
        excess = await self._redis.zcard(keys.DEAD_LETTERS_INDEX) - keys.DEAD_LETTERS_MAX
        if excess > 0:
            oldest = await self._redis.zrange(keys.DEAD_LETTERS_INDEX, 0, excess - 1)
            await self.remove(*[o.decode() for o in oldest])

    async def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest dead letters, newest first."""
        ids = await self._redis.zrevrange(keys.DEAD_LETTERS_INDEX, 0, limit - 1)
        if not ids:
            return []
        raw = await self._redis.hmget(keys.DEAD_LETTERS, ids)
        return [dict(json.loads(r)) for r in raw if r is not None]

    async def get(self, job_id: str) -> dict[str, Any] | None:
        raw = await self._redis.hget(keys.DEAD_LETTERS, job_id)
        return None if raw is None else dict(json.loads(raw))

    async def remove(self, *job_ids: str) -> None:
        if not job_ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.DEAD_LETTERS, *job_ids)
            pipe.zrem(keys.DEAD_LETTERS_INDEX, *job_ids)
            await pipe.execute()
