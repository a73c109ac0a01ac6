"""process_inbound_message: timeline + contact + rules, once per message, one contact at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from arq.worker import Worker

import jobs.inbound
from bot.deps import open_redis
from bot.settings import Settings
from bot.simulate import build_payload
from storage import Stores, keys
from storage.locks import ContactLocks
from tests.webhooks import post_webhook

PNID = "106540352242922"
WA = "5511987654321"
T0 = 1767625200  # 2026-01-05 15:00 UTC


@pytest.fixture(name="pool")
async def fixture_pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    """An arq client speaking our job format, to enqueue jobs by hand."""
    pool = open_redis(settings)
    yield pool
    await pool.aclose(close_connection_pool=True)


async def serve(redis: aioredis.Redis) -> None:
    await redis.sadd(keys.NUMBERS, PNID)


def envelope(messages: list[dict[str, Any]], contacts: list[dict[str, Any]]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "contacts": contacts,
        "messages": messages,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


async def snapshot(redis: aioredis.Redis) -> dict[bytes, Any]:
    """Every key but the job bookkeeping, with its content."""
    out: dict[bytes, Any] = {}
    async for key in redis.scan_iter():
        if key.startswith((b"arq:", b"dl:stats:")):
            continue
        kind = await redis.type(key)
        if kind == b"string":
            out[key] = await redis.get(key)
        elif kind == b"hash":
            out[key] = await redis.hgetall(key)
        elif kind == b"zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            out[key] = await redis.smembers(key)
        else:
            out[key] = await redis.lrange(key, 0, -1)
    return out


async def test_message_lands_on_the_timeline_and_the_contact(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    logs: list[dict[str, Any]],
) -> None:
    await serve(redis)
    payload = build_payload(
        phone_number_id=PNID,
        wa_id="551187654321",
        name="Ana",
        text="Oi",
        message_id="wamid.A",
        timestamp=T0,
    )
    assert (await post_webhook(client, payload)).status == 200
    await make_worker().run_check()

    stores = Stores.on(redis)
    contact = await stores.contacts.get(PNID, WA)
    assert contact is not None
    assert (contact.key, contact.name, contact.phone) == (WA, "Ana", "+5511987654321")
    assert contact.last_inbound_at == datetime.fromtimestamp(T0, tz=UTC)
    [entry] = await stores.timeline.list(PNID, WA)
    assert (entry.id, entry.direction, entry.text) == ("wamid.A", "in", "Oi")
    processed = [e for e in logs if e["event"] == "inbound_processed"]
    # The number has no settings in this test: the rules see an unknown number.
    assert [(e["wamid"], e["actions"]) for e in processed] == [("wamid.A", "ignore:unknown_number")]


async def test_rerunning_the_job_changes_nothing(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    pool: ArqRedis,
) -> None:
    await serve(redis)
    payload = build_payload(
        phone_number_id=PNID, wa_id=WA, name="Ana", message_id="wamid.R", timestamp=T0
    )
    await post_webhook(client, payload)
    await make_worker().run_check()
    before = await snapshot(redis)
    # arq may run a job twice (a worker dies mid-job): enqueue the same work again.
    await pool.enqueue_job("process_inbound_message", "wamid.R", _job_id="again")
    worker = make_worker()
    await worker.run_check()
    assert worker.jobs_complete == 1
    assert await snapshot(redis) == before


async def test_duplicate_and_concurrent_deliveries_store_one_message_and_run_once(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await serve(redis)
    payload = build_payload(phone_number_id=PNID, wa_id=WA, message_id="wamid.D", timestamp=T0)
    responses = await asyncio.gather(*(post_webhook(client, payload) for _ in range(10)))
    assert {r.status for r in responses} == {200}
    worker = make_worker()
    await worker.run_check()
    assert (await post_webhook(client, payload)).status == 200  # and once more, later
    await make_worker().run_check()

    assert worker.jobs_complete == 1
    counts = await Stores.on(redis).stats.job_counts()
    assert counts[("process_inbound_message", "success")] == 1
    assert await redis.zcard(keys.timeline(PNID, WA)) == 1
    assert len(await Stores.on(redis).timeline.list(PNID, WA)) == 1


async def test_a_burst_from_one_customer_is_processed_one_at_a_time_and_completely(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await serve(redis)
    # Both spellings of the number: one contact, one lock, one timeline.
    messages = [
        {
            "from": "551187654321" if i % 2 else WA,
            "id": f"wamid.B{i}",
            "timestamp": str(T0 + i),
            "type": "text",
            "text": {"body": f"m{i}"},
        }
        for i in range(30)
    ]
    contacts = [{"wa_id": WA, "profile": {"name": "Ana"}}]
    assert (await post_webhook(client, envelope(messages, contacts))).status == 200
    worker = make_worker()
    await worker.run_check()
    assert worker.jobs_complete == 30
    entries = await Stores.on(redis).timeline.list(PNID, WA)
    assert [e.text for e in entries] == [f"m{i}" for i in range(30)]
    contact = await Stores.on(redis).contacts.get(PNID, WA)
    assert contact is not None
    assert contact.last_inbound_at == datetime.fromtimestamp(T0 + 29, tz=UTC)


async def test_busy_contact_lock_defers_the_job_until_it_is_free(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    logs: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs.inbound, "LOCK_WAIT_S", 0.05)
    await serve(redis)
    held = await ContactLocks(redis).acquire(PNID, WA, ttl_s=10)
    assert held is not None
    await post_webhook(client, build_payload(phone_number_id=PNID, wa_id=WA, message_id="wamid.L"))
    worker = make_worker()
    run = asyncio.create_task(worker.run_check())
    await asyncio.sleep(0.5)
    assert await redis.zcard(keys.timeline(PNID, WA)) == 0  # still waiting for the lock
    await ContactLocks(redis).release(held)
    await run
    assert worker.jobs_retried >= 1
    assert worker.jobs_complete == 1
    assert any(e["event"] == "job_lock_busy" for e in logs)
    assert await redis.zcard(keys.timeline(PNID, WA)) == 1


async def test_unparsable_timestamp_falls_back_to_the_receipt_time(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await serve(redis)
    message = {
        "from": WA,
        "id": "wamid.T",
        "timestamp": "<WEBHOOK_SENT_TIMESTAMP>",
        "type": "text",
        "text": {"body": "quando?"},
    }
    before = datetime.now(UTC).replace(microsecond=0)
    await post_webhook(client, envelope([message], []))
    await make_worker().run_check()
    contact = await Stores.on(redis).contacts.get(PNID, WA)
    assert contact is not None
    assert contact.last_inbound_at is not None
    assert before <= contact.last_inbound_at <= datetime.now(UTC)


async def test_message_without_any_sender_is_kept_but_attached_to_no_contact(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    logs: list[dict[str, Any]],
) -> None:
    await serve(redis)
    message = {"id": "wamid.N", "timestamp": str(T0), "type": "text", "text": {"body": "?"}}
    await post_webhook(client, envelope([message], []))
    await make_worker().run_check()
    assert json.loads(await redis.get(keys.inbound("wamid.N")))["message"] == message
    assert any(e["event"] == "inbound_without_sender" for e in logs)
    assert not [k async for k in redis.scan_iter("dl:ct:*")]


async def test_unsupported_message_is_stored_as_unsupported(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await serve(redis)
    message = {
        "from": WA,
        "id": "wamid.P",
        "timestamp": str(T0),
        "type": "poll",
        "poll": {"question": "?"},
    }
    await post_webhook(client, envelope([message], [{"wa_id": WA}]))
    await make_worker().run_check()
    [entry] = await Stores.on(redis).timeline.list(PNID, WA)
    assert (entry.id, entry.type, entry.text) == ("wamid.P", "unsupported", None)


async def test_expired_claim_is_reported_missing(
    make_worker: Callable[..., Worker], pool: ArqRedis, logs: list[dict[str, Any]]
) -> None:
    await pool.enqueue_job("process_inbound_message", "wamid.GONE")
    await make_worker().run_check()
    assert any(e["event"] == "inbound_claim_missing" for e in logs)
