"""The auto-reply throttle: once per period, once per cooldown, atomic under concurrency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from storage.throttle import ThrottleStore

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


async def test_one_claim_per_period_and_cooldown(redis: aioredis.Redis) -> None:
    store = ThrottleStore(redis)
    claim = store.claim
    assert await claim("n", "c", "after_hours", period="P1", now=T0, cooldown_s=3600)
    # Same closed period, even after the cooldown: no second reply.
    later = T0 + timedelta(hours=5)
    assert not await claim("n", "c", "after_hours", period="P1", now=later, cooldown_s=3600)
    # New period but inside the cooldown: still throttled.
    soon = T0 + timedelta(minutes=30)
    assert not await claim("n", "c", "after_hours", period="P2", now=soon, cooldown_s=3600)
    # New period after the cooldown: a new reply.
    assert await claim("n", "c", "after_hours", period="P2", now=later, cooldown_s=3600)
    # Other kinds and other contacts are independent.
    assert await claim("n", "c", "absence", period="A", now=T0, cooldown_s=3600)
    assert await claim("n", "other", "after_hours", period="P1", now=T0, cooldown_s=3600)
    marks = await store.marks("n", "c", ["after_hours", "absence", "welcome"])
    assert marks["after_hours"].period == "P2"
    assert marks["after_hours"].at == later
    assert "welcome" not in marks


async def test_concurrent_claims_grant_exactly_one(redis: aioredis.Redis) -> None:
    store = ThrottleStore(redis)
    results = await asyncio.gather(
        *(
            store.claim("n", "c", "after_hours", period="P", now=T0, cooldown_s=60)
            for _ in range(20)
        )
    )
    assert sum(results) == 1


async def test_agent_activity_expires(redis: aioredis.Redis) -> None:
    store = ThrottleStore(redis)
    assert not await store.agent_active("n", "c")
    await store.mark_agent_active("n", "c", quiet_s=1)
    assert await store.agent_active("n", "c")
    assert 0 < await redis.ttl("dl:agent-active:n:c") <= 1


async def test_the_same_message_keeps_its_grant_across_retries(redis: aioredis.Redis) -> None:
    store = ThrottleStore(redis)
    assert await store.claim("n", "c", "after_hours", period="P", now=T0, cooldown_s=60, by="w1")
    assert await store.claim("n", "c", "after_hours", period="P", now=T0, cooldown_s=60, by="w1")
    assert not await store.claim(
        "n", "c", "after_hours", period="P", now=T0, cooldown_s=60, by="w2"
    )
