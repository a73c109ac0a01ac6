"""End to end per chatbot rule: signed webhook in, burst worker, what the fake Graph API got."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.domain.clock import FixedClock
from bot.domain.decide import NOTIFY_BUTTON_ID
from bot.simulate import build_payload
from tests.conftest import ADMIN_TOKEN
from tests.graph_fake import FakeGraphAPI
from tests.webhooks import post_webhook

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PNID = "1000"
CUSTOMER = "5511987654321"
WEEKDAYS = {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
# São Paulo is UTC-3: Monday 2026-11-30 10:00 and 20:00 local.
MON_10 = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
MON_20 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def number(**overrides: Any) -> dict[str, Any]:
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


async def setup_number(client: TestClient[Any, Any], **overrides: Any) -> None:
    resp = await client.put(f"/api/v1/numbers/{PNID}", json=number(**overrides), headers=ADMIN)
    assert resp.status in (200, 201), await resp.text()


async def customer_writes(
    client: TestClient[Any, Any],
    at: datetime,
    *,
    wamid: str,
    text: str = "Oi",
    button: str | None = None,
) -> None:
    payload = build_payload(
        phone_number_id=PNID,
        wa_id=CUSTOMER,
        name="Ana",
        text=text,
        button_reply=button,
        timestamp=int(at.timestamp()),
        message_id=wamid,
    )
    resp = await post_webhook(client, payload)
    assert resp.status == 200


@pytest.fixture(name="work")
def fixture_work(make_worker: Callable[..., Worker]) -> Callable[[], Any]:
    async def run() -> None:
        await make_worker().run_check()

    return run


async def test_after_hours_reply_renders_next_opening_with_notify_button(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.AH1")
    await work()
    [body] = graph.messages
    assert body["to"] == "+" + CUSTOMER
    assert body["type"] == "interactive"
    assert body["interactive"]["body"]["text"] == "We are closed. We are back tomorrow at 09:00."
    assert body["interactive"]["action"]["buttons"][0]["reply"]["id"] == NOTIFY_BUTTON_ID
    # Tagged with its natural key, so status webhooks can reconcile a send whose answer was lost.
    assert body["biz_opaque_callback_data"] == "wamid.AH1:after_hours"


async def test_absence_reply_carries_the_suggested_agent_card(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    absence = {
        "enabled": True,
        "message": "Ana is on vacation.",
        "suggested_agent": {"name": "João Silva", "phone": "+5511999990000"},
    }
    await setup_number(client, absence=absence)
    clock.at = MON_10 + timedelta(seconds=5)
    await customer_writes(client, MON_10, wamid="wamid.ABS")
    await work()
    text, card = graph.messages
    assert text["text"]["body"].startswith("Ana is on vacation.")
    assert "wa.me/5511999990000" in text["text"]["body"]
    assert card["type"] == "contacts"
    assert card["contacts"][0]["name"]["formatted_name"] == "João Silva"
    assert card["contacts"][0]["phones"][0]["wa_id"] == "5511999990000"


async def test_notify_button_is_confirmed_and_recorded(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.N1")
    await work()
    tap = MON_20 + timedelta(minutes=2)
    clock.at = tap + timedelta(seconds=5)
    await customer_writes(client, tap, wamid="wamid.N2", text="Notify me", button=NOTIFY_BUTTON_ID)
    await work()
    _offer, confirmation = graph.messages
    assert confirmation["type"] == "text"
    assert "tomorrow at 09:00" in confirmation["text"]["body"]
    rows = await client.get(f"/api/v1/numbers/{PNID}/after-hours-contacts", headers=ADMIN)
    [row] = (await rows.json())["items"]
    assert row["requested_return"] == "yes"


async def test_nothing_is_sent_in_service_hours(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    await setup_number(client)
    clock.at = MON_10 + timedelta(seconds=5)
    await customer_writes(client, MON_10, wamid="wamid.IN")
    await work()
    assert graph.messages == []
    tickets = await client.get(f"/api/v1/numbers/{PNID}/tickets", headers=ADMIN)
    assert len((await tickets.json())["items"]) == 1


async def test_five_messages_in_a_minute_get_one_reply_then_a_new_period_gets_another(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(minutes=2)
    for i in range(5):
        await customer_writes(client, MON_20 + timedelta(seconds=10 * i), wamid=f"wamid.F{i}")
    await work()
    assert len(graph.messages) == 1
    # The next evening is a new closed period, and the 60-minute cooldown has passed.
    tuesday = MON_20 + timedelta(days=1)
    clock.at = tuesday + timedelta(seconds=5)
    await customer_writes(client, tuesday, wamid="wamid.F9")
    await work()
    assert len(graph.messages) == 2


async def test_ten_concurrent_deliveries_of_one_message_get_one_reply(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, make_worker: Any
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await asyncio.gather(*(customer_writes(client, MON_20, wamid="wamid.C") for _ in range(10)))
    await asyncio.gather(make_worker().run_check(), make_worker().run_check())
    assert len(graph.messages) == 1


async def test_message_processed_after_its_window_closed_gets_no_reply(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(hours=25)
    await customer_writes(client, MON_20, wamid="wamid.OLD")
    await work()
    assert graph.messages == []
    rows = await client.get(f"/api/v1/numbers/{PNID}/after-hours-contacts", headers=ADMIN)
    assert len((await rows.json())["items"]) == 1  # still on the desk's list
