"""The tickets page: the user's status, the lists, one ticket, reply / close / transfer, and
the live event stream the page follows (the console's SSE proxy)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from tests.after_hours.conftest import ADMIN, PNID, customer_writes, put_agent, setup_number
from tests.console.conftest import HTMX, csrf_of, sign_in
from tests.graph_fake import FakeGraphAPI

Work = Callable[[], Awaitable[int]]
# Tuesday 2026-12-01 10:00 in São Paulo (UTC-3): open.
TUE_10 = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
PAGE = f"/console/numbers/{PNID}/tickets"
LISTS = f"{PAGE}/lists"


@pytest.fixture(name="agents")
async def fixture_agents(client: TestClient[Any, Any], clock: FixedClock) -> dict[str, str]:
    """The number, open now; agents ana and bia (agents), mara (manager): their tokens."""
    clock.at = TUE_10
    await setup_number(client)
    tokens = {}
    for agent_id, role in (("ana", "agent"), ("bia", "agent"), ("mara", "manager")):
        headers = await put_agent(client, agent_id, [PNID], role=role)
        tokens[agent_id] = headers["Authorization"].removeprefix("Bearer ")
    return tokens


async def go_online(client: TestClient[Any, Any], csrf: str) -> None:
    resp = await client.post(
        "/console/status", data={"csrf": csrf, "status": "online"}, headers=HTMX
    )
    assert resp.status == 200, await resp.text()
    assert 'id="status-online" name="status" value="online" checked' in await resp.text()


async def routed_ticket(client: TestClient[Any, Any], work: Work, wamid: str = "wamid.T1") -> str:
    await customer_writes(client, TUE_10, wamid=wamid, text="Preciso de ajuda")
    await work()
    items = (await (await client.get(f"/api/v1/numbers/{PNID}/tickets", headers=ADMIN)).json())[
        "items"
    ]
    ticket_id: str = items[0]["id"]
    return ticket_id


async def test_going_online_routes_the_customer_to_me(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    html = await (await client.get(PAGE)).text()
    assert 'id="status-invisible" name="status" value="invisible" checked' in html
    assert "No ticket of yours right now." in html
    await go_online(client, csrf)
    agent = await (await client.get("/api/v1/agents/ana", headers=ADMIN)).json()
    assert agent["status"] == "online"
    ticket_id = await routed_ticket(client, work)
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    mine = lists[lists.index('id="mine"') : lists.index('id="queue-title"')]
    assert f'data-ticket-id="{ticket_id}"' in mine
    assert "Ana" in mine


async def test_a_waiting_ticket_shows_in_the_queue(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    await sign_in(client, agents["ana"])
    ticket_id = await routed_ticket(client, work)  # nobody is online
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    queue = lists[lists.index('id="queue"') :]
    assert f'data-ticket-id="{ticket_id}" data-status="waiting"' in queue


async def test_reply_goes_out_and_close_frees_the_slot(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work, graph: FakeGraphAPI
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    detail = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    assert "Preciso de ajuda" in detail  # the customer's text, from the timeline
    key = detail.split('name="key" value="')[1].split('"')[0]
    resp = await client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": csrf, "text": "Olá! Como posso ajudar?", "key": key},
        headers=HTMX,
    )
    html = await resp.text()
    assert resp.status == 200, html
    assert "Olá! Como posso ajudar?" in html
    assert 'id="ticket-lists"' in html  # the lists come along, out of band
    # The same form sent twice (a double click) sends once.
    resp = await client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": csrf, "text": "Olá! Como posso ajudar?", "key": key},
        headers=HTMX,
    )
    assert resp.status == 200
    before = len(graph.messages)
    await work()
    texts = [m["text"]["body"] for m in graph.messages[before:] if m["type"] == "text"]
    assert texts == ["Olá! Como posso ajudar?"]
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["first_response_at"] is not None
    resp = await client.post(
        f"/console/tickets/{ticket_id}/close", data={"csrf": csrf}, headers=HTMX
    )
    assert resp.status == 200
    assert 'data-status="closed"' in await resp.text()
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["status"] == "closed"
    assert ticket["closed_by"] == "agent"


async def test_a_reply_outside_the_window_is_refused_and_kept(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work, clock: FixedClock
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    clock.at = TUE_10 + timedelta(hours=25)
    resp = await client.post(
        f"/console/tickets/{ticket_id}/reply", data={"csrf": csrf, "text": "Oi?"}, headers=HTMX
    )
    html = await resp.text()
    assert resp.status == 409
    assert "24-hour window" in html
    assert ">Oi?</textarea>" in html


async def test_another_agent_cannot_reply_and_is_told_who_serves(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    csrf = await sign_in(client, agents["bia"])
    detail = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    assert "Send reply" not in detail
    assert "Close ticket" not in detail
    resp = await client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": csrf, "text": "Eu atendo"},
        headers=HTMX,
    )
    assert resp.status == 409
    assert "being served by Ana" in await resp.text()
    resp = await client.post(
        f"/console/tickets/{ticket_id}/close", data={"csrf": csrf}, headers=HTMX
    )
    assert resp.status == 403


async def test_a_manager_transfers_to_an_agent_and_back_to_the_queue(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    ticket_id = await routed_ticket(client, work)
    csrf = await sign_in(client, agents["bia"])
    await go_online(client, csrf)
    csrf = await sign_in(client, agents["mara"])
    lists = await (await client.get(LISTS, headers=HTMX)).text()
    assert 'id="others"' in lists  # a manager sees everybody's
    resp = await client.post(
        f"/console/tickets/{ticket_id}/transfer", data={"csrf": csrf, "to": "bia"}, headers=HTMX
    )
    assert resp.status == 200, await resp.text()
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["agent_id"] == "bia"
    resp = await client.post(
        f"/console/tickets/{ticket_id}/transfer", data={"csrf": csrf, "to": "queue"}, headers=HTMX
    )
    assert resp.status == 200
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["status"] in ("transferred", "open")  # the queue may route it again at once
    history = [h["type"] for h in ticket["history"]]
    assert history.count("transferred") >= 2
    resp = await client.post(
        f"/console/tickets/{ticket_id}/transfer", data={"csrf": csrf, "to": "nobody"}, headers=HTMX
    )
    assert resp.status == 409
    assert "agent nobody not found" in await resp.text()


async def test_the_administrator_has_no_status(
    client: TestClient[Any, Any], agents: dict[str, str]
) -> None:
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    html = await (await client.get(PAGE)).text()
    assert "My status" not in html
    resp = await client.post("/console/status", data={"csrf": csrf, "status": "online"})
    assert resp.status == 403


async def _next_event(resp: ClientResponse) -> tuple[str, dict[str, Any]]:
    """The next named event of an SSE answer (comments and the retry line skipped)."""
    name, data = "", ""
    async with asyncio.timeout(10):
        while True:
            line = (await resp.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and name:
                return name, json.loads(data)


async def test_the_event_stream_follows_my_tickets_with_the_session_cookie(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    resp = await client.get(
        f"/console/numbers/{PNID}/events", headers={"Accept": "text/event-stream"}
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert await _next_event(resp) == ("ready", {})
    ticket_id = await routed_ticket(client, work)
    name, data = await _next_event(resp)
    assert name == "ticket.routed"
    assert data["ticket_id"] == ticket_id
    assert data["phone_number_id"] == PNID
    assert data["agent_id"] == "ana"
    resp.close()


async def test_a_manager_s_stream_carries_every_agent_s_events(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    await sign_in(client, agents["mara"])
    resp = await client.get(f"/console/numbers/{PNID}/events")
    assert await _next_event(resp) == ("ready", {})
    await routed_ticket(client, work)
    name, data = await _next_event(resp)
    assert (name, data["agent_id"]) == ("ticket.routed", "ana")
    resp.close()


async def test_the_stream_needs_a_session_and_the_number(
    client: TestClient[Any, Any], agents: dict[str, str]
) -> None:
    resp = await client.get(f"/console/numbers/{PNID}/events", allow_redirects=False)
    assert resp.status == 303
    headers = await put_agent(client, "zed", ["9999"])
    await sign_in(client, headers["Authorization"].removeprefix("Bearer "))
    resp = await client.get(f"/console/numbers/{PNID}/events")
    assert resp.status == 403


async def test_quick_replies_are_offered_in_the_reply_box(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work
) -> None:
    csrf = await sign_in(client, agents["ana"])
    await go_online(client, csrf)
    resp = await client.post(
        "/console/quick-replies/categories",
        data={"csrf": csrf, "name": "Saudações"},
        allow_redirects=False,
    )
    assert resp.status == 303
    page = await (await client.get("/console/quick-replies")).text()
    category = page.split('id="category-')[1].split('"')[0]
    resp = await client.post(
        f"/console/quick-replies/categories/{category}/replies",
        data={"csrf": csrf_of(page), "title": "Bom dia", "text": "Bom dia! Em que posso ajudar?"},
        allow_redirects=False,
    )
    assert resp.status == 303
    ticket_id = await routed_ticket(client, work)
    detail = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    assert (
        '<optgroup label="Saudações"><option value="Bom dia! Em que posso ajudar?">Bom dia</option>'
        in detail
    )


async def test_the_event_stream_carries_the_security_headers(
    client: TestClient[Any, Any], agents: dict[str, str]
) -> None:
    await sign_in(client, agents["ana"])
    resp = await client.get(f"/console/numbers/{PNID}/events")
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert resp.headers["Cache-Control"] == "no-cache"  # the stream's own, kept
    resp.close()
    resp = await client.get("/console/select", params={"number": PNID}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["X-Frame-Options"] == "DENY"


async def test_the_ticket_page_shows_the_automatic_reply_that_came_before(
    client: TestClient[Any, Any], agents: dict[str, str], work: Work, clock: FixedClock
) -> None:
    # Monday 20:00 in São Paulo (closed): the after-hours reply; Tuesday 10:00: the ticket.
    evening = TUE_10 - timedelta(hours=14)
    clock.at = evening + timedelta(seconds=5)
    await customer_writes(client, evening, wamid="wamid.EVE", text="Alguém aí?")
    await work()
    clock.at = TUE_10
    await sign_in(client, agents["ana"])
    ticket_id = await routed_ticket(client, work)
    detail = await (await client.get(f"/console/tickets/{ticket_id}", headers=HTMX)).text()
    automatic = detail[detail.index("msg out automatic context") :]
    assert automatic.index('<span class="msg-label">Automatic</span>') < 100
    assert detail.index("Alguém aí?") < detail.index("Automatic") < detail.index("Preciso de ajuda")
