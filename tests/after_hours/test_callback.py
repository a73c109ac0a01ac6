"""The callback: "notify me" schedules a deferred job at the next opening (fixed job id); it
opens exactly one "callback" ticket then, and moves when the schedule changes.

Time: the app and the worker read the `clock` fixture; arq runs a job on the wall clock, at
`wall now + (due - clock now)`. A test checks that offset, then moves the clock to the due
time and makes the job due (`make_due`), which is what arq's clock would do.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from arq.constants import default_queue_name

from bot.domain.actions import RequestCallback, Subject
from bot.domain.clock import FixedClock
from bot.domain.decide import NOTIFY_BUTTON_ID
from bot.runtime import queue
from storage import Stores
from storage.events import START
from tests.after_hours.conftest import (
    ADMIN,
    CUSTOMER,
    MON_20,
    PNID,
    TUE_09,
    customer_writes,
    job_score,
    make_due,
    put_agent,
    rows,
    setup_number,
)

Work = Callable[[], Awaitable[int]]
# Scheduling tolerance: the test's own run time between enqueue and check.
SLACK_MS = 5_000


async def tap(client: TestClient[Any, Any], clock: FixedClock, at: datetime, wamid: str) -> None:
    clock.at = at + timedelta(seconds=5)
    await customer_writes(client, at, wamid=wamid, text="Notify me", button=NOTIFY_BUTTON_ID)


def job_id(row_id: str) -> str:
    return queue.run_callback_job_id(PNID, row_id)


async def callback_jobs(redis: aioredis.Redis) -> list[str]:
    members = await redis.zrange(default_queue_name, 0, -1)
    return [m.decode() for m in members if m.startswith(b"callback:")]


def assert_due_at(score: float | None, due: datetime, clock: FixedClock) -> None:
    """The job runs when the clock reaches `due`: wall now + (due - clock now)."""
    assert score is not None
    expected = time.time() * 1000 + (due - clock.now()).total_seconds() * 1000
    assert abs(score - expected) < SLACK_MS, (score, expected)


async def test_callback_runs_at_next_opening_and_opens_one_ticket_even_when_asked_twice(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    redis: aioredis.Redis,
    stores: Stores,
    arq: ArqRedis,
) -> None:
    await setup_number(client)
    await put_agent(client, "ana", [PNID])
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.C0")
    await tap(client, clock, MON_20 + timedelta(minutes=1), "wamid.C1")
    await work()
    [row] = await rows(client)
    first = await job_score(redis, job_id(row["id"]))
    assert_due_at(first, TUE_09, clock)
    # A second tap: no second job, the first keeps its time.
    await tap(client, clock, MON_20 + timedelta(minutes=2), "wamid.C2")
    await work()
    assert await callback_jobs(redis) == [job_id(row["id"])]
    assert await job_score(redis, job_id(row["id"])) == first
    assert await stores.tickets.for_number(PNID) == []

    clock.at = TUE_09
    await make_due(redis, job_id(row["id"]))
    await work()
    [ticket] = await stores.tickets.for_number(PNID)
    assert ticket.source == "callback"
    assert ticket.contact.wa_id == CUSTOMER
    [row] = await rows(client)
    assert row["callback_status"] == "opened"
    assert row["ticket_id"] == ticket.id
    assert await callback_jobs(redis) == []

    # arq forgets a job id once the job is done: a rerun must still open nothing more.
    assert await queue.enqueue_run_callback(arq, PNID, row["id"], TUE_09, now=clock.at)
    await work()
    assert len(await stores.tickets.for_number(PNID)) == 1
    events = [e for e in await stores.events.read("ana", START) if e.type.startswith("after_")]
    assert [(e.type, e.data.get("status")) for e in events] == [
        ("after_hours.contact", None),
        ("after_hours.callback", "scheduled"),
        ("after_hours.callback", "opened"),
    ]
    assert events[1].data["callback_at"] == "2026-12-01T09:00:00-03:00"


async def test_a_callback_that_runs_while_closed_waits_for_the_opening(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    redis: aioredis.Redis,
    stores: Stores,
) -> None:
    await setup_number(client)
    await tap(client, clock, MON_20, "wamid.E1")
    await work()
    [row] = await rows(client)
    clock.at = TUE_09 - timedelta(minutes=30)
    await make_due(redis, job_id(row["id"]))
    await work()
    assert await stores.tickets.for_number(PNID) == []
    assert_due_at(await job_score(redis, job_id(row["id"])), TUE_09, clock)
    clock.at = TUE_09 + timedelta(seconds=1)
    await make_due(redis, job_id(row["id"]))
    await work()
    assert len(await stores.tickets.for_number(PNID)) == 1


async def test_a_schedule_change_moves_the_callback(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    redis: aioredis.Redis,
    stores: Stores,
) -> None:
    await setup_number(client)
    await tap(client, clock, MON_20, "wamid.S1")
    await work()
    [row] = await rows(client)
    assert_due_at(await job_score(redis, job_id(row["id"])), TUE_09, clock)
    patch = {"service_hours": {"weekly": {"tue": [{"start": "07:30", "end": "18:00"}]}}}
    resp = await client.patch(f"/api/v1/numbers/{PNID}", json=patch, headers=ADMIN)
    assert resp.status == 200
    await work()
    tue_0730 = TUE_09 - timedelta(minutes=90)
    assert_due_at(await job_score(redis, job_id(row["id"])), tue_0730, clock)
    [row] = await rows(client)
    assert row["callback_at"] == "2026-12-01T07:30:00-03:00"
    assert await callback_jobs(redis) == [job_id(row["id"])]
    clock.at = tue_0730
    await make_due(redis, job_id(row["id"]))
    await work()
    assert len(await stores.tickets.for_number(PNID)) == 1


async def test_with_no_opening_in_sight_the_callback_waits_for_a_schedule(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    redis: aioredis.Redis,
) -> None:
    await setup_number(client, service_hours={"weekly": {}})
    await tap(client, clock, MON_20, "wamid.W1")
    await work()
    [row] = await rows(client)
    assert row["requested_return"] == "yes"
    assert row["callback_status"] == "scheduled"
    assert row["callback_at"] is None
    assert await callback_jobs(redis) == []
    patch = {"service_hours": {"weekly": {"tue": [{"start": "09:00", "end": "18:00"}]}}}
    resp = await client.patch(f"/api/v1/numbers/{PNID}", json=patch, headers=ADMIN)
    assert resp.status == 200
    await work()
    assert_due_at(await job_score(redis, job_id(row["id"])), TUE_09, clock)


async def test_an_always_open_number_schedules_no_callback(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Work,
    redis: aioredis.Redis,
    arq: ArqRedis,
) -> None:
    await setup_number(client, service_hours={"always_open": True})
    clock.at = MON_20
    subject = Subject(
        phone_number_id=PNID, wamid="wamid.AO", contact=CUSTOMER, wa_id=CUSTOMER, at=MON_20
    )
    action = RequestCallback(period=TUE_09.isoformat(), callback_at=TUE_09)
    assert await queue.enqueue_callback_request(arq, subject, action)
    await work()
    assert await rows(client) == []
    assert await callback_jobs(redis) == []
