"""SeenStore: per-user last-seen markers on tickets, against the real Redis."""

from __future__ import annotations

from typing import Any

from storage import keys
from storage.seen import SeenStore


async def test_a_marker_never_moves_back_and_expires(redis: Any) -> None:
    seen = SeenStore(redis)
    assert await seen.counts("ana", ["T1", "T2"]) == [0, 0]
    await seen.mark("ana", "T1", 3)
    await seen.mark("ana", "T1", 2)  # an older tab rendered less: still 3
    assert await seen.counts("ana", ["T1", "T2"]) == [3, 0]
    assert await seen.counts("bia", ["T1"]) == [0]  # per user
    assert 0 < await redis.ttl(keys.ticket_seen("ana", "T1")) <= keys.SEEN_TTL_S
    assert await seen.counts("ana", []) == []
