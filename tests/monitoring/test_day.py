"""A realistic desk day on two numbers, checked figure by figure against values worked out by
hand below, through `GET /api/v1/monitoring` (and who may read it).

N1 is in São Paulo (UTC-3) with the API.md schedule: Monday 09:00-12:00 and 13:00-18:00.
N2 is in Lisbon (UTC+0 in March), always open. The day is Monday 2 March 2026; monitoring is
read at 01:30 UTC on the 3rd: still Monday 22:30 in São Paulo, already Tuesday in Lisbon, so
N2's "today" only began at 00:00 UTC.

Agents: ana (N1, 2 slots), bia (N1), caio (N1 and N2, 2 slots), duda (N2, 1 slot), and mara,
N1's manager (never online).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.domain.config import AgentInput, AgentStatus
from bot.domain.tickets import TicketRequest, TicketTagsInput
from storage.agents import AgentsStore
from storage.tickets import TicketsStore
from tests.api.conftest import ADMIN, bearer, put_agent, put_number, settings_body

N1, N2 = "106540352242922", "206540352242922"
READ_AT = datetime(2026, 3, 3, 1, 30, tzinfo=UTC)


def u(hour: int, minute: int = 0) -> datetime:
    """An instant of the day, in UTC hours from Monday 00:00 UTC (24:30 is Tuesday 00:30)."""
    return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(hours=hour, minutes=minute)


class Day:
    """Drives the stores as the jobs and the API would, at chosen instants."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.tickets = TicketsStore(redis)
        self.agents = AgentsStore(redis)
        self.ids: dict[str, str] = {}
        self.messages = 0

    async def agent(self, agent_id: str, numbers: tuple[str, ...], slots: int) -> None:
        await self.agents.put(
            agent_id, AgentInput(name=agent_id.title(), numbers=numbers, slots=slots), at=u(11)
        )

    async def status(self, agent_id: str, status: AgentStatus, at: datetime) -> None:
        await self.agents.set_status(agent_id, status, at=at)
        await self.tickets.drain([N1, N2], now=at)

    async def write(self, name: str, number: str, at: datetime) -> str:
        """Customer `name` writes (opens a ticket, or continues theirs)."""
        self.messages += 1
        contact = f"5511{ord(name[0]):09d}"
        opened = await self.tickets.open_or_attach(
            TicketRequest(
                phone_number_id=number,
                contact=contact,
                wa_id=contact,
                name=f"Cliente {name}",
                natural_key=f"wamid.{self.messages}",
                wamid=f"wamid.{self.messages}",
                at=at,
            ),
            now=at,
        )
        self.ids.setdefault(name, opened.ticket_id)
        return opened.ticket_id

    async def reply(self, name: str, agent_id: str, at: datetime) -> None:
        self.messages += 1
        await self.tickets.record_reply(
            self.ids[name], agent_id, f"agent:{self.messages}", "Olá!", now=at
        )

    async def close(self, name: str, at: datetime, by: str = "agent") -> None:
        await self.tickets.close(self.ids[name], by=by, actor="x", now=at)  # type: ignore[arg-type]

    async def tag(self, name: str, at: datetime, *tags: str) -> None:
        normalised = TicketTagsInput(tags=tags).tags
        await self.tickets.set_tags(self.ids[name], normalised, actor="x", now=at)


@pytest.fixture(name="day")
async def fixture_day(
    client: TestClient[Any, Any], redis: aioredis.Redis, clock: FixedClock
) -> Day:
    await put_number(client, N1)
    lisbon = settings_body()
    lisbon.update(timezone="Europe/Lisbon", service_hours={"always_open": True})
    await put_number(client, N2, lisbon)
    d = Day(redis)
    await d.agent("ana", (N1,), 2)
    await d.agent("bia", (N1,), 2)
    await d.agent("caio", (N1, N2), 2)
    await d.agent("duda", (N2,), 1)
    await d.agent("mara", (N1,), 2)

    # --- N1, São Paulo (local = UTC - 3) ---
    await d.status("bia", "break", u(11))
    await d.write("A", N1, u(12, 10))  # nobody online: waits
    await d.status("ana", "online", u(12, 20))  # A -> ana
    await d.reply("A", "ana", u(12, 30))  # first reply 10 min
    await d.write("A", N1, u(12, 40))  # the customer writes again...
    await d.reply("A", "ana", u(12, 45))  # ...answered in 5 min
    await d.close("A", u(13))  # served 12:20-13:00: 40 min
    await d.tag("A", u(13, 5), "vip")  # tagged once closed
    await d.write("B", N1, u(14, 50))  # 11:50 local -> ana at once
    await d.reply("B", "ana", u(16, 10))  # 13:10 local: 80 min, 20 of them in hours
    await d.tag("B", u(16, 15), "reclamação", "VIP")
    await d.write("C", N1, u(16, 20))  # -> ana (2nd slot), never answered
    await d.write("D", N1, u(17))  # ana full, bia on break, caio away: waits
    await d.write("E", N1, u(17, 30))  # waits
    assert await d.tickets.expire_waiting(N1, idle_before=u(17, 15), now=u(18)) == [d.ids["D"]]
    await d.write("F", N1, u(18, 10))  # waits
    await d.status("caio", "online", u(18, 20))  # E, then F -> caio
    await d.close("F", u(18, 40), by="customer")  # left before any reply: abandoned
    await d.reply("E", "caio", u(18, 50))  # first reply 30 min
    await d.tag("E", u(18, 55), "vip")
    await d.tickets.transfer_to_queue(
        d.ids["E"], actor="caio", now=u(19), exclude_for=timedelta(hours=12)
    )  # back in the queue from 19:00, not for caio
    await d.write("G", N1, u(20))  # -> caio (E waits: caio excluded)
    await d.reply("G", "caio", u(20, 5))  # first reply 5 min
    await d.close("G", u(20, 30))  # served 30 min

    # --- N2, Lisbon (local = UTC), always open ---
    await d.write("H", N2, u(21))  # -> caio
    await d.reply("H", "caio", u(21, 10))  # yesterday, for N2
    await d.tag("H", u(21, 20), "vip")
    await d.status("caio", "break", u(23, 50))
    await d.write("K", N2, u(24, 5))  # waits
    await d.write("I", N2, u(24, 10))  # waits
    await d.status("duda", "online", u(24, 15))  # K -> duda
    await d.close("K", u(24, 20), by="customer")  # abandoned; I -> duda
    await d.close("H", u(24, 30))  # served 21:00-00:30: 210 min, closed today
    await d.reply("I", "duda", u(24, 40))  # first reply 20 min
    await d.write("J", N2, u(25))  # waits
    await d.write("L", N2, u(25, 5))  # waits
    assert await d.tickets.expire_waiting(N2, idle_before=u(25, 2), now=u(25, 10)) == [d.ids["J"]]
    clock.at = READ_AT
    return d


def duration(seconds: float, business_minutes: float) -> dict[str, Any]:
    # The API rounds to milliseconds and thousandths of a minute.
    return {
        "seconds": pytest.approx(seconds, abs=1e-3),
        "business_minutes": pytest.approx(business_minutes, abs=1e-3),
    }


MIN = 60

# N1, worked out by hand from the day above.
N1_FIGURES = {
    # E re-entered the queue at 19:00 UTC: 6 h 30 until 01:30; in hours only 16:00-18:00 local.
    "queue": {"tickets": 1, "longest": duration(390 * MIN, 120)},
    "in_service": 1,  # B (C is assigned but unanswered)
    "first_response": {
        "count": 4,  # A 10, B 80 (20 in hours), E 30, G 5
        "average": duration((10 + 80 + 30 + 5) / 4 * MIN, (10 + 20 + 30 + 5) / 4),
        # C, assigned 16:20 UTC and still unanswered: 9 h 10; in hours 13:20-18:00 local.
        "maximum": duration(550 * MIN, 280),
        "awaiting": 1,
    },
    # A 10 and 5, B 80 (20), E 30 (from the assignment: the customer wrote before), G 5.
    "response_time": {"count": 5, "average": duration(130 / 5 * MIN, 70 / 5)},
    # A 40, G 30 (F abandoned and D lost were not served).
    "service_time": {"count": 2, "average": duration(35 * MIN, 35)},
    "today": {
        "total": 7,
        "waiting": 0,
        "open": 2,  # B, C
        "transferred": 1,  # E
        "closed": 2,  # A, G
        "abandoned": 1,  # F
        "lost": 1,  # D
    },
    "agents": {
        "attached": 4,  # ana, bia, caio, mara
        "online": 1,
        "on_break": 2,
        "invisible": 1,
        "assigned_tickets": 2,
        "tickets_per_agent": pytest.approx(0.667),
    },
}

N2_FIGURES = {
    "queue": {"tickets": 1, "longest": duration(25 * MIN, 25)},  # L since 01:05
    "in_service": 1,  # I
    "first_response": {
        "count": 1,  # I; H's first reply was yesterday in Lisbon
        "average": duration(20 * MIN, 20),
        "maximum": duration(20 * MIN, 20),
        "awaiting": 0,
    },
    "response_time": {"count": 1, "average": duration(20 * MIN, 20)},
    "service_time": {"count": 1, "average": duration(210 * MIN, 210)},  # H, closed at 00:30
    "today": {  # created since 00:00 Lisbon: K, I, J, L (not H)
        "total": 4,
        "waiting": 1,
        "open": 1,
        "transferred": 0,
        "closed": 0,
        "abandoned": 1,
        "lost": 1,
    },
    "agents": {
        "attached": 2,
        "online": 1,
        "on_break": 1,
        "invisible": 0,
        "assigned_tickets": 1,
        "tickets_per_agent": 0.5,
    },
}

TOTAL_FIGURES = {
    "queue": {"tickets": 2, "longest": duration(390 * MIN, 120)},
    "in_service": 2,
    "first_response": {
        "count": 5,
        "average": duration((10 + 80 + 30 + 5 + 20) / 5 * MIN, (10 + 20 + 30 + 5 + 20) / 5),
        "maximum": duration(550 * MIN, 280),
        "awaiting": 1,
    },
    "response_time": {"count": 6, "average": duration(150 / 6 * MIN, 90 / 6)},
    "service_time": {"count": 3, "average": duration(280 / 3 * MIN, 280 / 3)},
    "today": {
        "total": 11,
        "waiting": 1,
        "open": 3,
        "transferred": 1,
        "closed": 2,
        "abandoned": 2,
        "lost": 2,
    },
    "agents": {  # each agent once: ana, bia, caio, mara, duda
        "attached": 5,
        "online": 2,
        "on_break": 2,
        "invisible": 1,
        "assigned_tickets": 3,
        "tickets_per_agent": 0.75,
    },
}


async def monitoring(
    client: TestClient[Any, Any], headers: dict[str, str], number: str | None = None
) -> dict[str, Any]:
    query = f"?number={number}" if number else ""
    resp = await client.get(f"/api/v1/monitoring{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def test_every_figure_of_the_day_matches_the_hand_count(
    client: TestClient[Any, Any], day: Day
) -> None:
    data = await monitoring(client, ADMIN)
    by_number = {n["phone_number_id"]: n for n in data["numbers"]}
    assert set(by_number) == {N1, N2}
    assert by_number[N1]["figures"] == N1_FIGURES
    assert by_number[N2]["figures"] == N2_FIGURES
    assert data["total"] == TOTAL_FIGURES
    # Today in each number's own zone.
    assert by_number[N1]["date"] == "2026-03-02"
    assert by_number[N2]["date"] == "2026-03-03"
    assert data["generated_at"] == "2026-03-03T01:30:00Z"


async def test_detail_lists_name_the_tickets_agents_and_tags(
    client: TestClient[Any, Any], day: Day
) -> None:
    n1 = (await monitoring(client, ADMIN, N1))["numbers"][0]["details"]
    assert [(q["ticket_id"], q["position"], q["status"]) for q in n1["queue"]] == [
        (day.ids["E"], 1, "transferred")
    ]
    assert n1["queue"][0]["waiting_since"] == "2026-03-02T19:00:00Z"
    assert n1["queue"][0]["tags"] == ["vip"]
    assert [(s["ticket_id"], s["agent_id"]) for s in n1["in_service"]] == [(day.ids["B"], "ana")]
    # B in service since its first reply at 16:10 UTC: 9 h 20; in hours 13:10-18:00 local.
    assert n1["in_service"][0]["in_service"] == duration(560 * MIN, 290)
    agents = {
        a["id"]: (a["status"], a["load"], a["tickets"], a["closed_today"]) for a in n1["agents"]
    }
    assert agents == {
        "ana": ("online", 2, 2, 1),  # B and C; closed A
        "bia": ("break", 0, 0, 0),
        "caio": ("break", 0, 0, 2),  # F (abandoned in his hands) and G
        "mara": ("invisible", 0, 0, 0),
    }
    # vip: A (closed), B and E; active: B and E. "VIP" and "vip" are one tag.
    assert n1["tags"] == [
        {"tag": "reclamação", "active": 1, "today": 1},
        {"tag": "vip", "active": 2, "today": 3},
    ]

    n2 = (await monitoring(client, ADMIN, N2))["numbers"][0]["details"]
    assert [q["ticket_id"] for q in n2["queue"]] == [day.ids["L"]]
    assert [s["ticket_id"] for s in n2["in_service"]] == [day.ids["I"]]
    agents = {a["id"]: (a["load"], a["tickets"], a["closed_today"]) for a in n2["agents"]}
    assert agents == {"caio": (0, 0, 1), "duda": (1, 1, 1)}
    # H was tagged yesterday (Lisbon) and is closed: nothing left to show.
    assert n2["tags"] == []


async def test_a_manager_sees_only_their_numbers_and_agents_none(
    client: TestClient[Any, Any], day: Day
) -> None:
    mara = await put_agent(client, "mara", role="manager", numbers=[N1])
    ana = await put_agent(client, "ana", role="agent", numbers=[N1])
    data = await monitoring(client, bearer(mara))
    assert [n["phone_number_id"] for n in data["numbers"]] == [N1]
    assert data["total"] == N1_FIGURES
    assert (await monitoring(client, bearer(mara), N1))["total"] == N1_FIGURES
    resp = await client.get(f"/api/v1/monitoring?number={N2}", headers=bearer(mara))
    assert resp.status == 403
    for query in ("", f"?number={N1}"):
        resp = await client.get(f"/api/v1/monitoring{query}", headers=bearer(ana))
        assert resp.status == 403


async def test_unknown_or_malformed_numbers_are_refused(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/monitoring?number=999", headers=ADMIN)
    assert resp.status == 404
    resp = await client.get("/api/v1/monitoring?number=a%20b", headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "number"


async def test_an_empty_desk_answers_zeros_and_nulls(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1)
    data = await monitoring(client, ADMIN)
    figures = data["total"]
    assert figures["queue"] == {"tickets": 0, "longest": None}
    assert figures["first_response"] == {
        "count": 0,
        "average": None,
        "maximum": None,
        "awaiting": 0,
    }
    assert figures["today"]["total"] == 0
    assert figures["agents"]["tickets_per_agent"] is None


async def test_details_caps_the_listed_tickets_not_the_figures(
    client: TestClient[Any, Any], day: Day
) -> None:
    resp = await client.get(f"/api/v1/monitoring?number={N1}&details=0", headers=ADMIN)
    assert resp.status == 200
    n1 = (await resp.json())["numbers"][0]
    assert (n1["details"]["queue"], n1["details"]["in_service"]) == ([], [])
    assert n1["figures"] == N1_FIGURES
    assert len(n1["details"]["agents"]) == 4  # agents and tags are not capped
    resp = await client.get("/api/v1/monitoring?details=101", headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "details"
