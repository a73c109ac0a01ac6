"""The authentication surface: what answers without a token, and how tokens are compared.

- Every route of the router is called without credentials: only the webhook (which has its
  own signature and verify token), health, metrics and the OpenAPI document answer; the
  console's sign-in page and static files are the console's way in.
- Secrets are never compared with `==`: the bootstrap admin token, the verify token and the
  webhook signature go through `hmac.compare_digest`, and agent tokens are looked up by their
  SHA-256 digest, so no comparison ever runs over the secret itself.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

import bot.domain.auth
import handlers.api.auth
from tests.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Answer 200 to anyone: they hold no customer data.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
}
# Answer without a token, but only after their own check (Meta's signature, the verify
# token): called bare they refuse with these statuses.
SELF_GUARDED = {("POST", "/webhook"): 401, ("GET", "/webhook"): 403}
# Answer a redirect to the console's address, nothing else.
REDIRECTS = {("GET", "/"): "/console"}
# The console's way in: the sign-in form (and its post, which needs a token in the form)
# and the static assets.
CONSOLE_DOOR = ("/console/sign-in", "/console/static")


def _concrete(path: str) -> str:
    """A callable path for a route pattern: every `{param}` (with or without a regex) → x."""
    out, depth, param = "", 0, False
    for ch in path:
        if ch == "{":
            depth += 1
            if depth == 1:
                out += "x"
                param = True
        elif ch == "}":
            depth -= 1
            param = depth > 0
        elif not param:
            out += ch
    return out


async def test_only_webhook_health_metrics_and_openapi_answer_without_a_token(
    client: TestClient[Any, Any],
) -> None:
    app: web.Application = client.app
    seen: set[tuple[str, str]] = set()
    refused = 0
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        pattern = resource.canonical
        path = _concrete(pattern)
        resp = await client.request(route.method, path, allow_redirects=False)
        seen.add((route.method, pattern))
        where = f"{route.method} {pattern}: {resp.status}"
        if (route.method, pattern) in PUBLIC:
            assert resp.status == 200, where
        elif (route.method, pattern) in SELF_GUARDED:
            assert resp.status == SELF_GUARDED[route.method, pattern], where
        elif (route.method, pattern) in REDIRECTS:
            assert resp.status == 302, where
            assert resp.headers["Location"] == REDIRECTS[route.method, pattern], where
        elif pattern.startswith(CONSOLE_DOOR):
            # The form itself, or a refusal; never a session without a token.
            assert "Set-Cookie" not in resp.headers or resp.status >= 400, where
        elif pattern.startswith("/console"):
            # No session: sent to sign in, or refused.
            location = resp.headers.get("Location", "")
            assert resp.status in (401, 403) or (
                300 <= resp.status < 400 and location.startswith("/console/sign-in")
            ), where
            refused += 1
        else:
            assert resp.status == 401, where
            refused += 1
    assert PUBLIC | set(SELF_GUARDED) <= seen, "a public route is gone: update the lists"
    assert refused >= 30


async def test_every_path_outside_the_routes_is_a_404_not_a_way_around(
    client: TestClient[Any, Any],
) -> None:
    for path in (
        "/api/v1/../healthz",
        "/api/v1/numbers/x/../../agents",
        "/API/V1/agents",
        "/api/v1//agents",
        "/api/v1/agents/",
        "/console/static/../../bot/settings.py",
        "/%2e%2e/api/v1/agents",
    ):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status in (401, 403, 404), (path, resp.status)


async def test_agent_tokens_are_stored_and_looked_up_only_as_sha256_digests(
    client: TestClient[Any, Any], redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = {"name": "Ana", "numbers": ["1000"], "slots": 3, "role": "agent"}
    assert (await client.put("/api/v1/agents/ana", json=agent, headers=ADMIN)).ok
    token = (await (await client.post("/api/v1/agents/ana/tokens", headers=ADMIN)).json())["token"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    # Nothing in Redis holds the token itself, keys or values.
    async for key in redis.scan_iter("*"):
        assert token.encode() not in key
        kind = (await redis.type(key)).decode()
        values: list[Any] = []
        if kind == "string":
            values = [await redis.get(key)]
        elif kind == "hash":
            values = [*(await redis.hgetall(key)).items()]
        assert token not in repr(values), key

    # The lookup sees the digest only, computed before Redis is asked.
    looked_up: list[str] = []
    stores_for_token = type(client.app[handlers.api.auth.stores_key].agents).for_token

    async def spy(self: Any, token_hash: str) -> Any:
        looked_up.append(token_hash)
        return await stores_for_token(self, token_hash)

    monkeypatch.setattr(type(client.app[handlers.api.auth.stores_key].agents), "for_token", spy)
    resp = await client.get("/api/v1/agents/ana", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert looked_up == [digest]
    # And the digest is the whole key: without it the token authenticates nobody.
    await redis.rename(f"dl:token:{digest}", "moved-away")
    again = await client.get("/api/v1/agents/ana", headers={"Authorization": f"Bearer {token}"})
    assert again.status == 401


async def test_the_bootstrap_admin_token_is_compared_in_constant_time(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(bot.domain.auth.hmac, "compare_digest", spy)
    wrong = await client.get("/api/v1/agents", headers={"Authorization": "Bearer guess"})
    assert wrong.status == 401
    assert (b"guess", ADMIN_TOKEN.encode()) in compared
    right = await client.get("/api/v1/agents", headers=ADMIN)
    assert right.status == 200


_SECRET_WORDS = ("token", "secret", "signature", "digest", "password")


def _names(node: ast.AST) -> list[str]:
    return [
        n.id if isinstance(n, ast.Name) else n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Name | ast.Attribute)
    ]


def test_no_secret_is_compared_with_equality() -> None:
    """Code review as a test: `==`/`!=` never has a token, secret, signature or digest on
    either side (`is None` checks and lookups by digest are fine)."""
    offenders = []
    for package in ("bot", "handlers", "storage", "jobs"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if not isinstance(node, ast.Compare):
                    continue
                if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                    continue
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value is None for o in operands):
                    continue
                names = [n.lower() for o in operands for n in _names(o)]
                if any(word in name for name in names for word in _SECRET_WORDS):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
