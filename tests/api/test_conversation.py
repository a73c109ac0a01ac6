"""Desk conversations (issue 19): a ticket shows the whole conversation (the customer, agents
and the chatbot's automatic messages, with their delivery state), the same in the API, the
PDF transcript and on the agent's event stream (`message.in`, `message.status`, once each)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.deps import open_deps
from bot.domain.clock import FixedClock
from bot.domain.decide import NOTIFY_BUTTON_ID
from bot.runtime import queue
from bot.runtime.deps import Deps
from bot.settings import Settings
from bot.simulate import build_payload
from jobs import deps_key
from jobs.statuses import apply_status_update
from jobs.tickets import open_ticket
from storage import keys
from tests.after_hours.conftest import TUE_09, make_due
from tests.flows.test_rules import CUSTOMER, MON_10, MON_20, PNID, customer_writes, setup_number
from tests.graph_fake import FakeGraphAPI
from tests.test_transcript import text_of
from tests.webhooks import post_webhook

ADMIN = {"Authorization": "Bearer test-admin-token"}
TUE_10 = MON_10 + timedelta(days=1)


@pytest.fixture(name="work")
def fixture_work(make_worker: Callable[..., Worker]) -> Callable[[], Any]:
    async def run() -> None:
        await make_worker().run_check()

    return run


@pytest.fixture(name="deps")
async def fixture_deps(settings: Settings, clock: FixedClock) -> AsyncIterator[Deps]:
    async with open_deps(settings, clock=clock) as deps:
        yield deps


async def agent_online(client: TestClient[Any, Any], agent_id: str = "ana") -> dict[str, str]:
    """An agent of PNID, online, and the headers of a token of theirs."""
    body = {"name": agent_id.title(), "numbers": [PNID], "role": "agent", "slots": 2}
    resp = await client.put(f"/api/v1/agents/{agent_id}", json=body, headers=ADMIN)
    assert resp.status in (200, 201), await resp.text()
    resp = await client.post(f"/api/v1/agents/{agent_id}/tokens", headers=ADMIN)
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    resp = await client.put(
        f"/api/v1/agents/{agent_id}/status", json={"status": "online"}, headers=ADMIN
    )
    assert resp.status == 200, await resp.text()
    return headers


async def status_webhook(
    client: TestClient[Any, Any],
    message_id: str,
    status: str,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    item: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(int(TUE_10.timestamp()) + 60),
        "recipient_id": CUSTOMER,
    }
    if errors:
        item["errors"] = errors
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
        "statuses": [item],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    assert (await post_webhook(client, payload)).status == 200


async def only_ticket(client: TestClient[Any, Any]) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/numbers/{PNID}/tickets", headers=ADMIN)
    [item] = (await resp.json())["items"]
    resp = await client.get(f"/api/v1/tickets/{item['id']}", headers=ADMIN)
    assert resp.status == 200, await resp.text()
    detail: dict[str, Any] = await resp.json()
    return detail


async def events_of(client: TestClient[Any, Any], agent_id: str = "ana") -> list[dict[str, Any]]:
    """The agent's stream in snapshot mode (`last_event_id`: answered at once)."""
    resp = await client.get(f"/api/v1/agents/{agent_id}/events?last_event_id=0-0", headers=ADMIN)
    assert resp.status == 200
    events = []
    for frame in (await resp.text()).split("\n\n"):
        fields = dict(
            line.partition(": ")[::2] for line in frame.splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            events.append({"type": fields["event"], "data": json.loads(fields["data"])})
    return events


async def test_an_after_hours_customer_who_gets_a_ticket_shows_the_automatic_reply(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    work: Callable[[], Any],
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.AH", text="Are you open?")
    await work()
    [offer] = graph.messages
    clock.at = TUE_10 + timedelta(seconds=5)
    await customer_writes(client, TUE_10, wamid="wamid.DAY", text="Hello again")
    await work()
    detail = await only_ticket(client)
    shown = [(m["author"], m["kind"], m["context"], m["text"]) for m in detail["messages"]]
    assert shown == [
        ("customer", None, True, "Are you open?"),
        (
            "bot",
            "after_hours",
            True,
            offer["interactive"]["body"]["text"] + "\n[Notify me]",
        ),
        ("customer", None, False, "Hello again"),
    ]
    # Backwards compatible: the fields clients read before are all there.
    assert {"id", "direction", "at", "agent_id", "text", "type"} <= set(detail["messages"][1])
    assert detail["messages"][1]["direction"] == "out"
    assert detail["messages"][1]["status"] == "accepted"

    # Delivery state follows the status webhooks (one way: read, then a late delivered).
    bot_id = detail["messages"][1]["id"]
    for status in ("read", "delivered"):
        await status_webhook(client, bot_id, status)
        await work()
    assert (await only_ticket(client))["messages"][1]["status"] == "read"

    # The PDF transcript shows the same conversation, the automatic message marked.
    resp = await client.get(f"/api/v1/tickets/{detail['id']}/transcript.pdf", headers=ADMIN)
    assert resp.status == 200
    text = text_of(await resp.read())
    assert "Automatic message" in text
    assert text.index("Are you open?") < text.index("We are closed") < text.index("Hello again")
    assert text.count("Automatic message") == 1


async def test_a_callback_ticket_opens_with_the_after_hours_messages(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Callable[[], Any],
    redis: Any,
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.CB0", text="My order is late")
    await work()
    tap = MON_20 + timedelta(minutes=1)
    clock.at = tap + timedelta(seconds=5)
    await customer_writes(client, tap, wamid="wamid.CB1", text="Notify me", button=NOTIFY_BUTTON_ID)
    await work()
    clock.at = TUE_09 + timedelta(seconds=1)
    rows = await client.get(f"/api/v1/numbers/{PNID}/after-hours-contacts", headers=ADMIN)
    [row] = (await rows.json())["items"]
    await make_due(redis, queue.run_callback_job_id(PNID, row["id"]))
    await work()
    detail = await only_ticket(client)
    assert detail["source"] == "callback"
    shown = [(m["author"], m["kind"], m["context"]) for m in detail["messages"]]
    assert shown == [
        ("customer", None, True),
        ("bot", "after_hours", True),
        ("customer", None, True),
        ("bot", "notify_confirm", True),
    ]
    assert detail["messages"][0]["text"] == "My order is late"
    assert "Done! We will get back to you" in detail["messages"][3]["text"]


async def test_conversation_events_reach_the_agent_once_each(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    work: Callable[[], Any],
    deps: Deps,
    redis: Any,
) -> None:
    await setup_number(client)
    ana = await agent_online(client)
    clock.at = TUE_10 + timedelta(seconds=5)
    long_text = "x" * 300
    await customer_writes(client, TUE_10, wamid="wamid.EV1", text=long_text)
    await work()
    detail = await only_ticket(client)
    ticket_id = detail["id"]
    # The open_ticket job run again (a retry after a crash before it finished): no new event.
    again = await open_ticket(
        {deps_key: deps},
        {
            "phone_number_id": PNID,
            "contact": CUSTOMER,
            "wa_id": CUSTOMER,
            "natural_key": "wamid.EV1",
            "wamid": "wamid.EV1",
            "at": TUE_10.isoformat(),
        },
    )
    assert again == f"duplicate:{ticket_id}"

    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"text": "Hi, Ana here"}, headers=ana
    )
    assert resp.status == 202, await resp.text()
    reply_id = (await resp.json())["id"]
    await work()
    [sent] = [m for m in graph.messages if m.get("text", {}).get("body") == "Hi, Ana here"]
    assert sent
    meta_id = (await deps.stores.sends.outcome(reply_id)) or ""
    await status_webhook(client, meta_id, "delivered")
    await work()
    # The status job run again: the state is announced once.
    claim = f"{meta_id}:delivered"
    assert await redis.exists(keys.status_claim(claim))
    await apply_status_update({deps_key: deps, "enqueue_time": clock.now()}, claim)

    events = [e for e in await events_of(client) if e["type"].startswith("message.")]
    assert [(e["type"], e["data"].get("status")) for e in events] == [
        ("message.in", None),
        ("message.status", "accepted"),
        ("message.status", "delivered"),
    ]
    assert all(e["data"]["phone_number_id"] == PNID for e in events)
    assert all(e["data"]["ticket_id"] == ticket_id for e in events)
    arrived = events[0]["data"]
    assert arrived["message_id"] == "wamid.EV1"
    assert arrived["wa_id"] == CUSTOMER
    assert arrived["type"] == "text"
    assert arrived["text"] == long_text[:200]
    assert {e["data"]["message_id"] for e in events[1:]} == {reply_id}

    # The ticket shows the agent's reply as delivered.
    [reply] = [m for m in (await only_ticket(client))["messages"] if m["id"] == reply_id]
    assert (reply["author"], reply["status"]) == ("agent", "delivered")


async def test_a_failed_message_shows_metas_error_title(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Callable[[], Any],
    deps: Deps,
) -> None:
    await setup_number(client)
    ana = await agent_online(client)
    clock.at = TUE_10 + timedelta(seconds=5)
    await customer_writes(client, TUE_10, wamid="wamid.F1")
    await work()
    ticket_id = (await only_ticket(client))["id"]
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"text": "Hello"}, headers=ana
    )
    reply_id = (await resp.json())["id"]
    await work()
    meta_id = (await deps.stores.sends.outcome(reply_id)) or ""
    await status_webhook(
        client,
        meta_id,
        "failed",
        errors=[{"code": 131026, "title": "Message undeliverable"}],
    )
    await work()
    [reply] = [m for m in (await only_ticket(client))["messages"] if m["id"] == reply_id]
    assert (reply["status"], reply["error"]) == ("failed", "Message undeliverable")
    [failed] = [e for e in await events_of(client) if e["data"].get("status") == "failed"]
    assert failed["type"] == "message.status"
    assert failed["data"]["error"] == "Message undeliverable"
    assert failed["data"]["message_id"] == reply_id


async def test_absence_spares_customers_already_served_but_not_new_ones(
    client: TestClient[Any, Any],
    graph: FakeGraphAPI,
    clock: FixedClock,
    work: Callable[[], Any],
) -> None:
    # A customer is being served by ana; then absence is switched on (the default keeps it off
    # customers in service), and both the served customer and a new one write.
    await setup_number(client)
    await agent_online(client)
    clock.at = MON_10 + timedelta(seconds=5)
    await customer_writes(client, MON_10, wamid="wamid.SV1")
    await work()
    served = await only_ticket(client)
    assert served["status"] == "open"
    assert served["agent_id"] == "ana"
    absence = {"absence": {"enabled": True, "message": "Ana is on vacation."}}
    resp = await client.patch(f"/api/v1/numbers/{PNID}", json=absence, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    later = MON_10 + timedelta(minutes=5)
    clock.at = later + timedelta(seconds=5)
    await customer_writes(client, later, wamid="wamid.SV2")
    newcomer = build_payload(
        phone_number_id=PNID,
        wa_id="5511911112222",
        name="Bia",
        text="Oi",
        timestamp=int(later.timestamp()),
        message_id="wamid.NEW1",
    )
    assert (await post_webhook(client, newcomer)).status == 200
    await work()
    texts = {m["to"]: m.get("text", {}).get("body", "") for m in graph.messages}
    assert "+" + CUSTOMER not in texts  # served: no absence reply, no card for someone else
    assert texts["+5511911112222"].startswith("Ana is on vacation.")
