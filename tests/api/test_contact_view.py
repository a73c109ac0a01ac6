"""/api/v1 contact-centred view (issue 19): a contact's 90-day conversation across tickets,
searchable, and the resume case of the seed's "Desk Conversations" (points 3-5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.after_hours.conftest import fixture_work  # noqa: F401 -- the `work` fixture
from tests.api.conftest import N1, Desk, bearer, put_agent
from tests.api.test_contacts import seed
from tests.api.test_tickets import customer_writes, error_of, online
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


async def view(
    client: TestClient[Any, Any], desk: Desk, who: str, wa_id: str = CONTACT, **params: str
) -> dict[str, Any]:
    resp = await client.get(
        f"/api/v1/numbers/{N1}/contacts/{wa_id}/conversation",
        params=params,
        headers=desk.headers(who),
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_in_service_by_the_caller_with_the_window_open_is_reply(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    page = await view(client, desk, "ana")
    assert page["resume"]["case"] == "reply"
    assert page["resume"]["can_reply"] is True
    assert page["resume"]["active_message"] is False
    assert page["ticket"] == {
        "state": "open",
        "ticket_id": ticket_id,
        "agent_id": "ana",
        "agent_name": "Ana",
    }
    assert page["window"]["open"] is True
    until = clock.now().replace(microsecond=0) + timedelta(hours=24)
    assert page["window"]["open_until"] == until.isoformat().replace("+00:00", "Z")
    assert [i["text"] for i in page["items"]] == ["hello from 1"]
    assert page["timezone"] == "America/Sao_Paulo"


async def test_in_service_by_the_caller_after_24_hours_is_window_expired(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    await customer_writes(client, clock, 1)
    clock.advance(timedelta(hours=25))
    page = await view(client, desk, "ana")
    assert page["resume"]["case"] == "window_expired"
    assert page["resume"]["can_reply"] is False
    assert page["resume"]["active_message"] is True
    assert page["resume"]["wa_id"] == CONTACT
    assert page["window"]["open"] is False
    assert page["ticket"]["state"] == "open"


async def test_in_service_by_another_agent_names_them_and_gives_the_ticket_to_request(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    caio = bearer(await put_agent(client, "caio", role="agent", numbers=[N1]))
    resp = await client.get(f"/api/v1/numbers/{N1}/contacts/{CONTACT}/conversation", headers=caio)
    assert resp.status == 200, await resp.text()
    page = await resp.json()
    resume = page["resume"]
    assert resume["case"] == "served_by_another"
    assert resume["can_reply"] is False
    assert resume["active_message"] is False
    assert resume["served_by"] == "Ana"
    assert "Ana" in resume["message"]
    assert resume["transfer_ticket_id"] == ticket_id
    assert [i["text"] for i in page["items"]] == ["hello from 1"]  # history still shown
    # The id is the one the transfer request takes.
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/transfer-requests", headers=caio)
    assert resp.status == 201, await resp.text()
    # A manager who does not hold the ticket is not its server either.
    assert (await view(client, desk, "mara"))["resume"]["case"] == "served_by_another"


async def test_history_without_an_agent_is_not_in_service(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, redis: aioredis.Redis
) -> None:
    # Waiting in the queue (nobody online): not in service yet.
    await customer_writes(client, clock, 1)
    page = await view(client, desk, "ana")
    assert page["ticket"]["state"] == "waiting"
    assert page["ticket"]["agent_name"] is None
    assert page["resume"]["case"] == "not_in_service"
    assert page["resume"]["active_message"] is True
    # No ticket at all, history of last month.
    await seed(redis, "5511987654321", "João", clock.now() - timedelta(days=30))
    page = await view(client, desk, "ana", "5511987654321")
    assert page["ticket"] == {
        "state": "none",
        "ticket_id": None,
        "agent_id": None,
        "agent_name": None,
    }
    assert page["has_history"] is True
    assert page["resume"]["case"] == "not_in_service"


async def test_no_message_within_90_days_is_no_history_with_the_number_filled_in(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, redis: aioredis.Redis
) -> None:
    await seed(redis, "5511987654321", "João", clock.now(), text="velha conversa")
    clock.advance(timedelta(days=91))
    page = await view(client, desk, "ana", "5511987654321")
    assert page["items"] == []
    assert page["has_history"] is False
    assert page["resume"]["case"] == "no_history"
    assert page["resume"]["active_message"] is True
    assert page["resume"]["wa_id"] == "5511987654321"
    assert page["window"] == {"open": False, "open_until": page["window"]["open_until"]}


async def test_search_within_the_conversation_finds_messages_and_notes(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock, redis: aioredis.Redis
) -> None:
    wa_id = "5511987654321"
    await seed(redis, wa_id, "João", clock.now() - timedelta(days=2), text="Meu pedido 42")
    await seed(redis, wa_id, "João", clock.now() - timedelta(days=1), text="obrigado")
    resp = await client.post(
        f"/api/v1/numbers/{N1}/contacts/{wa_id}/notes",
        json={"text": "Pédido urgente, ligar"},
        headers=desk.headers("ana"),
    )
    assert resp.status == 201, await resp.text()
    everything = await view(client, desk, "ana", wa_id)
    assert [i["kind"] for i in everything["items"]] == ["message", "message", "note"]
    page = await view(client, desk, "ana", wa_id, q="PEDIDO")
    assert [(i["kind"], i["text"]) for i in page["items"]] == [
        ("message", "Meu pedido 42"),
        ("note", "Pédido urgente, ligar"),
    ]
    assert page["items"][1]["author"] == "ana"
    assert page["q"] == "PEDIDO"
    # The search never changes the resume case.
    assert page["resume"]["case"] == everything["resume"]["case"] == "not_in_service"
    assert (await view(client, desk, "ana", wa_id, q="boleto"))["items"] == []


async def test_another_number_s_user_gets_403_and_bad_input_a_clear_4xx(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await customer_writes(client, clock, 1)
    base = f"/api/v1/numbers/{N1}/contacts"
    for wa_id in (CONTACT, "5511999999999"):  # existing or not: the same 403
        resp = await client.get(f"{base}/{wa_id}/conversation", headers=desk.headers("bob"))
        assert (await error_of(resp, 403))["code"] == "forbidden"
    resp = await client.get(f"{base}/5511999999999/conversation", headers=desk.headers("ana"))
    await error_of(resp, 404)
    resp = await client.get(
        f"{base}/{CONTACT}/conversation", params={"q": "x" * 101}, headers=desk.headers("ana")
    )
    assert (await error_of(resp, 422))["field"] == "q"
    resp = await client.get(f"{base}/{CONTACT}/conversation")
    await error_of(resp, 401)


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP]
    return make_settings(waba_id=WABA)


async def test_an_active_message_resumes_a_contact_without_history(
    client: TestClient[Any, Any],
    desk: Desk,
    clock: FixedClock,
    redis: aioredis.Redis,
    work: Work,
    graph: FakeGraphAPI,
) -> None:
    await seed(redis, "5511987654321", "João", clock.now())
    clock.advance(timedelta(days=91))
    url = f"/api/v1/numbers/{N1}/contacts/5511987654321/active-message"
    body = {"template": "follow_up", "language": "pt_BR", "variables": ["João"]}
    resp = await client.post(url, json=body, headers=desk.headers("ana"))
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["wa_id"] == "5511987654321"
    await work()
    [sent] = [m for m in graph.messages if m.get("type") == "template"]
    assert sent["to"] == "+5511987654321"
    page = await view(client, desk, "ana", "5511987654321")
    assert [i["message_kind"] for i in page["items"]] == ["active_message"]
    assert page["items"][0]["automatic"] is False
    # The after-hours rules: once per template and contact within 24 hours, unless forced.
    resp = await client.post(url, json=body, headers=desk.headers("ana"))
    assert (await error_of(resp, 409))["code"] == "already_sent"
    resp = await client.post(url, json={**body, "variables": []}, headers=desk.headers("ana"))
    assert (await error_of(resp, 422))["field"] == "variables"
    resp = await client.post(url, json=body, headers=desk.headers("bob"))
    await error_of(resp, 403)
