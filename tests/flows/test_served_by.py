"""Contact search says who serves a customer: the agent holding their active ticket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.domain.clock import FixedClock
from tests.flows.test_rules import ADMIN, CUSTOMER, MON_10, PNID, customer_writes, setup_number


async def test_search_hit_names_the_agent_serving_the_contact(
    client: TestClient[Any, Any], clock: FixedClock, make_worker: Callable[..., Worker]
) -> None:
    await setup_number(client)
    agent = {"name": "Ana Souza", "numbers": [PNID], "slots": 2, "role": "agent"}
    assert (await client.put("/api/v1/agents/ana", json=agent, headers=ADMIN)).status in (200, 201)
    status = await client.put("/api/v1/agents/ana/status", json={"status": "online"}, headers=ADMIN)
    assert status.status == 200
    clock.at = MON_10 + timedelta(seconds=5)

    async def served_by() -> Any:
        resp = await client.get("/api/v1/contacts", params={"q": CUSTOMER}, headers=ADMIN)
        [hit] = (await resp.json())["items"]
        return hit["served_by"]

    await customer_writes(client, MON_10, wamid="wamid.SB1")
    await make_worker().run_check()
    assert await served_by() == {"agent_id": "ana", "name": "Ana Souza"}

    [ticket] = (await (await client.get(f"/api/v1/numbers/{PNID}/tickets", headers=ADMIN)).json())[
        "items"
    ]
    closed = await client.post(f"/api/v1/tickets/{ticket['id']}/close", headers=ADMIN)
    assert closed.status == 200
    assert await served_by() is None
