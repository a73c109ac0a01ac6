"""storage/console_sessions.py against a real Redis: digests as keys, sliding and absolute
lifetimes, the selected number."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from storage import keys
from storage.console_sessions import ConsoleSessionsStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_a_session_is_stored_under_the_digest_of_its_id(redis: aioredis.Redis) -> None:
    store = ConsoleSessionsStore(redis)
    session = await store.create("f" * 64, "ana", NOW)
    digest = hashlib.sha256(session.id.encode()).hexdigest()
    assert await redis.exists(keys.console_session(digest))
    assert not await redis.exists(keys.console_session(session.id))
    assert 0 < await redis.ttl(keys.console_session(digest)) <= keys.CONSOLE_SESSION_IDLE_S
    found = await store.get(session.id, NOW)
    assert found is not None
    assert (found.token_hash, found.caller, found.csrf) == ("f" * 64, "ana", session.csrf)
    assert found.created_at == NOW


async def test_each_use_pushes_the_idle_expiry_back(redis: aioredis.Redis) -> None:
    store = ConsoleSessionsStore(redis)
    session = await store.create("f" * 64, "ana", NOW)
    key = keys.console_session(hashlib.sha256(session.id.encode()).hexdigest())
    await redis.expire(key, 10)
    assert await store.get(session.id, NOW + timedelta(hours=1)) is not None
    assert await redis.ttl(key) > 10


async def test_a_session_ends_at_its_absolute_lifetime_whatever_its_use(
    redis: aioredis.Redis,
) -> None:
    store = ConsoleSessionsStore(redis)
    session = await store.create("f" * 64, "ana", NOW)
    late = NOW + timedelta(seconds=keys.CONSOLE_SESSION_MAX_S)
    assert await store.get(session.id, late - timedelta(seconds=1)) is not None
    assert await store.get(session.id, late) is None
    assert [k async for k in redis.scan_iter("dl:console:*")] == []


async def test_unknown_ended_and_absurd_ids_are_no_session(redis: aioredis.Redis) -> None:
    store = ConsoleSessionsStore(redis)
    session = await store.create("f" * 64, "ana", NOW)
    assert await store.get("nope", NOW) is None
    assert await store.get("x" * 500, NOW) is None
    await store.delete(session.id)
    await store.delete(session.id)  # idempotent
    assert await store.get(session.id, NOW) is None
    # Selecting a number on an ended session does not bring it back.
    await store.select_number(session.id, "1000")
    assert await store.get(session.id, NOW) is None


async def test_the_selected_number_is_remembered(redis: aioredis.Redis) -> None:
    store = ConsoleSessionsStore(redis)
    session = await store.create("f" * 64, "ana", NOW)
    await store.select_number(session.id, "1000")
    found = await store.get(session.id, NOW)
    assert found is not None
    assert found.number == "1000"


async def test_sessions_get_fresh_ids_and_csrf_tokens(redis: aioredis.Redis) -> None:
    store = ConsoleSessionsStore(redis)
    a = await store.create("f" * 64, "ana", NOW)
    b = await store.create("f" * 64, "ana", NOW)
    assert a.id != b.id
    assert a.csrf != b.csrf
    assert len(a.id) >= 43  # 256 bits, url-safe base64
