"""/api/v1 internal notes on tickets and contacts (issue 19): written and read by whoever reads
the ticket or the number's contacts, idempotent on `Idempotency-Key`, limited to 4,096
characters, and never sent to the customer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.appkeys import queue_key
from bot.domain.clock import FixedClock
from storage import keys
from tests.api.conftest import ADMIN, N1, Desk
from tests.api.test_tickets import customer_writes, error_of, online
from tests.graph_fake import FakeGraphAPI

CONTACT = "5511900000001"  # customer_writes(n=1)
CONTACT_NOTES = f"/api/v1/numbers/{N1}/contacts/{CONTACT}/notes"


async def test_a_ticket_note_is_written_and_read_by_the_number_s_people(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/notes"
    resp = await client.post(url, json={"text": "asked for a refund"}, headers=desk.headers("ana"))
    assert resp.status == 201, await resp.text()
    note = await resp.json()
    assert note["author"] == "ana"
    assert note["text"] == "asked for a refund"
    clock.advance(timedelta(minutes=1))
    # A manager who does not hold the ticket may add one too: notes are not replies.
    resp = await client.post(url, json={"text": "approved"}, headers=desk.headers("mara"))
    assert resp.status == 201, await resp.text()
    listed = await client.get(url, headers=desk.headers("ana"))
    assert listed.status == 200
    items = (await listed.json())["items"]
    assert [(n["author"], n["text"]) for n in items] == [
        ("ana", "asked for a refund"),
        ("mara", "approved"),
    ]
    # Another number's agent: the ticket does not exist for them, nor its notes.
    for method in ("GET", "POST"):
        resp = await client.request(method, url, json={"text": "x"}, headers=desk.headers("bob"))
        assert (await error_of(resp, 404))["code"]


async def test_a_retried_note_with_its_key_is_stored_once(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/notes"
    headers = {**desk.headers("ana"), "Idempotency-Key": "n-1"}
    first = await client.post(url, json={"text": "call back at 3"}, headers=headers)
    assert first.status == 201
    again = await client.post(url, json={"text": "call back at 3"}, headers=headers)
    assert again.status == 200
    assert await again.json() == await first.json()
    # The same key from somebody else is their own note.
    other = await client.post(
        url, json={"text": "noted"}, headers={**desk.headers("mara"), "Idempotency-Key": "n-1"}
    )
    assert other.status == 201
    listed = await (await client.get(url, headers=ADMIN)).json()
    assert len(listed["items"]) == 2
    bad = await client.post(url, json={"text": "x"}, headers={**headers, "Idempotency-Key": "a b"})
    assert (await error_of(bad, 422))["field"] == "Idempotency-Key"


async def test_note_text_is_1_to_4096_characters(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/notes"
    headers = desk.headers("ana")
    assert (await client.post(url, json={"text": "x" * 4096}, headers=headers)).status == 201
    for body in ({"text": "x" * 4097}, {"text": "  "}, {}, {"text": 5}):
        resp = await client.post(url, json=body, headers=headers)
        assert (await error_of(resp, 422))["field"] == "text", body
    resp = await client.post(url, json={"text": "ok", "to": "x"}, headers=headers)
    assert resp.status == 422
    for path in (CONTACT_NOTES,):
        resp = await client.post(path, json={"text": "x" * 4097}, headers=headers)
        assert (await error_of(resp, 422))["field"] == "text"


async def test_contact_notes_follow_the_number_s_permissions_and_90_days(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await customer_writes(client, clock, 1)
    resp = await client.post(CONTACT_NOTES, json={"text": "VIP"}, headers=desk.headers("ana"))
    assert resp.status == 201, await resp.text()
    listed = await client.get(CONTACT_NOTES, headers=desk.headers("mara"))
    assert [n["text"] for n in (await listed.json())["items"]] == ["VIP"]
    # Outside the caller's numbers: 403, as for the number's other contact endpoints.
    for method in ("GET", "POST"):
        resp = await client.request(
            method, CONTACT_NOTES, json={"text": "x"}, headers=desk.headers("bob")
        )
        assert resp.status == 403
    unknown = f"/api/v1/numbers/{N1}/contacts/5511999999999/notes"
    resp = await client.post(unknown, json={"text": "x"}, headers=desk.headers("ana"))
    assert resp.status == 404
    # Kept like the timeline: 90 days after the last note, and older notes are not shown.
    ttl = await client.app[queue_key].ttl(keys.contact_notes(N1, CONTACT))
    assert keys.CONTACT_NOTES_TTL_S - 60 < ttl <= keys.CONTACT_NOTES_TTL_S
    clock.advance(timedelta(days=91))
    listed = await client.get(CONTACT_NOTES, headers=desk.headers("ana"))
    assert (await listed.json())["items"] == []


async def test_ticket_notes_are_kept_as_long_as_the_ticket(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    url = f"/api/v1/tickets/{ticket_id}/notes"
    assert (await client.post(url, json={"text": "a"}, headers=desk.headers("ana"))).status == 201
    redis = client.app[queue_key]
    assert await redis.ttl(keys.ticket_notes(ticket_id)) == -1  # active: no TTL, as the ticket
    resp = await client.post(f"/api/v1/tickets/{ticket_id}/close", headers=desk.headers("ana"))
    assert resp.status == 200, await resp.text()
    ticket_ttl = await redis.ttl(keys.ticket(ticket_id))
    assert ticket_ttl > 0
    assert abs(await redis.ttl(keys.ticket_notes(ticket_id)) - ticket_ttl) <= 1
    # A note on the closed ticket takes the ticket's remaining time.
    assert (await client.post(url, json={"text": "b"}, headers=desk.headers("ana"))).status == 201
    assert abs(await redis.ttl(keys.ticket_notes(ticket_id)) - ticket_ttl) <= 1


async def test_no_graph_request_ever_carries_a_note(
    client: TestClient[Any, Any],
    desk: Desk,
    clock: FixedClock,
    graph: FakeGraphAPI,
    make_worker: Callable[..., Worker],
) -> None:
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    headers = desk.headers("ana")
    secrets = ("TICKET-NOTE-7f3a", "CONTACT-NOTE-91c2")
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/notes", json={"text": secrets[0]}, headers=headers
    )
    assert resp.status == 201
    resp = await client.post(CONTACT_NOTES, json={"text": secrets[1]}, headers=headers)
    assert resp.status == 201
    resp = await client.post(
        f"/api/v1/tickets/{ticket_id}/messages", json={"text": "Hi, Ana here"}, headers=headers
    )
    assert resp.status == 202
    await make_worker().run_check()
    # The reply went out, so the send path ran; no request of any kind carried a note.
    assert any("Hi, Ana here" in json.dumps(m) for m in graph.messages)
    sent = json.dumps([(r.path, r.json) for r in graph.requests])
    assert not any(s in sent for s in secrets)
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=headers)).json()
    assert not any(s in json.dumps(ticket["messages"]) for s in secrets)
