"""A worker outlives its Redis: when Redis goes away and comes back, it picks up the work."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.runtime.embedded import EmbeddedRedis
from tests.faults.harness import CLOSED, Cluster, customer, drained, message, report, until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


async def test_worker_keeps_running_across_a_redis_restart(
    cluster: Cluster, aof_redis: EmbeddedRedis, direct: aioredis.Redis
) -> None:
    await cluster.start_web()
    await cluster.setup_numbers()
    worker = await cluster.start_worker()

    aof_redis.kill()
    # Long enough for the worker's polls to fail (arq's poll loop does not survive that).
    await asyncio.sleep(3)
    aof_redis.start()  # same port, state from the append-only file
    status, _ = await cluster.post_webhook(message(CLOSED, customer(1), "wamid.RECONNECT"))
    for _ in range(20):
        if status == 200:
            break
        status, _ = await cluster.post_webhook(message(CLOSED, customer(1), "wamid.RECONNECT"))
    assert status == 200
    await until(lambda: drained(direct), within=45, what="the job run by the same worker")
    assert worker.alive(), worker.output()[-2000:]
    processed = int(await direct.hget("dl:stats:jobs", "process_inbound_message:success") or 0)
    assert processed == 1
    report("worker across a Redis restart", posted=1, processed=processed, worker_alive=True)
