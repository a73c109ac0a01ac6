"""apply_status_update: status webhooks move the outgoing message's state, one way only."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from storage import Stores, keys
from tests.webhooks import post_webhook

PNID = "106540352242922"
STATUSES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data" / "webhooks" / "statuses.json").read_text()
)


def envelope(*statuses: dict[str, Any]) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "statuses": list(statuses),
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


async def record(stores: Stores, message_id: str) -> None:
    await stores.outgoing.record_sent(
        message_id,
        phone_number_id=PNID,
        wa_id="5511987654321",
        kind="after_hours",
        natural_key=f"wamid.IN:{message_id}",
        body_type="text",
        sent_at=datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
    )


async def test_statuses_in_reverse_order_end_at_read(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    stores = Stores.on(redis)
    await record(stores, "wamid.OUT.1")
    # Meta does not promise the order: read arrives first, then delivered and sent.
    for name in ("read", "delivered", "sent"):
        assert (await post_webhook(client, envelope(STATUSES[name]))).status == 200
        await make_worker().run_check()
    msg = await stores.outgoing.get("wamid.OUT.1")
    assert msg is not None
    assert msg.state == "read"
    assert msg.sent_at == datetime.fromtimestamp(1767261601, tz=UTC)
    assert msg.delivered_at == datetime.fromtimestamp(1767261602, tz=UTC)


async def test_failed_is_final_with_its_error_codes(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    stores = Stores.on(redis)
    await record(stores, "wamid.OUT.1")
    await post_webhook(client, envelope(STATUSES["sent"], STATUSES["failed"]))
    await make_worker().run_check()
    await post_webhook(client, envelope(STATUSES["delivered"], STATUSES["read"]))
    await make_worker().run_check()
    msg = await stores.outgoing.get("wamid.OUT.1")
    assert msg is not None
    assert msg.state == "failed"
    assert [e.code for e in msg.errors] == [131047]


async def test_status_for_a_message_not_yet_recorded_is_kept(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    logs: list[dict[str, Any]],
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    stores = Stores.on(redis)
    await post_webhook(client, envelope(STATUSES["delivered"]))
    await make_worker().run_check()
    assert [e["result"] for e in logs if e["event"] == "status_applied"] == ["pending"]
    await record(stores, "wamid.OUT.1")  # the reply job's write lands after the webhook
    msg = await stores.outgoing.get("wamid.OUT.1")
    assert msg is not None
    assert msg.state == "delivered"


async def test_repeated_status_runs_once_and_changes_nothing(
    client: TestClient[Any, Any], redis: aioredis.Redis, make_worker: Callable[..., Worker]
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    stores = Stores.on(redis)
    await record(stores, "wamid.OUT.1")
    await post_webhook(client, envelope(STATUSES["delivered"], STATUSES["delivered"]))
    worker = make_worker()
    await worker.run_check()
    assert worker.jobs_complete == 1
    before = await redis.hgetall(keys.outgoing("wamid.OUT.1"))
    await post_webhook(client, envelope(STATUSES["delivered"]))
    await make_worker().run_check()
    assert await redis.hgetall(keys.outgoing("wamid.OUT.1")) == before


async def test_untracked_status_is_ignored(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    logs: list[dict[str, Any]],
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    await post_webhook(client, envelope(STATUSES["deleted_legacy"]))
    await make_worker().run_check()
    assert [e["result"] for e in logs if e["event"] == "status_applied"] == ["ignored"]
    assert await redis.exists(keys.outgoing("wamid.OUT.1")) == 0
