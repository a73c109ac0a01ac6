"""Send bookkeeping: done-markers, in-progress claims and per-contact order of outgoing replies.

The protocol (STYLE.md 2.3, "external sends"): check done → claim → send → mark done. The
done-marker is written only after Meta accepted the message (or refused it for good), so a
failure can never silence a retry; the short claim stops two workers sending the same reply.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from storage import keys, lua

# A head of a contact's send queue older than this is taken as abandoned (its job expired or
# was dropped), so that it cannot block that contact's later replies forever.
ORDER_STALE_MS = 15 * 60 * 1000
ORDER_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Begin:
    """Whether a send may go now (`SendsStore.begin`).

    - "go": first in its contact's order, claimed: send, then mark it done and release.
    - "duplicate": already sent, or failed for good: nothing to do.
    - "wait": an earlier send to the same contact is still pending.
    - "busy": another worker holds the claim, for `claim_expires_in_s` more at most.
    """

    state: Literal["go", "duplicate", "wait", "busy"]
    claim_expires_in_s: float = 0.0


class SendsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._begin = lua.register(redis, "sends_begin")

    async def begin(
        self,
        natural_key: str,
        phone_number_id: str,
        contact: str,
        enqueued_ms: float,
        *,
        claim_ttl_s: int = keys.SEND_CLAIM_TTL_S,
    ) -> Begin:
        """Done check, place in the contact's order, first-in-order check and claim, at once.

        `claim_ttl_s` bounds how long a holder that died mid-send blocks the send (see
        jobs/replies.py). `enqueued_ms` may carry a fraction (see `join_order`).
        """
        reply = await self._begin(
            keys=[
                keys.send_done(natural_key),
                keys.send_claim(natural_key),
                keys.send_order(phone_number_id, contact),
            ],
            args=[
                natural_key,
                repr(float(enqueued_ms)),
                ORDER_TTL_S,
                int(time.time() * 1000),
                ORDER_STALE_MS,
                claim_ttl_s,
                keys.send_done(""),
            ],
        )
        state = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        if state == "busy":
            return Begin("busy", max(0, int(reply[1])) / 1000)
        assert state in ("go", "duplicate", "wait"), state
        return Begin(state)  # type: ignore[arg-type]

    async def outcome(self, natural_key: str) -> str | None:
        """Meta's message id, "failed:<code>", or None while the send has not happened."""
        raw = await self._redis.get(keys.send_done(natural_key))
        return None if raw is None else raw.decode()

    async def outcomes(self, natural_keys: list[str]) -> list[str | None]:
        """`outcome` of each key, in order (one round trip)."""
        if not natural_keys:
            return []
        raw = await self._redis.mget([keys.send_done(k) for k in natural_keys])
        return [None if r is None else r.decode() for r in raw]

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

    async def leave_order(self, phone_number_id: str, contact: str, natural_key: str) -> None:
        await self._redis.zrem(keys.send_order(phone_number_id, contact), natural_key)

    async def first_in_order(self, phone_number_id: str, contact: str) -> str | None:
        """The natural key of the contact's earliest pending send, if any."""
        head = await self._redis.zrange(keys.send_order(phone_number_id, contact), 0, 0)
        return head[0].decode() if head else None
