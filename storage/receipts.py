"""Read receipts and typing indicators: which inbound messages were marked read on WhatsApp, and
the per-ticket throttle of typing indicators (issue 19)."""

from __future__ import annotations

from redis.asyncio import Redis

from storage import keys


class ReceiptsStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def is_read(self, phone_number_id: str, wamid: str) -> bool:
        """Whether Meta already accepted a read status for `wamid`."""
        return bool(await self._redis.exists(keys.read_receipt(phone_number_id, wamid)))

    async def mark_read(self, phone_number_id: str, wamid: str) -> None:
        """Record that Meta accepted the read status for `wamid` (call only after it did).

        Idempotent: marking twice keeps one marker, its TTL restarted.
        """
        await self._redis.set(
            keys.read_receipt(phone_number_id, wamid), "1", ex=keys.READ_RECEIPT_TTL_S
        )

    async def claim_typing(self, phone_number_id: str, ticket_id: str) -> bool:
        """Take the right to show one typing indicator on the ticket; False when one was taken
        less than `keys.TYPING_THROTTLE_S` ago. One SET NX, so two desks typing at once on the
        same ticket (two tabs) still send one."""
        claimed = await self._redis.set(
            keys.typing_throttle(phone_number_id, ticket_id),
            "1",
            nx=True,
            ex=keys.TYPING_THROTTLE_S,
        )
        return bool(claimed)
