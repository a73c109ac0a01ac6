"""GCRA limits shared through Redis: bursts allowed, then the sustained rate, waits reported."""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.ratelimit import RateLimiter


async def test_burst_then_wait_at_the_sustained_rate(redis: aioredis.Redis) -> None:
    limiter = RateLimiter(redis)
    granted = [await limiter.acquire("pair:x", per_second=1 / 6, burst=3) for _ in range(3)]
    assert granted == [0, 0, 0]
    wait = await limiter.acquire("pair:x", per_second=1 / 6, burst=3)
    # The fourth must wait about one emission interval (6 s), not be refused outright.
    assert 5000 < wait <= 6000
    # Another limit is unaffected.
    assert await limiter.acquire("pair:y", per_second=1 / 6, burst=3) == 0


async def test_limit_is_shared_between_clients(redis: aioredis.Redis, redis_url: str) -> None:
    other = aioredis.Redis.from_url(redis_url)
    try:
        a, b = RateLimiter(redis), RateLimiter(other)
        assert await a.acquire("number:1", per_second=1, burst=1) == 0
        assert await b.acquire("number:1", per_second=1, burst=1) > 0
    finally:
        await other.aclose()
