"""Read receipts and typing (issue 19): the agent holding a ticket opening it marks the
customer's last message read on WhatsApp, once per message; typing shows WhatsApp's typing
indicator, throttled; nobody else's reading marks anything, and the number can turn both off."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.deps import open_deps
from bot.domain.clock import FixedClock
from bot.runtime.outbox import SandboxOutbox
from bot.settings import Settings
from storage import Stores
from tests.api.test_conversation import ADMIN, TUE_10, agent_online
from tests.console.conftest import HTMX, sign_in
from tests.flows.test_rules import PNID, customer_writes, setup_number
from tests.graph_fake import FakeGraphAPI


@pytest.fixture(name="work")
def fixture_work(make_worker: Callable[..., Worker]) -> Callable[[], Any]:
    async def run() -> None:
        await make_worker().run_check()

    return run


def reads(graph: FakeGraphAPI) -> list[dict[str, Any]]:
    """The read statuses Graph received (with or without a typing indicator)."""
    assert all(m["status"] == "read" for m in graph.read_statuses)
    return graph.read_statuses


async def served_ticket(
    client: TestClient[Any, Any],
    clock: FixedClock,
    work: Callable[[], Any],
    **number: Any,
) -> tuple[str, dict[str, str]]:
    """A number in service, `ana` online and holding the ticket of a customer who wrote twice;
    the ticket id and ana's headers."""
    await setup_number(client, **number)
    ana = await agent_online(client)
    clock.at = TUE_10 + timedelta(seconds=5)
    await customer_writes(client, TUE_10, wamid="wamid.R1", text="Hello")
    await customer_writes(client, TUE_10 + timedelta(seconds=2), wamid="wamid.R2", text="Hi?")
    await work()
    resp = await client.get(f"/api/v1/numbers/{PNID}/tickets", headers=ADMIN)
    [item] = (await resp.json())["items"]
    assert item["agent_id"] == "ana"
    return item["id"], ana


async def test_the_holder_opening_a_ticket_marks_the_last_message_read_once(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    assert reads(graph) == []
    for _ in range(2):
        resp = await client.get(f"/api/v1/tickets/{ticket_id}", headers=ana)
        assert resp.status == 200, await resp.text()
        await work()
    # Opened twice (the second time after the first read went out): one Graph call.
    assert reads(graph) == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.R2"}
    ]
    [request] = [r for r in graph.requests if r.json.get("status") == "read"]
    assert request.path.endswith(f"/{PNID}/messages")


async def test_the_console_opening_a_ticket_marks_it_read_once(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    await sign_in(client, ana["Authorization"].removeprefix("Bearer "))
    resp = await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)
    assert resp.status == 200, await resp.text()
    await work()
    resp = await client.get(f"/console/tickets/{ticket_id}/conversation", headers=HTMX)
    assert resp.status == 200, await resp.text()
    await work()
    assert [m["message_id"] for m in reads(graph)] == ["wamid.R2"]


async def test_others_reading_the_ticket_mark_nothing(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, _ = await served_ticket(client, clock, work)
    body = {"name": "Mara", "numbers": [PNID], "role": "manager", "slots": 2}
    assert (await client.put("/api/v1/agents/mara", json=body, headers=ADMIN)).status in (200, 201)
    resp = await client.post("/api/v1/agents/mara/tokens", headers=ADMIN)
    mara = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    for headers in (ADMIN, mara):
        resp = await client.get(f"/api/v1/tickets/{ticket_id}", headers=headers)
        assert resp.status == 200, await resp.text()
        resp = await client.post(f"/api/v1/tickets/{ticket_id}/typing", headers=headers)
        assert (resp.status, await resp.json()) == (202, {"typing": "off"})
    await work()
    assert reads(graph) == []


async def test_read_receipts_off_sends_none(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work, tickets={"read_receipts": False})
    assert (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ana)).status == 200
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/typing", headers=ana)
    assert (resp.status, await resp.json()) == (202, {"typing": "off"})
    await work()
    assert reads(graph) == []


async def test_typing_is_throttled_per_ticket(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    answers = []
    for _ in range(3):
        resp = await client.post(f"/api/v1/tickets/{ticket_id}/typing", headers=ana)
        assert resp.status == 202, await resp.text()
        answers.append((await resp.json())["typing"])
    assert answers == ["sent", "throttled", "throttled"]
    await work()
    assert reads(graph) == [
        {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": "wamid.R2",
            "typing_indicator": {"type": "text"},
        }
    ]
    # The typing indicator marked the message read: opening the ticket now calls Graph no more.
    assert (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ana)).status == 200
    await work()
    assert len(reads(graph)) == 1


async def test_no_typing_outside_the_24_hour_window(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    clock.at = TUE_10 + timedelta(hours=25)
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/typing", headers=ana)
    assert (resp.status, await resp.json()) == (202, {"typing": "off"})
    await work()
    assert reads(graph) == []


@pytest.fixture(name="sandbox_stores")
async def fixture_sandbox_stores(settings: Settings) -> AsyncIterator[tuple[Any, Stores]]:
    sandbox = settings.model_copy(update={"access_token": None})
    async with open_deps(sandbox) as deps:
        yield deps.outbox, deps.stores


async def test_the_sandbox_keeps_read_statuses(
    sandbox_stores: tuple[Any, Stores],
) -> None:
    outbox, stores = sandbox_stores
    assert isinstance(outbox, SandboxOutbox)
    await outbox.mark_read(PNID, "wamid.S1", typing=True)
    [kept] = await stores.sandbox.latest()
    assert kept["phone_number_id"] == PNID
    assert kept["body"] == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.S1",
        "typing_indicator": {"type": "text"},
    }


async def test_a_read_status_meta_refuses_is_not_tried_again(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    graph.fail_next(400, 131009)  # a permanent error: retrying cannot help
    for _ in range(2):
        assert (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ana)).status == 200
        await work()  # run_check: the refusal is no failed job (nothing dead-lettered)
    assert len(reads(graph)) == 1


async def test_typing_in_the_console_reply_box_shows_typing_once(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    csrf = await sign_in(client, ana["Authorization"].removeprefix("Bearer "))
    html = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    assert f'hx-post="/console/tickets/{ticket_id}/typing"' in html
    await work()  # the opening's read status
    for _ in range(2):
        resp = await client.post(
            f"/console/tickets/{ticket_id}/typing", headers={**HTMX, "X-CSRF-Token": csrf}
        )
        assert resp.status == 204, await resp.text()
    await work()
    assert [m.get("typing_indicator") for m in reads(graph)] == [None, {"type": "text"}]


async def test_the_console_settings_turn_read_receipts_off(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Any
) -> None:
    ticket_id, ana = await served_ticket(client, clock, work)
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    page = await (await client.get(f"/console/numbers/{PNID}/settings")).text()
    assert 'name="tickets.read_receipts"' in page
    resp = await client.post(
        f"/console/numbers/{PNID}/settings/tickets",
        data={"csrf": csrf},  # the switch unticked
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    number = await (await client.get(f"/api/v1/numbers/{PNID}", headers=ADMIN)).json()
    assert number["tickets"]["read_receipts"] is False
    await sign_in(client, ana["Authorization"].removeprefix("Bearer "))
    html = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    assert "/typing" not in html
    await work()
    assert reads(graph) == []
