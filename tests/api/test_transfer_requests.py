"""/api/v1 transfer requests: the endpoints over bot.services.transfer_requests (whose rules
tests/services/test_transfer_requests.py covers): status codes, error bodies, 404 for another
number's ticket, and the expiry by the clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from tests.api.conftest import ADMIN, N1, Desk, put_agent
from tests.api.test_tickets import customer_writes, error_of, online


async def _served(client: TestClient[Any, Any], desk: Desk, clock: FixedClock) -> tuple[str, str]:
    """A ticket ana holds, and a token of cleo, another online agent of N1."""
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    cleo = await put_agent(client, "cleo", role="agent", numbers=[N1])
    await online(client, "cleo")
    return ticket_id, cleo


async def test_request_accept_over_http(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id, cleo = await _served(client, desk, clock)
    cleo_headers = {"Authorization": f"Bearer {cleo}"}
    url = f"/api/v1/tickets/{ticket_id}/transfer-requests"
    resp = await client.post(url, headers=cleo_headers)
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert (made["status"], made["requester"], made["holder"]) == ("pending", "cleo", "ana")
    assert (await error_of(await client.post(url, headers=cleo_headers), 409))[
        "code"
    ] == "request_pending"
    assert (await error_of(await client.post(url, headers=desk.headers("ana")), 409))[
        "code"
    ] == "already_holder"
    # Another number's agent: 404 on every path, as for a missing ticket.
    accept = f"{url}/{made['id']}/accept"
    for path in (url, accept, f"{url}/{made['id']}/decline"):
        assert (await client.post(path, headers=desk.headers("bob"))).status == 404
    assert (await client.post(accept, headers=cleo_headers)).status == 403
    resp = await client.post(accept, headers=desk.headers("ana"))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "accepted"
    ticket = await (await client.get(f"/api/v1/tickets/{ticket_id}", headers=ADMIN)).json()
    assert ticket["agent_id"] == "cleo"
    assert [h["type"] for h in ticket["history"]][-3:] == [
        "transfer_requested",
        "transferred",
        "transfer_accepted",
    ]


async def test_an_expired_request_is_a_409_request_expired(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    ticket_id, cleo = await _served(client, desk, clock)
    url = f"/api/v1/tickets/{ticket_id}/transfer-requests"
    made = await (await client.post(url, headers={"Authorization": f"Bearer {cleo}"})).json()
    clock.advance(timedelta(minutes=5, seconds=1))
    resp = await client.post(f"{url}/{made['id']}/accept", headers=desk.headers("mara"))
    assert (await error_of(resp, 409))["code"] == "request_expired"
    resp = await client.post(f"{url}/nope/decline", headers=desk.headers("ana"))
    assert resp.status == 404
    resp = await client.post(f"{url}/a%20b/decline", headers=desk.headers("ana"))
    assert (await error_of(resp, 422))["field"] == "request_id"
