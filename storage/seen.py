"""Last-seen markers of desk users on tickets (`keys.ticket_seen`): what the console's unread
counts are computed from."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from storage import keys


class SeenStore:
    """Per (caller, ticket): how many of the ticket's messages the caller has seen."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def mark(self, caller_id: str, ticket_id: str, count: int) -> None:
        """Record that `caller_id` has seen the ticket's first `count` messages. Never moves
        the marker back (two tabs: the one that rendered less must not make messages unread
        again); the TTL restarts."""
        key = keys.ticket_seen(caller_id, ticket_id)
        # SET GET cannot compare; a tiny script would, but a lost race only ever shows one
        # message too many as unread until the next opening, so read-then-write is enough.
        before = await self._redis.get(key)
        if before is not None and int(before) > count:
            await self._redis.expire(key, keys.SEEN_TTL_S)
            return
        await self._redis.set(key, count, ex=keys.SEEN_TTL_S)

    async def counts(self, caller_id: str, ticket_ids: Sequence[str]) -> list[int]:
        """The markers of `ticket_ids` in that order (0 for a ticket never opened); one
        round trip."""
        if not ticket_ids:
            return []
        raw = await self._redis.mget([keys.ticket_seen(caller_id, t) for t in ticket_ids])
        return [int(v) if v is not None else 0 for v in raw]
