"""The reply path against a scripted Graph API: retried or recorded, in order, never twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.app import create_app
from bot.deps import open_redis
from bot.domain import bodies
from bot.domain.clock import FixedClock
from bot.domain.models import InboundMessage
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.runtime import queue
from bot.settings import Settings
from storage import Stores
from tests.flows.test_rules import CUSTOMER, MON_20, PNID, customer_writes, setup_number
from tests.graph_fake import FakeGraphAPI

FAST = {"graph_retry_backoff_s": 0.01, "reply_retry_base_s": 0.05}


@pytest.fixture(name="settings")
def fixture_fast_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**FAST)


async def _after_hours_message(client: TestClient[Any, Any], clock: FixedClock, wamid: str) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid=wamid)


async def _outcome(redis: aioredis.Redis, wamid: str) -> str | None:
    return await Stores.on(redis).sends.outcome(f"{wamid}:after_hours")


async def test_5xx_then_success_sends_once(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
    redis: aioredis.Redis,
) -> None:
    await _after_hours_message(client, clock, "wamid.R1")
    graph.fail_next(500, times=2)
    await make_worker().run_check()
    assert len(graph.messages) == 3  # two refused, one accepted
    outcome = await _outcome(redis, "wamid.R1")
    assert outcome is not None
    assert outcome.startswith("wamid.FAKE")


async def test_throttling_past_the_call_retries_the_job_later_and_sends_once(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
    redis: aioredis.Redis,
) -> None:
    await _after_hours_message(client, clock, "wamid.R2")
    graph.fail_next(429, 130429, times=4)  # the first job try gives up after 3 attempts
    worker = make_worker()
    await worker.run_check()
    assert worker.jobs_retried >= 1
    assert len(graph.messages) == 5
    accepted = await _outcome(redis, "wamid.R2")
    assert accepted is not None
    assert accepted.startswith("wamid.FAKE")
    # Running everything again sends nothing more.
    await make_worker().run_check()
    assert len(graph.messages) == 5


@pytest.mark.parametrize("code", [131047, 190])
async def test_permanent_error_is_recorded_not_retried(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
    redis: aioredis.Redis,
    code: int,
) -> None:
    await _after_hours_message(client, clock, "wamid.R3")
    graph.fail_next(400, code)
    worker = make_worker()
    await worker.run_check()
    assert worker.jobs_retried == 0
    assert len(graph.messages) == 1
    assert await _outcome(redis, "wamid.R3") == f"failed:{code}"
    [failure] = await Stores.on(redis).sends.failed()
    assert failure["code"] == code
    assert failure["kind"] == "after_hours"


async def test_free_text_outside_the_window_fails_locally_without_calling_meta(
    settings: Settings,
    graph: FakeGraphAPI,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
    redis: aioredis.Redis,
) -> None:
    stores = Stores.on(redis)
    item = {
        "phone_number_id": PNID,
        "contact": {"wa_id": CUSTOMER, "profile": {"name": "Ana"}},
        "message": {
            "from": CUSTOMER,
            "id": "wamid.R4",
            "timestamp": str(int(MON_20.timestamp())),
            "type": "text",
            "text": {"body": "Oi"},
        },
    }
    contact = await stores.contacts.upsert_from_inbound(InboundMessage.from_claim(item))
    request = ReplyRequest(
        natural_key="wamid.R4:agent",
        phone_number_id=PNID,
        wa_id=CUSTOMER,
        contact=contact.key,
        kind=ReplyKind.AGENT,
        body=bodies.text("+" + CUSTOMER, "Hi"),
    )
    arq_redis = open_redis(settings)
    try:
        await queue.enqueue_reply(arq_redis, request)
    finally:
        await arq_redis.aclose(close_connection_pool=True)
    clock.at = MON_20 + timedelta(hours=24, minutes=1)
    await make_worker().run_check()
    assert graph.messages == []
    assert await stores.sends.outcome("wamid.R4:agent") == "failed:window_closed"


async def test_replies_to_one_contact_leave_in_order_despite_a_retry(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
) -> None:
    absence = {
        "enabled": True,
        "message": "Ana is on vacation.",
        "suggested_agent": {"name": "João", "phone": "+5511999990000"},
    }
    await setup_number(client, absence=absence)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.R5")
    graph.fail_next(500, times=3)  # the text's first try fails entirely
    await make_worker().run_check()
    accepted = [m["type"] for m in graph.messages[3:]]
    assert accepted == ["text", "contacts"]


async def test_sandbox_outbox_keeps_the_reply_instead_of_calling_meta(
    make_settings: Callable[..., Settings],
    clock: FixedClock,
    graph: FakeGraphAPI,
    aiohttp_client: Any,
    redis: aioredis.Redis,
) -> None:
    from bot.worker import DesklineWorker, worker_settings

    settings = make_settings(access_token=None)
    client = await aiohttp_client(create_app(settings, clock=clock))
    await _after_hours_message(client, clock, "wamid.R6")
    options = {
        **worker_settings(settings, clock=clock),
        "burst": True,
        "poll_delay": 0,
        "handle_signals": False,
    }
    worker = DesklineWorker(**options)
    try:
        await worker.run_check()
    finally:
        await worker.close()
    assert graph.messages == []
    [kept] = await Stores.on(redis).sandbox.latest()
    assert kept["body"]["interactive"]["action"]["buttons"][0]["reply"]["id"]
    assert kept["id"].startswith("wamid.sandbox.")
