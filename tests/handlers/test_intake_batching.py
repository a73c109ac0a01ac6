"""Intake coalescing: concurrent webhooks share round trips, yet each is claimed exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq.connections import ArqRedis
from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import RedisError, ResponseError

from bot.deps import open_redis
from bot.domain.envelope import IntakeItem
from bot.runtime.embedded import EmbeddedRedis
from bot.runtime.queue import (
    PROCESS_INBOUND_MESSAGE,
    Intake,
    IntakeResult,
    _arq_job,
    job_deserializer,
)
from bot.settings import Settings
from storage import keys

PNID = "106540352242922"


class CountingIntake(Intake):
    """Records the size of every pipeline it sends: the round trips, observed from outside."""

    def __init__(self, redis: ArqRedis, chunk_items: int = 500) -> None:
        super().__init__(redis, job_expires_s=3600, chunk_items=chunk_items)
        self.round_trips: list[int] = []

    async def _pipeline(self, batch: list[Any]) -> list[Any]:
        self.round_trips.append(len(batch))
        return await super()._pipeline(batch)


def message(wamid: str, pnid: str = PNID) -> IntakeItem:
    raw = json.dumps({"phone_number_id": pnid, "message": {"id": wamid, "type": "text"}})
    return IntakeItem("message", wamid, pnid, raw)


@pytest.fixture(name="arq_redis")
async def fixture_arq_redis(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[ArqRedis]:
    await redis.sadd(keys.NUMBERS, PNID)
    client = open_redis(settings)
    yield client
    await client.aclose(close_connection_pool=True)


async def test_concurrent_submissions_share_round_trips_and_claim_each_message_once(
    arq_redis: ArqRedis, redis: aioredis.Redis
) -> None:
    intake = CountingIntake(arq_redis)
    # 300 webhooks, 100 distinct messages: every message is delivered three times at once,
    # some alone and some inside a batch with others, as Meta's redeliveries can be.
    webhooks = [[message(f"wamid.{i % 100}")] for i in range(200)]
    webhooks += [[message(f"wamid.{j}") for j in range(i, i + 10)] for i in range(0, 100, 10)]
    results = await asyncio.gather(*(intake.submit(items) for items in webhooks))

    assert sum(r.new for r in results) == 100
    assert sum(r.new + r.duplicate for r in results) == sum(len(w) for w in webhooks)
    assert await redis.zcard("arq:queue") == 100
    queued = {m.decode() for m in await redis.zrange("arq:queue", 0, -1)}
    assert queued == {f"inbound:wamid.{i}" for i in range(100)}
    # Coalesced: far fewer round trips than webhooks, and every webhook in exactly one of them.
    assert sum(intake.round_trips) == len(webhooks)
    assert len(intake.round_trips) < len(webhooks) / 10


async def test_an_idle_intake_sends_a_lone_webhook_at_once(arq_redis: ArqRedis) -> None:
    intake = CountingIntake(arq_redis)
    first = await intake.submit([message("wamid.A")])
    second = await intake.submit([message("wamid.A")])
    assert first == IntakeResult(new=1, duplicate=0, unknown_number=0)
    assert second == IntakeResult(new=0, duplicate=1, unknown_number=0)
    assert intake.round_trips == [1, 1]


async def test_a_webhook_larger_than_a_chunk_is_stored_by_several_calls_sent_together(
    arq_redis: ArqRedis, redis: aioredis.Redis
) -> None:
    intake = CountingIntake(arq_redis, chunk_items=3)
    items = [message(f"wamid.{i}") for i in range(7)]
    other = [json.dumps({"field": "account_update", "n": n}) for n in range(4)]
    result = await intake.submit(items, other)
    assert result == IntakeResult(new=7, duplicate=0, unknown_number=0)
    # 11 entries, at most 3 per script call: 4 calls, sent as one round trip.
    assert intake.round_trips == [4]
    assert await redis.zcard("arq:queue") == 7
    # The other events are kept in the order one call would have kept them.
    kept = [json.loads(raw)["n"] for raw in await redis.lrange(keys.OTHER_EVENTS, 0, -1)]
    assert kept == [3, 2, 1, 0]
    assert int(await redis.hget(keys.INTAKE_STATS, "other_event")) == 4
    again = await intake.submit(items[2:5])
    assert again == IntakeResult(new=0, duplicate=3, unknown_number=0)
    assert intake.round_trips == [4, 1]


async def test_redis_failure_fails_every_waiting_webhook_then_recovers(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path, persistent=False)
    server.start()
    client = open_redis(make_settings(redis_url=server.url, redis_timeout_s=0.5))
    intake = CountingIntake(client)
    try:
        await client.sadd(keys.NUMBERS, PNID)
        assert (await intake.submit([message("wamid.before")])).new == 1
        server.stop()
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(intake.submit([message(f"wamid.{i}")]) for i in range(50)),
                return_exceptions=True,
            ),
            timeout=10,
        )
        assert all(isinstance(o, RedisError) for o in outcomes), outcomes
        # They shared failing round trips: fewer pipelines than webhooks, each webhook in one.
        assert sum(intake.round_trips[1:]) == 50
        assert len(intake.round_trips) - 1 < 50
        # Back (empty, scripts gone): the same intake serves again, no sender left stuck.
        server.start()
        await client.sadd(keys.NUMBERS, PNID)
        result = await asyncio.wait_for(intake.submit([message("wamid.0")]), timeout=10)
        assert result.new == 1
    finally:
        await client.aclose(close_connection_pool=True)
        server.stop()


async def test_one_webhooks_script_error_is_its_own(
    arq_redis: ArqRedis, redis: aioredis.Redis
) -> None:
    # A string where the intake keeps its list of other events: only webhooks carrying such
    # events fail (WRONGTYPE), the rest of the same pipeline is stored and answered.
    await redis.set(keys.OTHER_EVENTS, "not a list")
    intake = CountingIntake(arq_redis)
    plain = [intake.submit([message(f"wamid.p{i}")]) for i in range(20)]
    odd = [intake.submit([], other=['{"field": "account_update"}']) for _ in range(5)]
    outcomes = await asyncio.gather(*plain, *odd, return_exceptions=True)
    assert all(isinstance(o, IntakeResult) and o.new == 1 for o in outcomes[:20])
    assert all(isinstance(o, ResponseError) for o in outcomes[20:])
    assert max(intake.round_trips) > 1
    assert await redis.zcard("arq:queue") == 20


async def test_a_value_redis_cannot_encode_fails_only_its_own_webhook(
    arq_redis: ArqRedis, redis: aioredis.Redis
) -> None:
    intake = CountingIntake(arq_redis)
    bad = IntakeItem("message", "wamid.bad", PNID, '{"text": "\ud800"}')
    outcomes = await asyncio.gather(
        *(intake.submit([message(f"wamid.{i}")]) for i in range(10)),
        intake.submit([bad]),
        *(intake.submit([message(f"wamid.{i}")]) for i in range(10, 20)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[10], UnicodeEncodeError)
    assert all(isinstance(o, IntakeResult) and o.new == 1 for o in outcomes[:10] + outcomes[11:])
    assert intake.round_trips == [20]
    assert await redis.zcard("arq:queue") == 20


async def test_scripts_flushed_by_a_redis_restart_are_reloaded_for_the_whole_batch(
    arq_redis: ArqRedis, redis: aioredis.Redis
) -> None:
    intake = CountingIntake(arq_redis)
    await intake.submit([message("wamid.first")])
    await redis.script_flush()
    results = await asyncio.gather(
        *(intake.submit([message(f"wamid.{i % 10}")]) for i in range(40))
    )
    assert sum(r.new for r in results) == 10
    assert sum(r.duplicate for r in results) == 30
    assert await redis.zcard("arq:queue") == 11


async def test_a_cancelled_webhook_does_not_disturb_the_others(arq_redis: ArqRedis) -> None:
    intake = CountingIntake(arq_redis)
    tasks = [asyncio.create_task(intake.submit([message(f"wamid.{i}")])) for i in range(10)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[3], asyncio.CancelledError)
    assert all(isinstance(o, IntakeResult) for i, o in enumerate(outcomes) if i != 3)


@given(claim_id=st.text(), enqueue_ms=st.integers(min_value=0, max_value=2**53))
def test_job_template_is_byte_identical_to_the_serialised_dict(
    claim_id: str, enqueue_ms: int
) -> None:
    fast = Intake._job(PROCESS_INBOUND_MESSAGE, claim_id, enqueue_ms)
    assert fast == _arq_job(PROCESS_INBOUND_MESSAGE, [claim_id], enqueue_ms)
    assert job_deserializer(fast)["a"] == [claim_id]
