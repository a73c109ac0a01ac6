"""The console's contact page (issue 19): the 90-day conversation in the number's time zone,
the search within it, and the resume component of each of the seed's five cases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.api.conftest import ADMIN, N1
from tests.api.test_contacts import seed
from tests.api.test_tickets import customer_writes, online
from tests.console.conftest import HTMX, Desk, sign_in
from tests.graph_fake import FakeGraphAPI

Work = Callable[[], Awaitable[int]]
WABA = "waba-1"
FOLLOW_UP = {
    "name": "follow_up",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Olá {{1}}, tudo bem?"}],
}
CONTACT = "5511900000001"  # customer_writes(n=1)
PAGE = f"/console/contacts/{N1}/{CONTACT}"


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP]
    return make_settings(waba_id=WABA)


async def page(client: TestClient[Any, Any], url: str = PAGE, **params: str) -> str:
    resp = await client.get(url, params=params)
    html = await resp.text()
    assert resp.status == 200, html
    return html


def case_of(html: str) -> str:
    start = html.index('id="resume" data-case="') + len('id="resume" data-case="')
    return html[start : html.index('"', start)]


async def test_reply_case_shows_the_reply_form_of_the_ticket(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, work: Work
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    await sign_in(client, desk.token("ana"))
    html = await page(client)
    assert case_of(html) == "reply"
    assert f'action="/console/tickets/{ticket_id}/reply"' in html
    assert "hello from 1" in html
    assert "In service with <strong>Ana</strong>" in html
    # The number's zone (America/Sao_Paulo, UTC-3) for the times shown.
    local = (clock.now() - timedelta(hours=3)).strftime("%d %b %H:%M")
    assert f">{local}</time>" in html
    assert "Send active message" not in html
    # The form is the Tickets page's reply: it goes through the same service.
    csrf = await sign_in(client, desk.token("ana"))
    resp = await client.post(
        f"/console/tickets/{ticket_id}/reply",
        data={"csrf": csrf, "text": "Olá!"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    await work()  # the timeline holds what went out
    assert "Olá!" in await page(client)


async def test_window_expired_warns_and_offers_the_active_message(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    await customer_writes(client, clock, 1)
    clock.advance(timedelta(hours=25))
    await sign_in(client, desk.token("ana"))
    html = await page(client)
    assert case_of(html) == "window_expired"
    assert "The conversation has expired." in html
    assert f'href="{PAGE}/message"' in html
    assert "reply-text" not in html


async def test_served_by_another_names_the_agent_and_offers_a_transfer_request(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    await sign_in(client, desk.token("mara"))
    html = await page(client)
    assert case_of(html) == "served_by_another"
    assert "being served by <strong>Ana</strong>" in html
    assert f'action="/console/tickets/{ticket_id}/transfer-request"' in html
    assert "Request transfer" in html
    assert "hello from 1" in html  # the history stays visible
    assert "reply-text" not in html
    assert "Send active message" not in html


async def test_not_in_service_and_no_history_offer_the_active_message(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, redis: aioredis.Redis
) -> None:
    await customer_writes(client, clock, 1)  # nobody online: waiting in the queue
    await seed(redis, "5511987654321", "João", clock.now() - timedelta(days=91), text="antiga")
    await sign_in(client, desk.token("ana"))
    html = await page(client)
    assert case_of(html) == "not_in_service"
    assert "Waiting in the queue" in html
    assert "not in service" in html
    html = await page(client, f"/console/contacts/{N1}/5511987654321")
    assert case_of(html) == "no_history"
    assert "No conversation history." in html
    assert "antiga" not in html  # older than 90 days
    # The dialog has the contact's number already filled in.
    resp = await client.get(f"/console/contacts/{N1}/5511987654321/message", headers=HTMX)
    form = await resp.text()
    assert resp.status == 200, form
    assert "Active message to João" in form
    assert "5511987654321" in form


async def test_the_search_filters_the_conversation(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, redis: aioredis.Redis
) -> None:
    wa_id = "5511987654321"
    await seed(redis, wa_id, "João", clock.now() - timedelta(days=1), text="Meu pedido 42")
    await seed(redis, wa_id, "João", clock.now(), text="obrigado")
    await sign_in(client, desk.token("ana"))
    url = f"/console/contacts/{N1}/{wa_id}"
    html = await page(client, url, q="PÉDIDO")
    assert "Meu pedido 42" in html
    assert "obrigado" not in html
    assert "1 match for" in html
    assert "obrigado" in await page(client, url)


async def test_an_agent_of_another_number_gets_403_and_search_hits_link_here(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await customer_writes(client, clock, 1)
    await sign_in(client, desk.token("bob"))
    assert (await client.get(PAGE)).status == 403
    assert (await client.get(f"{PAGE}/message")).status == 403
    await sign_in(client, desk.token("ana"))
    assert (await client.get(f"/console/contacts/{N1}/5511999999999")).status == 404
    html = await page(client, "/console/contacts", q="Customer")
    assert f'href="/console/contacts/{N1}/' in html


async def test_the_active_message_goes_out_from_the_contact_page(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, work: Work, graph: FakeGraphAPI
) -> None:
    await customer_writes(client, clock, 1)
    clock.advance(timedelta(days=2))
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    data = {"csrf": csrf, "template": "follow_up|pt_BR", "variables[0]": "Carla"}
    resp = await client.post(f"{PAGE}/message", data=data, headers=HTMX)
    assert resp.status == 200, await resp.text()
    assert "Active message queued" in await resp.text()
    before = len(graph.messages)
    await work()
    [body] = [m for m in graph.messages[before:] if m.get("type") == "template"]
    assert body["to"] == f"+{CONTACT}"
    assert body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "Carla"}]
    # The same 24-hour rule as the after-hours dialog: a second send asks first.
    resp = await client.post(f"{PAGE}/message", data=data, headers=HTMX)
    assert resp.status == 409
    assert "Send it again anyway" in await resp.text()
    # A missing variable is shown next to its field, nothing queued.
    data["variables[0]"] = " "
    resp = await client.post(f"{PAGE}/message", data={**data, "force": "on"}, headers=HTMX)
    assert resp.status == 422
