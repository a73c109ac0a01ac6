"""/api/v1 tickets: listing, reading with messages, replying (window, holder), closing,
transferring, portfolios, and who may do each."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.constants import job_key_prefix

from bot.appkeys import queue_key, stores_key
from bot.domain.clock import FixedClock
from bot.domain.models import InboundMessage
from bot.domain.tickets import TicketRequest
from storage import Stores
from tests.api.conftest import ADMIN, N1, N2, Desk

_ids = itertools.count()


def to_ms(at: datetime) -> datetime:
    """`at` at the millisecond precision tickets keep."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def stores_of(client: TestClient[Any, Any]) -> Stores:
    return client.app[stores_key]


async def customer_writes(
    client: TestClient[Any, Any], clock: FixedClock, n: int = 1, *, number: str = N1
) -> str:
    """What the inbound job does for a message in service hours: timeline, contact, ticket."""
    wa_id = f"55119{n:08d}"
    wamid = f"wamid.T{next(_ids)}"
    message = InboundMessage.from_claim(
        {
            "phone_number_id": number,
            "contact": {"wa_id": wa_id, "profile": {"name": f"Customer {n}"}},
            "message": {
                "id": wamid,
                "from": wa_id,
                "timestamp": str(int(clock.now().timestamp())),
                "type": "text",
                "text": {"body": f"hello from {n}"},
            },
        }
    )
    stores = stores_of(client)
    await stores.timeline.add_inbound(message)
    contact = await stores.contacts.upsert_from_inbound(message)
    opened = await stores.tickets.open_or_attach(
        TicketRequest(
            phone_number_id=number,
            contact=contact.key,
            wa_id=wa_id,
            name=contact.name,
            natural_key=wamid,
            wamid=wamid,
            at=message.timestamp,
        ),
        now=clock.now(),
    )
    return opened.ticket_id


async def online(client: TestClient[Any, Any], agent_id: str) -> None:
    resp = await client.put(
        f"/api/v1/agents/{agent_id}/status", json={"status": "online"}, headers=ADMIN
    )
    assert resp.status == 200, await resp.text()


async def error_of(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    error: dict[str, Any] = (await resp.json())["error"]
    return error


async def test_listing_by_status(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")  # two slots
    served = [await customer_writes(client, clock, i) for i in range(2)]
    waiting = await customer_writes(client, clock, 2)
    resp = await client.get(
        f"/api/v1/numbers/{N1}/tickets?status=open", headers=desk.headers("ana")
    )
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert sorted(t["id"] for t in items) == sorted(served)
    assert {t["agent_id"] for t in items} == {"ana"}
    resp = await client.get(
        f"/api/v1/numbers/{N1}/tickets?status=waiting", headers=desk.headers("ana")
    )
    [item] = (await resp.json())["items"]
    assert item["id"] == waiting
    assert item["contact"] == {
        "wa_id": "5511900000002",
        "name": "Customer 2",
        "phone": "+5511900000002",
    }
    assert set(item) >= {
        "id", "status", "agent_id", "contact", "created_at", "assigned_at",
        "first_response_at", "closed_at",
    }  # fmt: skip
    resp = await client.get(f"/api/v1/numbers/{N1}/tickets", headers=desk.headers("mara"))
    assert len((await resp.json())["items"]) == 3


@pytest.mark.parametrize(
    ("who", "status"), [("bob", 403), ("anonymous", 401), ("bad_token", 401), ("ana", 200)]
)
async def test_only_the_numbers_people_list_its_tickets(
    client: TestClient[Any, Any], desk: Desk, who: str, status: int
) -> None:
    resp = await client.get(f"/api/v1/numbers/{N1}/tickets", headers=desk.headers(who))
    assert resp.status == status


async def test_an_unknown_status_is_a_422_naming_it(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.get(f"/api/v1/numbers/{N1}/tickets?status=pending", headers=ADMIN)
    assert (await error_of(resp, 422))["field"] == "status"


async def test_a_ticket_is_read_with_its_messages(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    resp = await client.get(f"/api/v1/tickets/{ticket_id}", headers=desk.headers("ana"))
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == ticket_id
    assert body["status"] == "waiting"
    assert [(m["direction"], m["text"]) for m in body["messages"]] == [("in", "hello from 1")]
    assert [h["type"] for h in body["history"]] == ["created"]
    # Another number's ticket is as missing to bob as one that does not exist.
    assert (
        await client.get(f"/api/v1/tickets/{ticket_id}", headers=desk.headers("bob"))
    ).status == 404
    assert (await client.get("/api/v1/tickets/T404", headers=ADMIN)).status == 404


async def test_the_serving_agent_replies_through_the_outbox(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/messages"
    resp = await client.post(url, json={"text": "Hi, Ana here"}, headers=desk.headers("ana"))
    assert resp.status == 202, await resp.text()
    sent = await resp.json()
    assert sent["first_response"] is True
    stores = stores_of(client)
    assert await client.app[queue_key].exists(job_key_prefix + f"reply:{sent['id']}")
    ticket = await stores.tickets.get(ticket_id)
    assert ticket is not None
    assert ticket.first_response_at == to_ms(clock.now())
    assert await stores.throttle.agent_active(N1, "5511900000001")
    assert await stores.tickets.owner(N1, "5511900000001") == "ana"
    second = await client.post(url, json={"text": "Still here"}, headers=desk.headers("ana"))
    assert (await second.json())["first_response"] is False


async def test_a_retried_reply_with_its_key_is_sent_once(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/messages"
    headers = {**desk.headers("ana"), "Idempotency-Key": "k-1"}
    first = await (await client.post(url, json={"text": "Hi"}, headers=headers)).json()
    again = await client.post(url, json={"text": "Hi"}, headers=headers)
    assert again.status == 202
    assert (await again.json())["id"] == first["id"]
    messages = await stores_of(client).tickets.messages(ticket_id)
    assert [m.direction for m in messages] == ["in", "out"]
    bad = await client.post(url, json={"text": "Hi"}, headers={**headers, "Idempotency-Key": "a b"})
    assert (await error_of(bad, 422))["field"] == "Idempotency-Key"


async def test_another_agent_cannot_message_a_served_contact(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/messages"
    resp = await client.post(url, json={"text": "me too"}, headers=desk.headers("mara"))
    error = await error_of(resp, 409)
    assert error["code"] == "served_by_another"
    assert "Ana" in error["message"]
    resp = await client.post(url, json={"text": "me too"}, headers=desk.headers("bob"))
    assert resp.status == 404


async def test_no_free_text_outside_the_24_hour_window(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    clock.advance(timedelta(hours=24, seconds=1))
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"text": "late"}, headers=desk.headers("ana")
    )
    assert (await error_of(resp, 409))["code"] == "window_closed"
    assert [m.direction for m in await stores_of(client).tickets.messages(ticket_id)] == ["in"]


async def test_a_waiting_ticket_cannot_be_answered(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"text": "hi"}, headers=desk.headers("ana")
    )
    assert (await error_of(resp, 409))["code"] == "not_assigned"


async def test_a_blank_reply_is_a_422_naming_text(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"text": "  "}, headers=ADMIN
    )
    assert (await error_of(resp, 422))["field"] == "text"


async def test_closing_frees_the_slot_for_the_oldest_waiting(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    held = [await customer_writes(client, clock, i) for i in range(2)]
    waiting = await customer_writes(client, clock, 2)
    url = f"/api/v1/tickets/{held[0]}/close"
    assert (await client.post(url, headers=desk.headers("bob"))).status == 404
    resp = await client.post(url, headers=desk.headers("ana"))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["status"], body["closed_by"]) == ("closed", "agent")
    assert datetime.fromisoformat(body["closed_at"]) == to_ms(clock.now())
    pulled = await stores_of(client).tickets.get(waiting)
    assert pulled is not None
    assert pulled.agent_id == "ana"
    # Idempotent.
    assert (await client.post(url, headers=desk.headers("ana"))).status == 200


async def test_an_agent_cannot_close_someone_elses_ticket(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "mara")
    ticket_id = await customer_writes(client, clock, 1)  # -> mara (ana is invisible)
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/close", headers=desk.headers("ana"))
    assert resp.status == 403
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/close", json={"closed_by": "customer"}, headers=ADMIN
    )
    assert (await resp.json())["status"] == "abandoned"


async def test_transfer_to_another_agent_and_back_to_the_queue(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/transfer"
    ana = desk.headers("ana")
    # mara is invisible: she cannot take it.
    resp = await client.post(url, json={"agent_id": "mara"}, headers=ana)
    assert (await error_of(resp, 409))["code"] == "agent_unavailable"
    await online(client, "mara")
    resp = await client.post(url, json={"agent_id": "mara"}, headers=ana)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["agent_id"] == "mara"
    # ana no longer holds it: she may not move it again.
    assert (await client.post(url, json={"queue": N1}, headers=ana)).status == 403
    resp = await client.post(url, json={"queue": N1}, headers=desk.headers("mara"))
    body = await resp.json()
    # Back in the queue, then straight to ana (mara gave it away and is not offered it).
    assert (body["status"], body["agent_id"]) == ("open", "ana")
    detail = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    moves = [(h["type"], h["from_agent"], h["to_agent"]) for h in detail["history"]]
    assert moves == [
        ("created", None, None),
        ("routed", None, None),
        ("transferred", "ana", "mara"),
        ("transferred", "mara", None),
        ("routed", None, None),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"agent_id": "mara", "queue": N1}, None),
        ({}, None),
        ({"queue": N2}, "queue"),
        ({"agent_id": "nobody"}, "agent_id"),
        ({"agent_id": "not an id"}, "agent_id"),
    ],
)
async def test_a_bad_transfer_is_a_422(
    client: TestClient[Any, Any],
    desk: Desk,
    clock: FixedClock,
    body: dict[str, Any],
    field: str | None,
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/transfer", json=body, headers=ADMIN)
    assert (await error_of(resp, 422)).get("field") == field


async def test_transfer_to_an_agent_of_another_number_is_a_409(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/transfer", json={"agent_id": "bob"}, headers=ADMIN
    )
    assert (await error_of(resp, 409))["code"] == "not_attached"


async def test_managers_set_the_portfolio_owner(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    url = f"/api/v1/numbers/{N1}/contacts/5511900000001/owner"
    assert (
        await client.put(url, json={"agent_id": "ana"}, headers=desk.headers("ana"))
    ).status == 403
    resp = await client.put(url, json={"agent_id": "bob"}, headers=desk.headers("mara"))
    assert (await error_of(resp, 422))["field"] == "agent_id"
    resp = await client.put(url, json={"agent_id": "mara"}, headers=desk.headers("mara"))
    assert resp.status == 200
    assert (await resp.json())["agent_id"] == "mara"
    # mara owns the customer: she gets them although ana has been waiting longer.
    await online(client, "ana")
    await online(client, "mara")
    ticket_id = await customer_writes(client, clock, 1)
    ticket = await stores_of(client).tickets.get(ticket_id)
    assert ticket is not None
    assert ticket.agent_id == "mara"
    resp = await client.put(url, json={"agent_id": None}, headers=ADMIN)
    assert (await resp.json())["agent_id"] is None
    assert await stores_of(client).tickets.owner(N1, "5511900000001") is None
