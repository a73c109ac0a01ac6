"""/api/v1/agents over the real app and Redis: records, per-number index, status, tokens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.auth import hash_token
from bot.domain.clock import FixedClock
from storage import keys
from tests.api.conftest import ADMIN, N1, N2, Desk, bearer


async def _members(redis: aioredis.Redis, key: str) -> set[str]:
    return {m.decode() for m in await redis.smembers(key)}


async def test_put_agent_creates_then_replaces_and_indexes_by_number(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    body = {"name": "Ana", "numbers": [N1, N2], "slots": 3, "role": "agent"}
    resp = await client.put("/api/v1/agents/ana", json=body, headers=ADMIN)
    assert resp.status == 201
    data = await resp.json()
    assert data["status"] == "invisible"
    assert data["status_changed_at"] is None
    assert await _members(redis, keys.number_agents(N1)) == {"ana"}
    assert await _members(redis, keys.number_agents(N2)) == {"ana"}

    resp = await client.put("/api/v1/agents/ana", json={**body, "numbers": [N2]}, headers=ADMIN)
    assert resp.status == 200
    assert await _members(redis, keys.number_agents(N1)) == set()
    assert await _members(redis, keys.number_agents(N2)) == {"ana"}


async def test_put_agent_keeps_its_status(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    resp = await client.put("/api/v1/agents/ana/status", json={"status": "online"},
                            headers=desk.headers("ana"))  # fmt: skip
    assert resp.status == 200
    body = {"name": "Ana Maria", "numbers": [N1]}
    data = await (await client.put("/api/v1/agents/ana", json=body, headers=ADMIN)).json()
    assert data["status"] == "online"
    assert data["name"] == "Ana Maria"
    assert data["slots"] == 3


async def test_status_change_is_stamped_and_idempotent(
    client: TestClient[Any, Any], desk: Desk, clock: FixedClock
) -> None:
    headers = desk.headers("ana")
    first = clock.now()
    data = await (
        await client.put("/api/v1/agents/ana/status", json={"status": "break"}, headers=headers)
    ).json()
    assert data["status"] == "break"
    assert datetime.fromisoformat(data["status_changed_at"]) == first
    clock.advance(timedelta(minutes=5))
    data = await (
        await client.put("/api/v1/agents/ana/status", json={"status": "break"}, headers=headers)
    ).json()
    assert datetime.fromisoformat(data["status_changed_at"]) == first
    stored = await (await client.get("/api/v1/agents/ana", headers=headers)).json()
    assert stored["status"] == "break"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "asleep"}, "status"),
        ({}, "status"),
        ({"status": "online", "mood": "good"}, "mood"),
    ],
)
async def test_invalid_status_is_422(
    client: TestClient[Any, Any], desk: Desk, body: dict[str, Any], field: str
) -> None:
    resp = await client.put("/api/v1/agents/ana/status", json=body, headers=desk.headers("ana"))
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"numbers": [N1]}, "name"),
        ({"name": " ", "numbers": [N1]}, "name"),
        ({"name": "Zed", "numbers": ["a b"]}, "numbers[0]"),
        ({"name": "Zed", "numbers": N1}, "numbers"),
        ({"name": "Zed", "slots": -1}, "slots"),
        ({"name": "Zed", "slots": "3"}, "slots"),
        ({"name": "Zed", "role": "owner"}, "role"),
        ({"name": "Zed", "team": "blue"}, "team"),
    ],
)
async def test_invalid_agent_is_422_and_stores_nothing(
    client: TestClient[Any, Any], redis: aioredis.Redis, body: dict[str, Any], field: str
) -> None:
    resp = await client.put("/api/v1/agents/zed", json=body, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == field
    assert not await redis.exists(keys.agent("zed"))
    assert (await client.get("/api/v1/agents/zed", headers=ADMIN)).status == 404


async def test_duplicate_numbers_are_kept_once(client: TestClient[Any, Any]) -> None:
    body = {"name": "Zed", "numbers": [N1, N2, N1]}
    data = await (await client.put("/api/v1/agents/zed", json=body, headers=ADMIN)).json()
    assert data["numbers"] == [N1, N2]


async def test_token_is_shown_once_and_stored_only_as_a_hash(
    client: TestClient[Any, Any], desk: Desk, redis: aioredis.Redis
) -> None:
    resp = await client.post("/api/v1/agents/bob/tokens", headers=ADMIN)
    issued = await resp.json()
    token = issued["token"]
    assert issued["agent_id"] == "bob"
    assert token.startswith("dlt_")
    assert len(token) > 40
    stored: list[bytes] = []
    async for key in redis.scan_iter():
        stored.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "string":
            stored.append(await redis.get(key))
        elif kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                stored += [field, value]
    assert all(token.encode() not in blob for blob in stored)
    assert await redis.get(keys.token(hash_token(token))) == b"bob"
    listed = await (await client.get("/api/v1/agents/bob/tokens", headers=ADMIN)).json()
    assert issued["token_id"] in {t["token_id"] for t in listed["items"]}
    assert "token" not in listed["items"][0]
    assert (await client.get(f"/api/v1/numbers/{N2}", headers=bearer(token))).status == 200


async def test_token_for_unknown_agent_is_404(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/v1/agents/ghost/tokens", headers=ADMIN)
    assert resp.status == 404


async def test_delete_agent_cleans_its_index_and_tokens(
    client: TestClient[Any, Any], desk: Desk, redis: aioredis.Redis
) -> None:
    assert (await client.delete("/api/v1/agents/ana", headers=ADMIN)).status == 204
    assert "ana" not in await _members(redis, keys.number_agents(N1))
    assert "ana" not in await _members(redis, keys.AGENTS)
    assert not await redis.exists(keys.token(hash_token(desk.tokens["ana"])))
    assert (await client.delete("/api/v1/agents/ana", headers=ADMIN)).status == 404


async def test_agents_on_number_reads_the_index(
    client: TestClient[Any, Any], desk: Desk, redis_url: str
) -> None:
    from storage import Stores

    other = aioredis.Redis.from_url(redis_url)
    try:
        stores = Stores.on(other)
        agents = await stores.agents.on_number(N1)
        assert [(a.id, a.role) for a in agents] == [("ana", "agent"), ("mara", "manager")]
    finally:
        await other.aclose()
