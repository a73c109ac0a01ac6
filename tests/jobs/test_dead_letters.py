"""A job that fails for good lands in the dead letters; the CLI lists and replays it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import Retry
from arq.worker import Worker

from bot import cli
from bot.deps import open_redis
from bot.runtime import queue
from bot.settings import Settings
from jobs import _register
from storage import Stores


async def _enqueue(settings: Settings, *args: Any, job_id: str) -> None:
    arq_redis = open_redis(settings)
    try:
        await arq_redis.enqueue_job(queue.SEND_REPLY, *args, _job_id=job_id)
    finally:
        await arq_redis.aclose(close_connection_pool=True)


async def test_failed_job_is_kept_and_replayed_by_the_cli(
    settings: Settings,
    redis: aioredis.Redis,
    redis_url: str,
    make_worker: Callable[..., Worker],
) -> None:
    async def flaky(ctx: dict[str, Any], request: dict[str, Any]) -> str:
        # Fails until an operator has fixed "the cause" (a flag in Redis).
        if not await redis.exists("test:fixed"):
            raise RuntimeError("downstream broken")
        await redis.incr("test:ran")
        return "ok"

    functions = [_register(queue.SEND_REPLY, flaky)]
    await _enqueue(settings, {"x": 1}, job_id="reply:broken")
    worker = make_worker(functions=functions)
    with pytest.raises(Exception, match="1 job"):
        await worker.run_check()

    [entry] = await Stores.on(redis).dead_letters.list()
    assert entry["id"] == "reply:broken"
    assert entry["function"] == "send_reply"
    assert entry["args"] == [{"x": 1}]
    assert "downstream broken" in entry["error"]

    listed = io.StringIO()
    assert await _run_cli(redis_url, ["dead-letters", "list"], listed) == 0
    assert '"id": "reply:broken"' in listed.getvalue()
    out = io.StringIO()
    await redis.set("test:fixed", "1")
    parser_args = ["dead-letters", "retry", "reply:broken"]
    code = await _run_cli(redis_url, parser_args, out)
    assert code == 0
    assert "reply:broken -> reply:broken:replay:" in out.getvalue()
    assert await Stores.on(redis).dead_letters.list() == []
    await make_worker(functions=functions).run_check()
    assert int(await redis.get("test:ran")) == 1


async def test_retry_on_the_last_try_is_dead_lettered(
    settings: Settings, redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    async def always_later(ctx: dict[str, Any], request: dict[str, Any]) -> str:
        raise Retry(defer=0.01)

    functions = [_register(queue.SEND_REPLY, always_later, max_tries=2)]
    await _enqueue(settings, {"x": 2}, job_id="reply:later")
    with pytest.raises(Exception, match="1 job"):
        await make_worker(functions=functions).run_check()
    [entry] = await Stores.on(redis).dead_letters.list()
    assert entry["error"] == "gave up after 2 tries"


async def _run_cli(redis_url: str, argv: list[str], out: io.StringIO) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    return await cli._run(redis_url, parser.parse_args(argv), out)


async def test_jobs_arq_fails_before_our_code_runs_are_dead_lettered_too(
    settings: Settings, redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    ran: list[Any] = []

    async def never_reached(ctx: dict[str, Any], request: dict[str, Any]) -> str:
        ran.append(request)
        return "ran"

    # Its tries ran out through restarts (each run killed its worker before finishing).
    await _enqueue(settings, {"x": 1}, job_id="reply:crashes-its-worker")
    await redis.set("arq:retry:reply:crashes-its-worker", settings.max_tries)
    # A job for a function this worker does not know.
    arq_redis = open_redis(settings)
    try:
        await arq_redis.enqueue_job("retired_function", 7, _job_id="retired:1")
    finally:
        await arq_redis.aclose(close_connection_pool=True)
    # Queued, but its job data expired before any worker took it.
    await redis.zadd("arq:queue", {"gone:1": 1})

    worker = make_worker(functions=[_register(queue.SEND_REPLY, never_reached)])
    with pytest.raises(Exception, match="3 jobs"):
        await worker.run_check()

    assert ran == []
    letters = {e["id"]: e for e in await Stores.on(redis).dead_letters.list()}
    assert set(letters) == {"reply:crashes-its-worker", "retired:1", "gone:1"}
    crashed = letters["reply:crashes-its-worker"]
    assert crashed["function"] == "send_reply"
    assert crashed["args"] == [{"x": 1}]
    assert f"max {settings.max_tries} retries exceeded" in crashed["error"]
    assert letters["retired:1"]["function"] == "retired_function"
    assert letters["retired:1"]["args"] == [7]
    assert "not found" in letters["retired:1"]["error"]
    assert "expired" in letters["gone:1"]["error"]
    counts = await Stores.on(redis).stats.job_counts()
    assert counts[("send_reply", "failure")] == 1
    assert counts[("retired_function", "failure")] == 1
    assert await redis.zcard("arq:queue") == 0
