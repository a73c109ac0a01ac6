"""The audit log of each number's settings: who changed what, and when (newest first)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.domain.config import AuditEntry
from storage import keys

# What `entries` returns at most in one call.
AUDIT_PAGE_MAX = 500


def queue_entry(pipe: Pipeline, phone_number_id: str, entry: AuditEntry) -> None:
    """Queue the append of `entry` on `pipe`, so that it lands in the same MULTI as the change
    it records (a change without its audit entry, or the reverse, can never be seen)."""
    key = keys.number_audit(phone_number_id)
    pipe.lpush(key, entry.model_dump_json())
    pipe.ltrim(key, 0, keys.NUMBER_AUDIT_MAX - 1)


class AuditStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def entries(self, phone_number_id: str, limit: int = 100) -> list[AuditEntry]:
        """The latest `limit` changes of a number (at most AUDIT_PAGE_MAX), newest first.

        A deleted number keeps its log, its deletion being the newest entry.
        """
        limit = max(1, min(limit, AUDIT_PAGE_MAX))
        raw = await self._redis.lrange(keys.number_audit(phone_number_id), 0, limit - 1)
        return [AuditEntry.model_validate_json(item) for item in raw]
