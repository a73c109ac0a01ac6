"""`GET /api/v1/numbers/{id}/history` (the last 3 months, filters, pages), ticket tags and
who may read a transcript."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.domain.tickets import TicketRequest
from storage.agents import AgentsStore
from storage.tickets import TicketsStore
from tests.api.conftest import ADMIN, N1, N2, bearer, put_agent, put_number

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo


class History:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.tickets = TicketsStore(redis)
        self.agents = AgentsStore(redis)
        self.n = 0

    async def open(self, at: datetime, number: str = N1) -> str:
        self.n += 1
        contact = f"55119{self.n:08d}"
        opened = await self.tickets.open_or_attach(
            TicketRequest(
                phone_number_id=number,
                contact=contact,
                wa_id=contact,
                name=f"Cliente {self.n}",
                natural_key=f"wamid.{self.n}",
                wamid=f"wamid.{self.n}",
                at=at,
            ),
            now=at,
        )
        return opened.ticket_id


@pytest.fixture(name="history")
async def fixture_history(
    client: TestClient[Any, Any], redis: aioredis.Redis, clock: FixedClock
) -> tuple[History, dict[str, str], dict[str, str]]:
    """Tickets of N1: `old` (95 days ago: outside the 3 months), `ana1` (closed by ana, tagged
    vip, 20 days ago), `lost` (10 days ago), `caio1` (held by caio, tagged vip, 2 days ago),
    `ana2` (ana's, open, today); and one of N2."""
    clock.at = NOW
    await put_number(client, N1)
    await put_number(client, N2)
    tokens = {
        "ana": await put_agent(client, "ana", role="agent", numbers=[N1]),
        "caio": await put_agent(client, "caio", role="agent", numbers=[N1]),
        "bob": await put_agent(client, "bob", role="agent", numbers=[N2]),
    }
    h = History(redis)
    ids: dict[str, str] = {}
    ids["old"] = await h.open(NOW - timedelta(days=95))
    day20 = NOW - timedelta(days=20)
    await h.agents.set_status("ana", "online", at=day20)
    ids["ana1"] = await h.open(day20)
    await h.tickets.set_tags(ids["ana1"], ("vip",), actor="ana", now=day20)
    await h.tickets.record_reply(ids["ana1"], "ana", "r1", "Olá", now=day20)
    await h.tickets.close(ids["ana1"], by="agent", actor="ana", now=day20 + timedelta(hours=1))
    await h.agents.set_status("ana", "invisible", at=day20 + timedelta(hours=1))
    day10 = NOW - timedelta(days=10)
    ids["lost"] = await h.open(day10)
    await h.tickets.expire_waiting(
        N1, idle_before=day10 + timedelta(hours=1), now=day10 + timedelta(hours=2)
    )
    day2 = NOW - timedelta(days=2)
    await h.agents.set_status("caio", "online", at=day2)
    ids["caio1"] = await h.open(day2)
    await h.tickets.set_tags(ids["caio1"], ("vip", "troca"), actor="caio", now=day2)
    await h.agents.set_status("caio", "invisible", at=day2)
    await h.agents.set_status("ana", "online", at=NOW - timedelta(hours=1))
    ids["ana2"] = await h.open(NOW - timedelta(hours=1))
    ids["n2"] = await h.open(NOW - timedelta(hours=1), number=N2)
    return h, ids, tokens


async def page(
    client: TestClient[Any, Any], query: str = "", headers: dict[str, str] = ADMIN
) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/numbers/{N1}/history{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def ids_of(data: dict[str, Any]) -> list[str]:
    return [item["id"] for item in data["items"]]


async def test_history_lists_three_months_newest_first(
    client: TestClient[Any, Any], history: tuple[History, dict[str, str], dict[str, str]]
) -> None:
    _, ids, tokens = history
    data = await page(client, headers=bearer(tokens["ana"]))
    assert ids_of(data) == [ids["ana2"], ids["caio1"], ids["lost"], ids["ana1"]]
    assert data["next_cursor"] is None
    # 00:00 in São Paulo, 10 December: the same day three months back.
    assert data["from"] == "2025-12-10T00:00:00-03:00"
    # Even asked for, a ticket older than the window is not returned.
    data = await page(client, "?from=2025-11-01")
    assert ids["old"] not in ids_of(data)
    assert data["from"] == "2025-12-10T00:00:00-03:00"
    assert data["items"][2]["status"] == "lost"
    assert data["items"][1]["tags"] == ["vip", "troca"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?agent=ana", ["ana2", "ana1"]),
        ("?agent=caio", ["caio1"]),
        ("?status=closed", ["ana1"]),
        ("?status=lost", ["lost"]),
        ("?status=open", ["ana2", "caio1"]),
        ("?tag=vip", ["caio1", "ana1"]),
        ("?tag=VIP&agent=ana", ["ana1"]),
        ("?tag=troca&status=closed", []),
        # Dates are whole days in the number's zone; `to` includes its day.
        ("?from=2026-02-18&to=2026-02-27", ["ana1"]),
        ("?from=2026-02-19&to=2026-02-28", ["lost"]),
        ("?from=2026-03-08", ["ana2", "caio1"]),
        ("?to=2026-03-08T12:00:00Z", ["lost", "ana1"]),
        ("?from=2026-03-10&to=2026-03-01", []),
    ],
)
async def test_history_filters(
    client: TestClient[Any, Any],
    history: tuple[History, dict[str, str], dict[str, str]],
    query: str,
    expected: list[str],
) -> None:
    _, ids, _ = history
    assert ids_of(await page(client, query)) == [ids[name] for name in expected]


async def test_history_pages_cover_every_ticket_once(
    client: TestClient[Any, Any], history: tuple[History, dict[str, str], dict[str, str]]
) -> None:
    _, ids, _ = history
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        data = await page(client, f"?limit=1{cursor}")
        seen += ids_of(data)
        if data["next_cursor"] is None:
            break
        cursor = f"&cursor={data['next_cursor']}"
    assert seen == [ids["ana2"], ids["caio1"], ids["lost"], ids["ana1"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?from=yesterday", "from"),
        ("?to=2026-03-01T10:00:00", "to"),
        ("?status=gone", "status"),
        ("?agent=a%20b", "agent"),
        ("?tag=a:b", "tag"),
        ("?cursor=xyz", "cursor"),
        ("?limit=0", "limit"),
    ],
)
async def test_history_refuses_bad_filters_naming_them(
    client: TestClient[Any, Any], query: str, field: str
) -> None:
    await put_number(client, N1)
    resp = await client.get(f"/api/v1/numbers/{N1}/history{query}", headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == field


async def test_history_and_transcripts_stay_within_the_callers_numbers(
    client: TestClient[Any, Any], history: tuple[History, dict[str, str], dict[str, str]]
) -> None:
    _, ids, tokens = history
    bob = bearer(tokens["bob"])
    resp = await client.get(f"/api/v1/numbers/{N1}/history", headers=bob)
    assert resp.status == 403
    # Another number's ticket is a 404, like a missing one: its existence is not revealed.
    resp = await client.get(f"/api/v1/tickets/{ids['ana1']}/transcript.pdf", headers=bob)
    assert resp.status == 404
    resp = await client.get(
        f"/api/v1/tickets/{ids['ana1']}/transcript.pdf", headers=bearer(tokens["caio"])
    )
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert (await resp.read()).startswith(b"%PDF-")
    resp = await client.get("/api/v1/tickets/T0000000099abcdef/transcript.pdf", headers=ADMIN)
    assert resp.status == 404


async def test_tags_are_set_by_the_tickets_agent_and_normalised(
    client: TestClient[Any, Any], history: tuple[History, dict[str, str], dict[str, str]]
) -> None:
    _, ids, tokens = history
    url = f"/api/v1/tickets/{ids['ana2']}/tags"
    resp = await client.put(
        url,
        json={"tags": ["Urgente", " urgente ", "Troca  de produto"]},
        headers=bearer(tokens["ana"]),
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["tags"] == ["urgente", "troca de produto"]
    resp = await client.put(url, json={"tags": ["x"]}, headers=bearer(tokens["caio"]))
    assert resp.status == 403  # not caio's ticket
    resp = await client.put(url, json={"tags": ["bad:tag"]}, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"].startswith("tags")
    assert ids_of(await page(client, "?tag=urgente")) == [ids["ana2"]]
    resp = await client.put(url, json={"tags": []}, headers=ADMIN)
    assert (await resp.json())["tags"] == []
    assert ids_of(await page(client, "?tag=urgente")) == []
