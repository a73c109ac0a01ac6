"""Fixtures of the after-hours tests: a number closed at night, a customer who writes, and a
burst worker that stops when only deferred jobs (the callbacks) are left.

arq's burst mode runs until the queue is *empty*, deferred jobs included, so a callback due
tomorrow would keep `run_check()` spinning until the test times out. `ReadyBurstWorker` stops
once nothing is due within `HORIZON_MS` and nothing runs; a test then moves time itself: it
sets the `clock` fixture and makes the job due (`make_due`), as arq's clock would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from arq.constants import default_queue_name
from arq.utils import timestamp_ms
from arq.worker import Worker

from bot.deps import open_redis
from bot.domain.clock import FixedClock
from bot.settings import Settings
from bot.simulate import build_payload
from bot.worker import worker_settings
from storage import Stores
from tests.conftest import ADMIN_TOKEN, ReadyBurstWorker
from tests.webhooks import post_webhook

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PNID = "1000"
OTHER_PNID = "2000"
CUSTOMER = "5511987654321"
WEEKDAYS = {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
# São Paulo is UTC-3 all year. Monday 2026-11-30 20:00 local; the next opening is Tuesday
# 2026-12-01 09:00 local.
MON_20 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
TUE_09 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CONTACTS_URL = f"/api/v1/numbers/{PNID}/after-hours-contacts"


@pytest.fixture(name="work")
async def fixture_work(
    settings: Settings, clock: FixedClock
) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """`await work()`: run every job due now (and what they queue); the number completed."""
    workers: list[Worker] = []

    async def run() -> int:
        options: dict[str, Any] = {**worker_settings(settings, clock=clock)}
        options.update(burst=True, poll_delay=0, handle_signals=False)
        worker = ReadyBurstWorker(**options)
        workers.append(worker)
        return await worker.run_check()

    yield run
    for worker in workers:
        await worker.close()


@pytest.fixture(name="arq")
async def fixture_arq(settings: Settings) -> AsyncIterator[ArqRedis]:
    """The queue as the app and the worker see it (JSON job serializer)."""
    client = open_redis(settings)
    yield client
    await client.aclose(close_connection_pool=True)


@pytest.fixture(name="stores")
def fixture_stores(redis: aioredis.Redis) -> Stores:
    return Stores.on(redis)


def number_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "timezone": "America/Sao_Paulo",
        "language": "en",
        "service_hours": {"weekly": WEEKDAYS},
        "after_hours": {
            "message": "We are closed. We are back {next_opening}.",
            "notify_next_service_hour": True,
        },
        "auto_reply_cooldown_minutes": 60,
    }
    body.update(overrides)
    return body


async def setup_number(
    client: TestClient[Any, Any], number: str = PNID, **overrides: Any
) -> dict[str, Any]:
    resp = await client.put(
        f"/api/v1/numbers/{number}", json=number_body(**overrides), headers=ADMIN
    )
    assert resp.status in (200, 201), await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def customer_writes(
    client: TestClient[Any, Any],
    at: datetime,
    *,
    wamid: str,
    text: str = "Oi",
    button: str | None = None,
    name: str | None = "Ana",
    wa_id: str = CUSTOMER,
    number: str = PNID,
) -> None:
    payload = build_payload(
        phone_number_id=number,
        wa_id=wa_id,
        name=name,
        text=text,
        button_reply=button,
        timestamp=int(at.timestamp()),
        message_id=wamid,
    )
    resp = await post_webhook(client, payload)
    assert resp.status == 200


async def rows(
    client: TestClient[Any, Any], headers: dict[str, str] | None = None, **query: str
) -> list[dict[str, Any]]:
    resp = await client.get(CONTACTS_URL, params=query, headers=headers or ADMIN)
    assert resp.status == 200, await resp.text()
    items: list[dict[str, Any]] = (await resp.json())["items"]
    return items


async def put_agent(
    client: TestClient[Any, Any], agent_id: str, numbers: list[str], role: str = "agent"
) -> dict[str, str]:
    """Create the agent; its bearer headers."""
    body = {"name": agent_id.title(), "numbers": numbers, "role": role, "slots": 2}
    resp = await client.put(f"/api/v1/agents/{agent_id}", json=body, headers=ADMIN)
    assert resp.status in (200, 201), await resp.text()
    resp = await client.post(f"/api/v1/agents/{agent_id}/tokens", headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def job_score(redis: aioredis.Redis, job_id: str) -> float | None:
    """When arq will run the job (epoch ms), or None when it is not queued."""
    score = await redis.zscore(default_queue_name, job_id)
    return None if score is None else float(score)


async def make_due(redis: aioredis.Redis, job_id: str) -> None:
    """Move a queued job to now, as if arq's clock had reached its time."""
    assert await redis.zadd(default_queue_name, {job_id: timestamp_ms()}, xx=True, ch=True) in (
        0,
        1,
    )
    assert await job_score(redis, job_id) is not None
