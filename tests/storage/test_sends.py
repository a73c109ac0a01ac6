"""Send bookkeeping: outcome markers, exclusive claims, per-contact order."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from storage.sends import ORDER_STALE_MS, SendsStore


async def test_claim_is_exclusive_until_released(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    assert await sends.claim("k")
    assert not await sends.claim("k")
    await sends.release("k")
    assert await sends.claim("k")


async def test_outcome_records_sent_and_failed(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    assert await sends.outcome("a") is None
    await sends.mark_sent("a", "wamid.1")
    assert await sends.outcome("a") == "wamid.1"
    await sends.mark_failed("b", 131047, {"natural_key": "b", "code": 131047})
    assert await sends.outcome("b") == "failed:131047"
    assert (await sends.failed())[0]["code"] == 131047


async def test_order_lets_the_earliest_pending_send_go_first(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    now = int(time.time() * 1000)
    await sends.join_order("n", "c", "second", now)
    await sends.join_order("n", "c", "first", now - 1000)
    assert not await sends.is_next("n", "c", "second")
    assert await sends.is_next("n", "c", "first")
    await sends.mark_sent("first", "wamid.1")
    # A head whose outcome is known no longer blocks.
    assert await sends.is_next("n", "c", "second")


async def test_stale_head_does_not_block_forever(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    await sends.join_order("n", "c", "lost", 1)  # enqueued long ago, never finished
    now = int(time.time() * 1000)
    await sends.join_order("n", "c", "fresh", now)
    assert now - 1 > ORDER_STALE_MS
    assert await sends.is_next("n", "c", "fresh")
