"""Who may call what: the 401/403/404 matrix of /api/v1 over the real app and Redis.

An agent the caller may not see is a 404 whatever they ask of it (its existence is not theirs
to learn); a 403 is for what they can see but may not do. Number paths keep their 403.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.api.conftest import ADMIN, N1, N2, Desk, bearer, settings_body

ROLES = ("anonymous", "bad_token", "admin", "mara", "ana", "bob")


def _expect(**by_role: int) -> dict[str, int]:
    """Expected status per caller: anonymous and bad tokens are always 401."""
    return {"anonymous": 401, "bad_token": 401, **by_role}


# (method, path, body, expected status per caller). Each case runs on a fresh desk: ana and
# bob are agents of N1 and N2, mara manages N1.
CASES: list[tuple[str, str, Any, dict[str, int]]] = [
    ("GET", f"/api/v1/numbers/{N1}", None, _expect(admin=200, mara=200, ana=200, bob=403)),
    ("GET", f"/api/v1/numbers/{N2}", None, _expect(admin=200, mara=403, ana=403, bob=200)),
    ("PUT", f"/api/v1/numbers/{N1}", "settings", _expect(admin=200, mara=200, ana=403, bob=403)),
    ("PATCH", f"/api/v1/numbers/{N1}", {"absence": {"enabled": True}},
     _expect(admin=200, mara=200, ana=403, bob=403)),
    ("DELETE", f"/api/v1/numbers/{N1}", None, _expect(admin=204, mara=403, ana=403, bob=403)),
    ("GET", f"/api/v1/numbers/{N1}/hours", None, _expect(admin=200, mara=200, ana=200, bob=403)),
    ("GET", f"/api/v1/numbers/{N1}/audit", None, _expect(admin=200, mara=200, ana=403, bob=403)),
    ("GET", "/api/v1/numbers", None, _expect(admin=200, mara=200, ana=200, bob=200)),
    ("PUT", "/api/v1/agents/zed", {"name": "Zed", "numbers": [N1]},
     _expect(admin=201, mara=403, ana=403, bob=403)),
    ("GET", "/api/v1/agents/ana", None, _expect(admin=200, mara=200, ana=200, bob=404)),
    ("GET", "/api/v1/agents/bob", None, _expect(admin=200, mara=404, ana=404, bob=200)),
    ("DELETE", "/api/v1/agents/bob", None, _expect(admin=204, mara=404, ana=404, bob=403)),
    ("DELETE", "/api/v1/agents/ana", None, _expect(admin=204, mara=403, ana=403, bob=404)),
    ("PUT", "/api/v1/agents/ana/status", {"status": "online"},
     _expect(admin=200, mara=200, ana=200, bob=404)),
    ("PUT", "/api/v1/agents/bob/status", {"status": "break"},
     _expect(admin=200, mara=404, ana=404, bob=200)),
    ("POST", "/api/v1/agents/ana/tokens", None, _expect(admin=201, mara=403, ana=403, bob=404)),
    ("GET", "/api/v1/agents/ana/tokens", None, _expect(admin=200, mara=403, ana=403, bob=404)),
    ("DELETE", "/api/v1/agents/ana/tokens", None, _expect(admin=204, mara=403, ana=403, bob=404)),
    ("DELETE", "/api/v1/agents/ana/tokens/abc", None,
     _expect(admin=404, mara=403, ana=403, bob=404)),
    ("GET", "/api/v1/agents", None, _expect(admin=200, mara=200, ana=200, bob=200)),
]  # fmt: skip


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "expected"), CASES, ids=lambda v: str(v))
async def test_role_matrix(
    client: TestClient[Any, Any],
    desk: Desk,
    who: str,
    method: str,
    path: str,
    body: Any,
    expected: dict[str, int],
) -> None:
    payload = settings_body() if body == "settings" else body
    resp = await client.request(method, path, json=payload, headers=desk.headers(who))
    assert resp.status == expected[who], await resp.text()
    if resp.status in (401, 403, 404):
        error = (await resp.json())["error"]
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}[resp.status]
        assert error["code"] == code


async def test_401_carries_a_bearer_challenge(client: TestClient[Any, Any]) -> None:
    resp = await client.get(f"/api/v1/numbers/{N1}")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_every_api_route_refuses_a_call_without_token(client: TestClient[Any, Any]) -> None:
    """Default-deny: whoever adds a route under /api/v1 gets authentication for free."""
    app: web.Application = client.app
    checked = 0
    for resource in app.router.resources():
        path = resource.canonical
        if not path.startswith("/api/v1") or path == "/api/v1/openapi.json":
            continue
        concrete = path.replace("{phone_number_id}", N1).replace("{agent_id}", "ana")
        concrete = concrete.replace("{token_id}", "abc").replace("{id}", "x")
        for route in resource:
            resp = await client.request(route.method, concrete)
            assert resp.status == 401, (route.method, path)
            checked += 1
    assert checked >= 15


async def test_openapi_document_is_public(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["openapi"].startswith("3.1")


async def test_list_numbers_shows_only_the_callers_numbers(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    async def ids(who: str) -> list[str]:
        resp = await client.get("/api/v1/numbers", headers=desk.headers(who))
        return [n["phone_number_id"] for n in (await resp.json())["items"]]

    assert await ids("admin") == sorted([N1, N2])
    assert await ids("ana") == [N1]
    assert await ids("bob") == [N2]


async def test_list_agents_by_role(client: TestClient[Any, Any], desk: Desk) -> None:
    async def ids(who: str) -> list[str]:
        resp = await client.get("/api/v1/agents", headers=desk.headers(who))
        return [a["id"] for a in (await resp.json())["items"]]

    assert await ids("admin") == ["ana", "bob", "mara"]
    assert await ids("mara") == ["ana", "mara"]
    assert await ids("ana") == ["ana"]


async def test_an_unknown_agent_and_an_invisible_one_get_the_same_404(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    assert (await client.get("/api/v1/agents/ghost", headers=ADMIN)).status == 404
    ghost = await client.get("/api/v1/agents/ghost", headers=desk.headers("mara"))
    hidden = await client.get("/api/v1/agents/bob", headers=desk.headers("mara"))
    assert ghost.status == hidden.status == 404
    # The same body, but for the id the caller gave.
    assert await hidden.json() == {"error": {"code": "not_found", "message": "agent bob not found"}}
    assert await ghost.json() == {
        "error": {"code": "not_found", "message": "agent ghost not found"}
    }


async def test_revoked_token_is_refused_on_the_next_call(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    headers = desk.headers("ana")
    assert (await client.get(f"/api/v1/numbers/{N1}", headers=headers)).status == 200
    resp = await client.delete("/api/v1/agents/ana/tokens", headers=ADMIN)
    assert resp.status == 204
    assert (await client.get(f"/api/v1/numbers/{N1}", headers=headers)).status == 401


async def test_revoking_one_token_keeps_the_others(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.post("/api/v1/agents/ana/tokens", headers=ADMIN)
    second = await resp.json()
    listed = await (await client.get("/api/v1/agents/ana/tokens", headers=ADMIN)).json()
    assert len(listed["items"]) == 2
    resp = await client.delete(f"/api/v1/agents/ana/tokens/{second['token_id']}", headers=ADMIN)
    assert resp.status == 204
    assert (await client.get("/api/v1/agents/ana", headers=bearer(second["token"]))).status == 401
    assert (await client.get("/api/v1/agents/ana", headers=desk.headers("ana"))).status == 200
    again = await client.delete(f"/api/v1/agents/ana/tokens/{second['token_id']}", headers=ADMIN)
    assert again.status == 404


async def test_deleted_agents_tokens_stop_working(client: TestClient[Any, Any], desk: Desk) -> None:
    assert (await client.delete("/api/v1/agents/bob", headers=ADMIN)).status == 204
    assert (await client.get(f"/api/v1/numbers/{N2}", headers=desk.headers("bob"))).status == 401


async def test_a_role_change_applies_to_the_next_call(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    headers = desk.headers("ana")
    patch = {"display_name": "Nova"}
    assert (await client.patch(f"/api/v1/numbers/{N1}", json=patch, headers=headers)).status == 403
    body = {"name": "Ana", "numbers": [N1], "role": "manager"}
    assert (await client.put("/api/v1/agents/ana", json=body, headers=ADMIN)).status == 200
    assert (await client.patch(f"/api/v1/numbers/{N1}", json=patch, headers=headers)).status == 200


async def test_query_token_is_not_accepted_by_ordinary_routes(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.get(f"/api/v1/numbers/{N1}", params={"token": desk.tokens["ana"]})
    assert resp.status == 401


async def test_without_admin_token_configured_nobody_is_bootstrap_admin(
    make_settings: Any, aiohttp_client: Any
) -> None:
    from bot.app import create_app

    client = await aiohttp_client(create_app(make_settings(admin_token=None)))
    resp = await client.get("/api/v1/numbers", headers=bearer(""))
    assert resp.status == 401
    resp = await client.get("/api/v1/numbers", headers=ADMIN)
    assert resp.status == 401
