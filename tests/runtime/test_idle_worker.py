"""An idle worker costs about one Redis command a second, and still starts a new job at once.

The worker runs for real (not in burst mode) against the test Redis; Redis' MONITOR counts
the commands its clients send (commands run inside a script are not counted: they are not
round trips).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import func

from bot.domain.envelope import IntakeItem
from bot.runtime.arq_worker import DesklineWorker
from bot.runtime.queue import (
    APPLY_STATUS_UPDATE,
    DRAIN_QUEUE,
    Intake,
    _enqueue,
    enqueue_drain_queue,
    job_deserializer,
    job_serializer,
)
from storage import keys

pytestmark = pytest.mark.timeout(60)

PNID = "1000"


class Started:
    """What the jobs saw: when each started (monotonic clock)."""

    def __init__(self) -> None:
        self.at: list[float] = []
        self.event = asyncio.Event()

    async def job(self, _ctx: dict[str, Any], *_args: Any) -> None:
        self.at.append(time.monotonic())
        self.event.set()


@pytest.fixture(name="arq_redis")
async def fixture_arq_redis(redis_url: str, redis: aioredis.Redis) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(
        RedisSettings.from_dsn(redis_url),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
    )
    try:
        yield pool
    finally:
        await pool.aclose()


@contextlib.asynccontextmanager
async def idle_worker(redis_url: str, **overrides: Any) -> AsyncIterator[Started]:
    """A long-running DesklineWorker (a task of this test) whose jobs only record when they
    started; yields once its first poll went by (it is idle from then on)."""
    started = Started()
    options: dict[str, Any] = {
        "functions": [
            func(started.job, name=DRAIN_QUEUE),
            func(started.job, name=APPLY_STATUS_UPDATE),
        ],
        "redis_settings": RedisSettings.from_dsn(redis_url),
        "handle_signals": False,
        "poll_delay": 0.05,
        "keep_result": 0,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        **overrides,
    }
    worker = DesklineWorker(**options)
    task = asyncio.create_task(worker.async_run())
    try:
        for _ in range(100):
            if worker._idle:
                break
            await asyncio.sleep(0.05)
        yield started
    finally:
        # As a signal stops it: arq cancels its poll loop (the jobs took microseconds).
        await asyncio.gather(*worker.tasks.values())
        worker.handle_sig(signal.SIGTERM)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()


async def client_commands(redis_url: str, seconds: float) -> list[str]:
    """The commands Redis received from clients for `seconds` (MONITOR; scripts' own
    commands left out)."""
    monitor_client = aioredis.Redis.from_url(redis_url)
    seen: list[str] = []
    try:
        async with monitor_client.monitor() as monitor:

            async def collect() -> None:
                async for entry in monitor.listen():
                    if entry.get("client_type") != "lua":
                        seen.append(str(entry.get("command", "")).split(" ", 1)[0].upper())

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collect(), seconds)
    finally:
        await monitor_client.aclose()
    return seen


async def test_an_idle_worker_sends_about_one_command_a_second(
    redis: aioredis.Redis, redis_url: str
) -> None:
    async with idle_worker(redis_url, idle_poll=1.0):
        seen = await client_commands(redis_url, 4.0)
    # One poll a second, a little slack for timing; arq's loop sent 80 (a poll every 50 ms).
    assert len(seen) <= 7, seen


async def test_a_job_enqueued_into_an_idle_worker_starts_at_once(
    arq_redis: ArqRedis, redis_url: str
) -> None:
    async with idle_worker(redis_url, idle_poll=10.0) as started:
        await asyncio.sleep(0.5)  # well idle
        enqueued = time.monotonic()
        assert await enqueue_drain_queue(arq_redis, PNID, "test")
        await asyncio.wait_for(started.event.wait(), 5)
    # Without the wake-up it would wait for the next idle poll, 10 s away (generous bound
    # for a busy 2-core machine).
    assert started.at[0] - enqueued < 1.5


async def test_a_webhook_item_stored_while_the_worker_is_idle_starts_at_once(
    arq_redis: ArqRedis, redis: aioredis.Redis, redis_url: str
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    item = IntakeItem(
        kind="status",
        claim_id="wamid.IDLE:delivered",
        phone_number_id=PNID,
        raw=json.dumps({"id": "wamid.IDLE", "status": "delivered"}),
    )
    async with idle_worker(redis_url, idle_poll=10.0) as started:
        await asyncio.sleep(0.5)
        intake = Intake(arq_redis, job_expires_s=3600)
        enqueued = time.monotonic()
        result = await intake.submit([item])
        assert result.new == 1
        await asyncio.wait_for(started.event.wait(), 5)
    assert started.at[0] - enqueued < 1.5


async def test_enqueues_publish_nothing_while_no_worker_is_idle(
    arq_redis: ArqRedis, redis: aioredis.Redis
) -> None:
    """Under load the flag is absent: an enqueue costs no PUBLISH (nobody would read it)."""
    await redis.delete(keys.WORKER_IDLE)
    before = await redis.info("commandstats")
    assert await enqueue_drain_queue(arq_redis, PNID, "test")
    after = await redis.info("commandstats")
    published = after.get("cmdstat_publish", {}).get("calls", 0) - before.get(
        "cmdstat_publish", {}
    ).get("calls", 0)
    assert published == 0
    await redis.set(keys.WORKER_IDLE, "1")
    assert await enqueue_drain_queue(arq_redis, PNID, "test")
    assert not await redis.exists(keys.WORKER_IDLE)


async def test_a_deferred_job_starts_when_due_not_at_the_next_idle_poll(
    arq_redis: ArqRedis, redis_url: str
) -> None:
    """The idle wait ends when the earliest queued job is due (the poll script reads its
    score), so a retry or a callback is not late by up to `idle_poll`."""
    async with idle_worker(redis_url, idle_poll=20.0) as started:
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        assert await _enqueue(arq_redis, DRAIN_QUEUE, PNID, "later", job_id="d1", defer_until=due)
        await asyncio.wait_for(started.event.wait(), 10)
        late_s = time.time() - due.timestamp() - (time.monotonic() - started.at[0])
    assert -0.05 < late_s < 1.0
