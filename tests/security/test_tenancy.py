"""Tenancy: what the people of one number can learn about, or do to, another number.

Two numbers, A and B, share an agent (zed). A's manager (mara):

- may not change zed's status: invisible would take zed out of B's routing and send B's
  tickets back to B's queue. Only zed, an admin or a manager of every one of zed's numbers
  may (real processes: `python -m bot web` and `worker` on a redis-server);
- sees zed, but of zed's numbers only A (real processes);
- gets 404, the very answer of a ticket that does not exist, for a ticket of B on every
  ticket path, and for an agent of B only on every agent path (in process);
- cannot tell from A's ticket ids how many tickets B (or anybody else) opened meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.appkeys import stores_key
from bot.domain import phones
from bot.domain.clock import FixedClock
from bot.domain.config import is_valid_id
from bot.domain.history import valid_cursor
from bot.domain.tickets import TicketRequest
from storage.tickets import TicketsStore
from tests.api.conftest import ADMIN, N1, N2, bearer, put_agent, put_number
from tests.console.conftest import sign_in
from tests.faults.harness import Cluster, message, until

A, B = N1, N2


# --- tickets: ids that reveal nothing, and 404 outside the caller's numbers ---------------


async def _open(store: TicketsStore, number: str, n: int, at: datetime) -> str:
    wa_id = f"55119{n:08d}"
    opened = await store.open_or_attach(
        TicketRequest(
            phone_number_id=number,
            contact=phones.contact_key(wa_id),
            wa_id=wa_id,
            natural_key=f"wamid.TEN{number}.{n}",
            wamid=f"wamid.TEN{number}.{n}",
            at=at,
        ),
        now=at,
    )
    return opened.ticket_id


def _place(ticket_id: str) -> int:
    """The sequence part of a ticket id (storage/tickets.py, "Ticket ids")."""
    return int(ticket_id[1:11])


async def test_ticket_ids_reveal_nothing_of_other_numbers(redis: aioredis.Redis) -> None:
    """A's agent sees two of A's ticket ids: whatever B opened between them, they follow
    each other, and differ only in their random part from what A alone would have got."""
    store = TicketsStore(redis)
    at = datetime(2026, 3, 2, 15, tzinfo=UTC)
    a_ids, b_ids = [], []
    for n in range(4):  # alternately, B busier than A
        a_ids.append(await _open(store, A, n, at + timedelta(seconds=n)))
        for m in range(3):
            b_ids.append(await _open(store, B, 100 + 3 * n + m, at + timedelta(seconds=n)))
    assert [_place(t) for t in a_ids] == [1, 2, 3, 4]
    assert [_place(t) for t in b_ids] == list(range(1, 13))
    # Unguessable all the same: ids at the same place of two numbers differ.
    assert a_ids[0] != b_ids[0]
    assert len(set(a_ids + b_ids)) == len(a_ids + b_ids)
    for ticket_id in a_ids + b_ids:
        # Readable by every reader of ids: paths, and the history's cursors.
        assert is_valid_id(ticket_id)
        assert valid_cursor(f"1772463600000:{ticket_id}")


async def test_ids_keep_the_queue_in_creation_order_within_a_second(
    redis: aioredis.Redis,
) -> None:
    """Meta stamps messages to the second and the queue ranks by that stamp, ties by id: two
    customers of one second are served in the order their tickets were opened."""
    store = TicketsStore(redis)
    at = datetime(2026, 3, 2, 15, tzinfo=UTC)
    opened = [await _open(store, A, n, at) for n in range(12)]
    assert await store.queue(A) == opened


async def test_ids_of_before_the_per_number_sequence_still_work(
    client: TestClient[Any, Any],
) -> None:
    old = "T0000000099abcdef"  # 'T', the global sequence, 6 random hex digits
    assert valid_cursor(f"1772463600000:{old}")
    resp = await client.get(f"/api/v1/tickets/{old}", headers=ADMIN)
    assert resp.status == 404  # looked up, not refused as malformed


@pytest.fixture(name="tenants")
async def fixture_tenants(client: TestClient[Any, Any]) -> dict[str, dict[str, str]]:
    """A and B; ana (agent) and mara (manager) of A, bob (agent) of B: their headers."""
    await put_number(client, A)
    await put_number(client, B)
    people = {"ana": ("agent", [A]), "mara": ("manager", [A]), "bob": ("agent", [B])}
    return {
        who: bearer(await put_agent(client, who, role=role, numbers=numbers))
        for who, (role, numbers) in people.items()
    }


# Every /api/v1/tickets/{ticket_id}... route, with a body it would accept.
API_TICKET_PATHS: list[Any] = [
    ("GET", "", None),
    ("POST", "/messages", {"text": "hello"}),
    ("POST", "/close", {}),
    ("POST", "/transfer", {"queue": B}),
    pytest.param("GET", "/transcript.pdf", None),
    pytest.param("PUT", "/tags", {"tags": ["vip"]}),
    ("POST", "/notes", {"text": "call back after 3pm"}),
    ("GET", "/notes", None),
    ("POST", "/transfer-requests", None),
    # A request id that does not exist: the ticket is checked first, so B's agent gets a 404
    # about the request, never about the ticket; others get the ticket's 404.
    ("POST", "/transfer-requests/R1/accept", None),
    ("POST", "/transfer-requests/R1/decline", None),
    ("POST", "/typing", None),
]


def _values(params: list[Any]) -> list[tuple[str, str, Any]]:
    """(method, suffix, body) of each case, marked or not."""
    return [p.values if hasattr(p, "values") else p for p in params]


def test_every_api_ticket_path_is_checked(client: TestClient[Any, Any]) -> None:
    checked = {(method, suffix) for method, suffix, _ in _values(API_TICKET_PATHS)}
    prefix = "/api/v1/tickets/{ticket_id}"
    routed = {
        (
            route.method,
            route.resource.canonical.removeprefix(prefix).replace("{request_id}", "R1"),
        )
        for route in client.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(prefix)
        and route.method != "HEAD"
    }
    assert routed == checked


@pytest.mark.parametrize("who", ["ana", "mara"])
@pytest.mark.parametrize(("method", "suffix", "body"), API_TICKET_PATHS)
async def test_a_ticket_of_another_number_is_a_404_on_every_ticket_path(
    client: TestClient[Any, Any],
    clock: FixedClock,
    tenants: dict[str, dict[str, str]],
    who: str,
    method: str,
    suffix: str,
    body: Any,
) -> None:
    store = client.app[stores_key].tickets
    ticket_id = await _open(store, B, 1, clock.now())
    # The path is right: for B's agent the ticket is there (whatever they may do with it).
    own = await client.request(
        method, f"/api/v1/tickets/{ticket_id}{suffix}", json=body, headers=tenants["bob"]
    )
    assert own.status != 404, await own.text()

    hidden = await client.request(
        method, f"/api/v1/tickets/{ticket_id}{suffix}", json=body, headers=tenants[who]
    )
    missing = await client.request(
        method, f"/api/v1/tickets/T0000000000{suffix}", json=body, headers=tenants[who]
    )
    assert (hidden.status, missing.status) == (404, 404), await hidden.text()
    expected = (await missing.json())["error"]
    expected["message"] = expected["message"].replace("T0000000000", ticket_id)
    assert (await hidden.json())["error"] == expected
    unchanged = await store.get(ticket_id)
    assert unchanged is not None
    assert (unchanged.status, unchanged.tags) == ("waiting", ())


async def test_a_ticket_of_another_number_is_a_404_in_the_console(
    client: TestClient[Any, Any], clock: FixedClock, tenants: dict[str, dict[str, str]]
) -> None:
    ticket_id = await _open(client.app[stores_key].tickets, B, 1, clock.now())
    csrf = await sign_in(client, tenants["mara"]["Authorization"].removeprefix("Bearer "))
    for method, suffix in (
        ("GET", ""),
        ("GET", "/transcript.pdf"),
        ("POST", "/reply"),
        ("POST", "/close"),
        ("POST", "/transfer"),
    ):
        data = {"csrf": csrf, "text": "hello", "to": "queue"} if method == "POST" else None
        hidden = await client.request(method, f"/console/tickets/{ticket_id}{suffix}", data=data)
        missing = await client.request(method, f"/console/tickets/T0000000000{suffix}", data=data)
        assert (hidden.status, missing.status) == (404, 404), (suffix, await hidden.text())
        assert (await hidden.text()).replace(ticket_id, "T0000000000") == await missing.text()
    assert (await client.get(f"/console/numbers/{A}/tickets?ticket={ticket_id}")).status == 404


async def test_an_agent_of_another_number_is_unknown_as_a_transfer_target(
    client: TestClient[Any, Any], clock: FixedClock, tenants: dict[str, dict[str, str]]
) -> None:
    """Transferring one of A's tickets to bob must not tell mara that bob exists."""
    ticket_id = await _open(client.app[stores_key].tickets, A, 1, clock.now())
    url = f"/api/v1/tickets/{ticket_id}/transfer"
    bob = await client.post(url, json={"agent_id": "bob"}, headers=tenants["mara"])
    nobody = await client.post(url, json={"agent_id": "nobody"}, headers=tenants["mara"])
    assert (bob.status, nobody.status) == (422, 422), await bob.text()
    assert (await bob.json())["error"]["message"] == "agent bob not found"
    # Admins see every agent: they are told why.
    admin = await client.post(url, json={"agent_id": "bob"}, headers=ADMIN)
    assert (admin.status, (await admin.json())["error"]["code"]) == (409, "not_attached")


# --- a shared agent, against real processes ----------------------------------------------

OPEN_NUMBER = {"timezone": "UTC", "language": "en", "service_hours": {"always_open": True}}


async def _shared_desk(cluster: Cluster) -> dict[str, dict[str, str]]:
    """A and B always open; zed (agent, 2 slots) serves both, mara manages A, max both."""
    await cluster.start_web()
    for number in (A, B):
        assert (await cluster.api("PUT", f"/numbers/{number}", OPEN_NUMBER))[0] in (200, 201)
    people = {
        "zed": ("agent", [A, B]),
        "mara": ("manager", [A]),
        "max": ("manager", [A, B]),
    }
    headers = {}
    for who, (role, numbers) in people.items():
        body = {"name": who.title(), "numbers": numbers, "slots": 2, "role": role}
        assert (await cluster.api("PUT", f"/agents/{who}", body))[0] == 201
        status, issued = await cluster.api("POST", f"/agents/{who}/tokens")
        assert status == 201, issued
        headers[who] = bearer(issued["token"])
    return headers


async def _set_status(
    cluster: Cluster, who: dict[str, str], status: str
) -> tuple[int, dict[str, Any]]:
    answer: tuple[int, dict[str, Any]] = await cluster.api(
        "PUT", "/agents/zed/status", {"status": status}, who
    )
    return answer


async def _ticket_of_b(cluster: Cluster, wamid: str, n: int) -> dict[str, Any]:
    """A customer writes to B; the ticket once a worker has routed it."""
    assert (await cluster.post_webhook(message(B, f"55119{n:08d}", wamid)))[0] == 200
    found: list[dict[str, Any]] = []

    async def routed() -> bool:
        page = (await cluster.api("GET", f"/numbers/{B}/tickets"))[1]
        found[:] = [t for t in page["items"] if t["contact"]["wa_id"] == f"55119{n:08d}"]
        return bool(found) and found[0]["status"] != "waiting"

    await until(routed, within=30, what=f"B's ticket of {wamid} routed")
    return found[0]


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_manager_of_one_number_cannot_take_a_shared_agent_off_the_other(
    cluster: Cluster,
) -> None:
    h = await _shared_desk(cluster)
    assert (await _set_status(cluster, h["zed"], "online"))[0] == 200
    await cluster.start_worker()
    first = await _ticket_of_b(cluster, "wamid.SHARED1", 1)
    assert (first["status"], first["agent_id"]) == ("open", "zed")

    status, answer = await _set_status(cluster, h["mara"], "invisible")
    assert (status, answer["error"]["code"]) == (403, "forbidden"), answer
    # B is untouched: zed stays online, keeps B's ticket, and B's next customer reaches zed.
    assert (await cluster.api("GET", "/agents/zed"))[1]["status"] == "online"
    kept = (await cluster.api("GET", f"/tickets/{first['id']}"))[1]
    assert (kept["status"], kept["agent_id"]) == ("open", "zed")
    second = await _ticket_of_b(cluster, "wamid.SHARED2", 2)
    assert (second["status"], second["agent_id"]) == ("open", "zed")

    # Whoever answers for every number of zed may: a manager of both, an admin, zed.
    assert (await _set_status(cluster, h["max"], "break"))[0] == 200
    assert (await _set_status(cluster, ADMIN, "invisible"))[0] == 200
    assert (await cluster.api("GET", "/agents/zed"))[1]["status"] == "invisible"
    assert (await _set_status(cluster, h["zed"], "online"))[0] == 200


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_manager_sees_of_a_shared_agent_only_their_own_numbers(
    cluster: Cluster,
) -> None:
    h = await _shared_desk(cluster)

    async def numbers_of_zed(who: dict[str, str]) -> tuple[list[str], list[str]]:
        listed = (await cluster.api("GET", "/agents", None, who))[1]["items"]
        [zed] = [a for a in listed if a["id"] == "zed"]
        status, one = await cluster.api("GET", "/agents/zed", None, who)
        assert status == 200, one
        return zed["numbers"], one["numbers"]

    assert await numbers_of_zed(h["mara"]) == ([A], [A])
    assert await numbers_of_zed(h["max"]) == ([A, B], [A, B])
    assert await numbers_of_zed(h["zed"]) == ([A, B], [A, B])
    assert await numbers_of_zed(ADMIN) == ([A, B], [A, B])
    # The answer to a status change (refused to mara) shows no more than the reads.
    assert (await _set_status(cluster, h["max"], "online"))[1]["numbers"] == [A, B]
