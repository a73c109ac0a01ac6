"""Fixtures of the /api/v1 tests: numbers and agents of every role, with their tokens."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
N1 = "106540352242922"
N2 = "206540352242922"

# The body of API.md, as documented.
SETTINGS: dict[str, Any] = {
    "display_name": "Loja Centro",
    "timezone": "America/Sao_Paulo",
    "language": "pt-BR",
    "service_hours": {
        "always_open": False,
        "weekly": {
            "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
            "sat": [{"start": "22:00", "end": "02:00"}],
        },
        "exceptions": [
            {"date": "2026-12-25", "closed": True},
            {
                "date": "2026-12-24",
                "hours": [{"start": "09:00", "end": "12:00"}],
                "recurring": True,
            },
            {"date": "2027-01-02", "end_date": "2027-01-05", "closed": True, "label": "inventory"},
        ],
        "holidays": {"country": "BR", "subdivision": "SP"},
    },
    "after_hours": {
        "message": "We are closed. We are back {next_opening}.",
        "notify_next_service_hour": True,
    },
    "absence": {
        "enabled": False,
        "message": "Ana is on vacation.",
        "starts_at": None,
        "ends_at": None,
        "suggested_agent": {"name": "João", "phone": "+5511999990000"},
        "skip_customers_in_service": True,
    },
    "auto_reply_cooldown_minutes": 1440,
}


def settings_body() -> dict[str, Any]:
    return copy.deepcopy(SETTINGS)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Desk:
    """Two numbers; `ana` (agent) and `mara` (manager) on N1, `bob` (agent) on N2."""

    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        if who == "admin":
            return ADMIN
        if who == "anonymous":
            return {}
        if who == "bad_token":
            return bearer("dlt_not-a-real-token")
        return bearer(self.tokens[who])


async def put_number(
    client: TestClient[Any, Any], number: str = N1, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    resp = await client.put(f"/api/v1/numbers/{number}", json=body or SETTINGS, headers=ADMIN)
    assert resp.status in (200, 201), await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def put_agent(
    client: TestClient[Any, Any], agent_id: str, *, role: str, numbers: list[str]
) -> str:
    """Create the agent and return a fresh token of theirs."""
    body = {"name": agent_id.title(), "numbers": numbers, "role": role, "slots": 2}
    resp = await client.put(f"/api/v1/agents/{agent_id}", json=body, headers=ADMIN)
    assert resp.status in (200, 201), await resp.text()
    resp = await client.post(f"/api/v1/agents/{agent_id}/tokens", headers=ADMIN)
    assert resp.status == 201, await resp.text()
    token: str = (await resp.json())["token"]
    return token


@pytest.fixture(name="desk")
async def fixture_desk(client: TestClient[Any, Any]) -> Desk:
    await put_number(client, N1)
    await put_number(client, N2)
    tokens = {
        "ana": await put_agent(client, "ana", role="agent", numbers=[N1]),
        "mara": await put_agent(client, "mara", role="manager", numbers=[N1]),
        "bob": await put_agent(client, "bob", role="agent", numbers=[N2]),
    }
    return Desk(tokens)
