"""Send bookkeeping: done-markers, in-progress claims and per-contact order of outgoing replies.

The protocol (STYLE.md 2.3, "external sends"): check done → claim → send → mark done. The
done-marker is written only after Meta accepted the message (or refused it for good), so a
failure can never silence a retry; the short claim stops two workers sending the same reply.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from storage import keys

# A head of a contact's send queue older than this is taken as abandoned (its job expired or
# was dropped), so that it cannot block that contact's later replies forever.
ORDER_STALE_MS = 15 * 60 * 1000
ORDER_TTL_S = 24 * 3600


class SendsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def outcome(self, natural_key: str) -> str | None:
        """Meta's message id, "failed:<code>", or None while the send has not happened."""
        raw = await self._redis.get(keys.send_done(natural_key))
        return None if raw is None else raw.decode()

    async def claim(self, natural_key: str, ttl_s: int = keys.SEND_CLAIM_TTL_S) -> bool:
        """Take the in-progress claim (SET NX EX); False when another worker holds it.

        `ttl_s` bounds how long a holder that died mid-send blocks the send (see send_reply).
        """
        return bool(await self._redis.set(keys.send_claim(natural_key), "1", nx=True, ex=ttl_s))

    async def claim_expires_in_s(self, natural_key: str) -> float:
        """Seconds until the in-progress claim expires (0 when there is none)."""
        ttl_ms = await self._redis.pttl(keys.send_claim(natural_key))
        return max(0, int(ttl_ms)) / 1000

    async def release(self, natural_key: str) -> None:
        await self._redis.delete(keys.send_claim(natural_key))

    async def mark_sent(self, natural_key: str, message_id: str) -> None:
        """Record Meta's acceptance. Idempotent: the same id may be written again."""
        await self._redis.set(keys.send_done(natural_key), message_id, ex=keys.SEND_DONE_TTL_S)

    async def mark_failed(
        self, natural_key: str, code: int | str | None, entry: dict[str, Any]
    ) -> None:
        """Record a permanent failure (no retry will follow) and keep it visible to operators."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.send_done(natural_key), f"failed:{code}", ex=keys.SEND_DONE_TTL_S)
            pipe.lpush(keys.FAILED_SENDS, json.dumps(entry, separators=(",", ":"), default=str))
            pipe.ltrim(keys.FAILED_SENDS, 0, keys.FAILED_SENDS_MAX - 1)
            await pipe.execute()

    async def failed(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest permanently failed sends, newest first."""
        raw = await self._redis.lrange(keys.FAILED_SENDS, 0, limit - 1)
        return [dict(json.loads(r)) for r in raw]

    async def join_order(
        self, phone_number_id: str, contact: str, natural_key: str, enqueued_ms: float
    ) -> None:
        """Put a send in its contact's order (idempotent: NX keeps its first position).

        `enqueued_ms` may carry a fraction: it orders sends queued within one millisecond.
        """
        key = keys.send_order(phone_number_id, contact)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {natural_key: enqueued_ms}, nx=True)
            pipe.expire(key, ORDER_TTL_S)
            await pipe.execute()

    async def is_next(self, phone_number_id: str, contact: str, natural_key: str) -> bool:
        """True when no earlier send of this contact is still pending (stale heads dropped)."""
        key = keys.send_order(phone_number_id, contact)
        now_ms = int(time.time() * 1000)
        for _ in range(10):
            head = await self._redis.zrange(key, 0, 0, withscores=True)
            if not head:
                return True
            member, score = head[0]
            name = member.decode() if isinstance(member, bytes) else str(member)
            if name == natural_key:
                return True
            if now_ms - int(score) > ORDER_STALE_MS or await self.outcome(name) is not None:
                await self._redis.zrem(key, name)
                continue
            return False
        return False

    async def leave_order(self, phone_number_id: str, contact: str, natural_key: str) -> None:
        await self._redis.zrem(keys.send_order(phone_number_id, contact), natural_key)

    async def first_in_order(self, phone_number_id: str, contact: str) -> str | None:
        """The natural key of the contact's earliest pending send, if any."""
        head = await self._redis.zrange(keys.send_order(phone_number_id, contact), 0, 0)
        return head[0].decode() if head else None
