"""Send bookkeeping: outcome markers, exclusive claims, per-contact order."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from storage import keys
from storage.sends import ORDER_STALE_MS, Begin, SendsStore


async def test_begin_claims_a_send_exclusively_until_released(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    now = time.time() * 1000
    assert await sends.begin("k", "n", "c", now, claim_ttl_s=30) == Begin("go")
    busy = await sends.begin("k", "n", "c", now, claim_ttl_s=30)
    assert busy.state == "busy"
    assert 29 < busy.claim_expires_in_s <= 30
    await sends.release("k")
    assert await sends.begin("k", "n", "c", now) == Begin("go")


async def test_begin_skips_a_send_already_done_without_joining_the_order(
    redis: aioredis.Redis,
) -> None:
    sends = SendsStore(redis)
    await sends.mark_sent("done", "wamid.1")
    assert await sends.begin("done", "n", "c", time.time() * 1000) == Begin("duplicate")
    assert await sends.first_in_order("n", "c") is None
    assert not await redis.exists(keys.send_claim("done"))


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
    assert await sends.begin("second", "n", "c", now) == Begin("wait")
    assert not await redis.exists(keys.send_claim("second"))  # waiting claims nothing
    assert await sends.begin("first", "n", "c", now - 1000) == Begin("go")
    await sends.mark_sent("first", "wamid.1")
    await sends.release("first")
    # A head whose outcome is known no longer blocks.
    assert await sends.begin("second", "n", "c", now) == Begin("go")


async def test_begin_keeps_the_place_taken_when_queued(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    now = int(time.time() * 1000)
    await sends.join_order("n", "c", "early", now - 5000)
    await sends.join_order("n", "c", "late", now)
    # "early" runs later than it was queued: NX keeps its first place.
    assert await sends.begin("late", "n", "c", now) == Begin("wait")
    assert await sends.begin("early", "n", "c", now + 9000) == Begin("go")


async def test_stale_head_does_not_block_forever(redis: aioredis.Redis) -> None:
    sends = SendsStore(redis)
    await sends.join_order("n", "c", "lost", 1)  # enqueued long ago, never finished
    now = int(time.time() * 1000)
    assert now - 1 > ORDER_STALE_MS
    assert await sends.begin("fresh", "n", "c", now) == Begin("go")
    assert await sends.first_in_order("n", "c") == "fresh"
