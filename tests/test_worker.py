"""bot.worker.DesklineWorker: arq's job protocol with fewer round trips, same guarantees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import Retry
from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.worker import func

from bot.runtime.autopipeline import AutoPipelineRedis
from bot.worker import DesklineWorker

QUEUE = "arq:queue"


async def record(ctx: dict[str, Any], name: str) -> str:
    """Count each run of `name`, and remember the try it ran as."""
    redis: aioredis.Redis = ctx["redis"]
    await redis.hincrby("runs", name, 1)
    await redis.hset("tries", name, ctx["job_try"])
    return name


async def flaky(ctx: dict[str, Any], name: str) -> str:
    """Retries once, then succeeds."""
    if ctx["job_try"] == 1:
        raise Retry(defer=0.01)
    return await record(ctx, name)


async def chain(ctx: dict[str, Any], step: int) -> None:
    """Enqueues the next step, as the first job of a message enqueues its effect jobs."""
    await record(ctx, f"step{step}")
    if step < 3:
        await ctx["redis"].enqueue_job("chain", step + 1, _job_id=f"step{step + 1}")


async def slow(ctx: dict[str, Any], name: str) -> None:
    await asyncio.sleep(0.05)
    await record(ctx, name)


async def broken(ctx: dict[str, Any]) -> None:
    raise RuntimeError("fails for good")


@pytest.fixture(name="arq_pool")
async def fixture_arq_pool(redis_url: str, redis: aioredis.Redis) -> AsyncIterator[ArqRedis]:
    pool = ArqRedis(aioredis.ConnectionPool.from_url(redis_url))
    try:
        yield pool
    finally:
        await pool.aclose(close_connection_pool=True)


@pytest.fixture(name="burst_worker")
def fixture_burst_worker(redis_url: str) -> Callable[..., DesklineWorker]:
    def make(**options: Any) -> DesklineWorker:
        return DesklineWorker(
            functions=[
                func(record, name="record"),
                func(flaky, name="flaky"),
                func(chain, name="chain"),
                func(slow, name="slow"),
                broken,
            ],
            redis_settings=RedisSettings.from_dsn(redis_url),
            **{
                "burst": True,
                "poll_delay": 0,
                "handle_signals": False,
                "keep_result": 0,
                **options,
            },
        )

    return make


async def test_jobs_run_once_each_and_leave_no_keys(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    for i in range(300):
        await arq_pool.enqueue_job("record", f"j{i}", _job_id=f"j{i}")
    worker = burst_worker(max_jobs=40)
    try:
        assert await worker.run_check() == 300
        assert isinstance(worker.pool, AutoPipelineRedis)
    finally:
        await worker.close()
    runs = await redis.hgetall("runs")
    assert len(runs) == 300
    assert set(runs.values()) == {b"1"}
    assert await redis.zcard(QUEUE) == 0
    leftovers = [k async for k in redis.scan_iter("arq:*") if not k.startswith(b"arq:health")]
    assert leftovers == []


async def test_two_workers_on_one_queue_never_run_a_job_twice(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    for i in range(400):
        await arq_pool.enqueue_job("record", f"j{i}", _job_id=f"j{i}")
    workers = [burst_worker(max_jobs=25), burst_worker(max_jobs=25)]
    try:
        counts = await asyncio.gather(*(w.run_check() for w in workers))
    finally:
        await asyncio.gather(*(w.close() for w in workers))
    runs = await redis.hgetall("runs")
    assert len(runs) == 400
    assert set(runs.values()) == {b"1"}
    assert sum(counts) == 400


async def test_a_job_in_progress_elsewhere_or_not_yet_due_is_not_started(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    await arq_pool.enqueue_job("record", "busy", _job_id="busy")
    await arq_pool.enqueue_job("record", "later", _job_id="later", _defer_by=3600)
    await arq_pool.enqueue_job("record", "now", _job_id="now")
    await redis.psetex(in_progress_key_prefix + "busy", 60_000, b"1")
    # Not a burst run: a burst worker would wait for the queue to empty, which it never does.
    worker = burst_worker(burst=False, poll_delay=0.01)
    running = asyncio.ensure_future(worker.main())
    try:
        async with asyncio.timeout(10):
            while not await redis.hexists("runs", "now"):  # noqa: ASYNC110 (polls Redis)
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # twenty more polls, each seeing both other jobs
    finally:
        running.cancel()
        await worker.close()
    assert await redis.hgetall("runs") == {b"now": b"1"}
    assert await redis.exists(job_key_prefix + "busy", job_key_prefix + "later") == 2


async def test_a_retried_job_runs_again_as_its_second_try(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    await arq_pool.enqueue_job("flaky", "f", _job_id="f")
    worker = burst_worker()
    try:
        await worker.run_check()
    finally:
        await worker.close()
    assert await redis.hget("runs", "f") == b"1"
    assert await redis.hget("tries", "f") == b"2"
    assert await redis.exists(job_key_prefix + "f", retry_key_prefix + "f") == 0


async def test_a_failed_job_is_finished_and_removed(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    await arq_pool.enqueue_job("broken", _job_id="b")
    await arq_pool.enqueue_job("missing_function", _job_id="m")
    worker = burst_worker()
    try:
        with pytest.raises(Exception, match="2 job"):
            await worker.run_check()
    finally:
        await worker.close()
    assert await redis.zcard(QUEUE) == 0
    assert await redis.exists(job_key_prefix + "b", job_key_prefix + "m") == 0
    assert await redis.exists(in_progress_key_prefix + "b", in_progress_key_prefix + "m") == 0


async def _run_until(
    worker: DesklineWorker, redis: aioredis.Redis, runs: int, within_s: float
) -> None:
    """Run `worker` (not in burst mode) until `runs` jobs ran, or fail after `within_s`."""
    running = asyncio.ensure_future(worker.main())
    try:
        async with asyncio.timeout(within_s):
            while await redis.hlen("runs") < runs:  # noqa: ASYNC110 (polls Redis)
                await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await worker.close()


async def test_a_job_enqueued_by_a_finishing_job_starts_before_the_next_poll(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    # Stock arq sleeps its poll delay between polls: three steps would take over 10 s.
    await arq_pool.enqueue_job("chain", 1, _job_id="step1")
    worker = burst_worker(burst=False, poll_delay=5)
    await _run_until(worker, redis, runs=3, within_s=4)
    assert await redis.hgetall("runs") == {b"step1": b"1", b"step2": b"1", b"step3": b"1"}


async def test_free_slots_are_refilled_without_waiting_for_the_next_poll(
    arq_pool: ArqRedis, redis: aioredis.Redis, burst_worker: Callable[..., DesklineWorker]
) -> None:
    # Two slots, eight jobs: stock arq starts two per poll, i.e. one poll delay per pair.
    for i in range(8):
        await arq_pool.enqueue_job("slow", f"s{i}", _job_id=f"s{i}")
    worker = burst_worker(burst=False, poll_delay=5, max_jobs=2)
    await _run_until(worker, redis, runs=8, within_s=4)
    assert set((await redis.hgetall("runs")).values()) == {b"1"}
