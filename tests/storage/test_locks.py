"""ContactLocks: one holder per contact, safe release, bounded by a TTL."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from storage import keys
from storage.locks import ContactLocks


async def test_second_holder_waits_or_gives_up(redis: aioredis.Redis) -> None:
    locks = ContactLocks(redis)
    held = await locks.acquire("1", "5511987654321")
    assert held is not None
    assert await locks.acquire("1", "5511987654321") is None
    assert await locks.acquire("1", "5511900000000") is not None  # another contact
    assert await locks.acquire("2", "5511987654321") is not None  # another number

    async def release_soon() -> None:
        await asyncio.sleep(0.1)
        await locks.release(held)

    waiter = asyncio.create_task(locks.acquire("1", "5511987654321", wait_s=2))
    await release_soon()
    assert await waiter is not None


async def test_expired_holder_cannot_release_the_next_holders_lock(redis: aioredis.Redis) -> None:
    locks = ContactLocks(redis)
    first = await locks.acquire("1", "k", ttl_s=0.05)
    assert first is not None
    await asyncio.sleep(0.1)
    second = await locks.acquire("1", "k")
    assert second is not None
    assert await locks.release(first) is False
    assert await redis.get(keys.contact_lock("1", "k")) == second.token.encode()
    assert await locks.release(second) is True
    assert await redis.exists(keys.contact_lock("1", "k")) == 0


async def test_lock_has_a_short_ttl(redis: aioredis.Redis) -> None:
    await ContactLocks(redis).acquire("1", "k")
    assert 0 < await redis.pttl(keys.contact_lock("1", "k")) <= keys.CONTACT_LOCK_TTL_S * 1000
