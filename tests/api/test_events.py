"""GET /api/v1/agents/{id}/events: server-sent events from the agent's Redis stream."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.appkeys import stores_key
from bot.domain.clock import FixedClock
from handlers.sse import KEEPALIVE_S
from tests.api.conftest import ADMIN, N1, Desk
from tests.api.test_tickets import customer_writes, online

STREAM = {"Accept": "text/event-stream"}


async def next_event(resp: ClientResponse) -> dict[str, Any]:
    """The next event frame of a stream (comments and `retry:` skipped)."""
    async with asyncio.timeout(5):
        while True:
            frame = (await resp.content.readuntil(b"\n\n")).decode()
            fields: dict[str, str] = {}
            for line in frame.splitlines():
                if line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
            if "event" in fields:
                return {
                    "id": fields["id"],
                    "type": fields["event"],
                    "data": json.loads(fields["data"]),
                }


async def test_a_routed_ticket_reaches_its_agent(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    resp = await client.get("/api/v1/agents/ana/events", headers={**STREAM, **desk.headers("ana")})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    ticket_id = await customer_writes(client, clock, 1)
    event = await next_event(resp)
    assert event["type"] == "ticket.routed"
    assert event["data"]["ticket_id"] == ticket_id
    assert event["data"]["phone_number_id"] == N1
    assert event["data"]["wa_id"] == "5511900000001"
    resp.close()
    # bob (another number) got nothing.
    snapshot = await client.get(
        "/api/v1/agents/bob/events?last_event_id=0-0", headers=desk.headers("bob")
    )
    assert snapshot.status == 200
    assert "event:" not in await snapshot.text()


async def test_reconnecting_with_last_event_id_resumes(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    await online(client, "ana")
    token = desk.tokens["ana"]
    # EventSource style: the token in the query.
    resp = await client.get(f"/api/v1/agents/ana/events?token={token}", headers=STREAM)
    assert resp.status == 200
    first = await customer_writes(client, clock, 1)
    seen = await next_event(resp)
    assert seen["data"]["ticket_id"] == first
    resp.close()
    # Missed while disconnected: a routed ticket and a close.
    second = await customer_writes(client, clock, 2)
    closed = await client.post(f"/api/v1/tickets/{first}/close", headers=desk.headers("ana"))
    assert closed.status == 200
    again = await client.get(
        f"/api/v1/agents/ana/events?token={token}", headers={**STREAM, "Last-Event-ID": seen["id"]}
    )
    missed = [await next_event(again), await next_event(again)]
    assert [(e["type"], e["data"]["ticket_id"]) for e in missed] == [
        ("ticket.routed", second),
        ("ticket.closed", first),
    ]
    assert missed[0]["id"] > seen["id"]
    again.close()


async def test_events_published_by_other_features_are_streamed(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    events = client.app[stores_key].events
    ids = await events.publish_to_number(N1, "after_hours.contact", {"phone_number_id": N1})
    assert len(ids) == 2  # ana and mara
    await client.app[stores_key].agents.set_status("mara", "online", at=datetime.now(UTC))
    online_only = await events.publish_to_number(
        N1, "after_hours.callback", {"wa_id": "5511900000001"}, only_online=True
    )
    assert len(online_only) == 1
    resp = await client.get("/api/v1/agents/mara/events?last_event_id=0-0", headers=ADMIN)
    text = await resp.text()
    assert text.index("event: after_hours.contact") < text.index("event: after_hours.callback")


@pytest.mark.parametrize(
    ("who", "agent", "status"),
    [
        ("ana", "ana", 200),
        ("mara", "ana", 200),  # a manager of ana's number
        ("bob", "ana", 403),
        ("ana", "bob", 403),
        ("anonymous", "ana", 401),
        ("admin", "nobody", 404),
    ],
)
async def test_who_may_follow_an_agent(
    client: TestClient[Any, Any], desk: Desk, who: str, agent: str, status: int
) -> None:
    resp = await client.get(f"/api/v1/agents/{agent}/events", headers=desk.headers(who))
    assert resp.status == status
    await resp.read()


async def test_a_bad_token_in_the_query_is_refused(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.get("/api/v1/agents/ana/events?token=dlt_nope", headers=STREAM)
    assert resp.status == 401


async def test_a_malformed_last_event_id_is_a_422(client: TestClient[Any, Any], desk: Desk) -> None:
    resp = await client.get(
        "/api/v1/agents/ana/events", headers={**ADMIN, "Last-Event-ID": "yesterday"}
    )
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "Last-Event-ID"


async def test_shutdown_ends_open_streams_promptly(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    streams = [
        await client.get(f"/api/v1/agents/{a}/events", headers={**STREAM, **ADMIN})
        for a in ("ana", "mara", "bob")
    ]
    assert all(s.status == 200 for s in streams)
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 3
    for stream in streams:
        stream.close()


async def test_a_client_that_leaves_ends_its_stream(
    client: TestClient[Any, Any], desk: Desk, logs: list[dict[str, Any]]
) -> None:
    resp = await client.get("/api/v1/agents/ana/events", headers={**STREAM, **ADMIN})
    assert resp.status == 200
    await next_frame_or_none(resp)
    resp.close()
    # The server notices on its next poll (or, when the close has not reached it yet, at the
    # latest on its next keepalive write, KEEPALIVE_S) and the handler returns.
    async with asyncio.timeout(KEEPALIVE_S + 5):
        while not any(e["event"] == "events_stream_closed" for e in logs):  # noqa: ASYNC110 -- captured logs offer nothing to wait on
            await asyncio.sleep(0.05)


async def next_frame_or_none(resp: ClientResponse) -> None:
    """Wait for the stream's first bytes (the `retry:` line): the handler is running."""
    async with asyncio.timeout(5):
        await resp.content.readuntil(b"\n\n")
