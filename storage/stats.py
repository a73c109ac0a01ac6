"""Counters kept in Redis so that every web and worker process reports one shared figure."""

from __future__ import annotations

from redis.asyncio import Redis

from storage import keys


class StatsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def count_job(self, function: str, outcome: str) -> None:
        """Add one to a job outcome (`success`, `retry`, `failure`). Not idempotent: a counter."""
        await self._redis.hincrby(keys.JOB_STATS, f"{function}:{outcome}", 1)

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """{(function, outcome): count} across every worker process."""
        raw = await self._redis.hgetall(keys.JOB_STATS)
        out: dict[tuple[str, str], int] = {}
        for field, value in raw.items():
            function, _, outcome = _text(field).rpartition(":")
            out[(function, outcome)] = int(value)
        return out

    async def intake_counts(self) -> dict[str, int]:
        """{counter: value} of the webhook intake (`unknown_number`, ...)."""
        raw = await self._redis.hgetall(keys.INTAKE_STATS)
        return {_text(k): int(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
