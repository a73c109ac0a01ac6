"""Sign-in, the session cookie, CSRF and the default-deny guard of /console."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import Settings
from tests.api.conftest import ADMIN, N1, N2
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import HTMX, Desk, csrf_of, sign_in

PAGES = [
    "/console",
    f"/console/numbers/{N1}/settings",
    f"/console/numbers/{N1}/after-hours",
    f"/console/numbers/{N1}/tickets",
    f"/console/numbers/{N1}/monitoring",
    "/console/contacts",
    "/console/quick-replies",
]


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_sends_a_visitor_without_session_to_sign_in(
    client: TestClient[Any, Any], desk: Desk, path: str
) -> None:
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/console/sign-in")


async def test_htmx_request_without_session_is_401_with_a_redirect_for_htmx(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.get(f"/console/numbers/{N1}/tickets/lists", headers=HTMX)
    assert resp.status == 401
    assert resp.headers["HX-Redirect"].startswith("/console/sign-in")


async def test_sign_in_sets_an_http_only_same_site_strict_cookie_on_localhost(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.post("/console/sign-in", data={"token": ADMIN_TOKEN}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/console"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("deskline_console=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path=/console", "samesite=strict"} <= attributes
    # Plain HTTP is allowed on a loopback host only, and then the cookie cannot be Secure.
    assert "secure" not in attributes


async def test_behind_an_https_proxy_the_cookie_is_secure_and_prefixed(
    client: TestClient[Any, Any],
    make_settings: Callable[..., Settings],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    headers = {"X-Forwarded-Proto": "https", "Host": "desk.example.com"}
    # Without a trusted proxy, X-Forwarded-Proto is the client's word: still plain HTTP.
    resp = await client.post(
        "/console/sign-in", data={"token": ADMIN_TOKEN}, headers=headers, allow_redirects=False
    )
    assert resp.status == 403
    behind_fly = await aiohttp_client(create_app(make_settings(trusted_proxy="fly")))
    resp = await behind_fly.post(
        "/console/sign-in", data={"token": ADMIN_TOKEN}, headers=headers, allow_redirects=False
    )
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Secure-deskline_console=")
    assert "secure" in {a.strip().lower() for a in cookie.split(";")[1:]}


async def test_sign_in_over_plain_http_away_from_localhost_is_refused(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.post(
        "/console/sign-in",
        data={"token": ADMIN_TOKEN},
        headers={"Host": "desk.example.com"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert "Set-Cookie" not in resp.headers
    assert "HTTPS" in await resp.text()


async def test_a_wrong_token_is_401_and_starts_no_session(
    client: TestClient[Any, Any], desk: Desk, redis: aioredis.Redis
) -> None:
    resp = await client.post("/console/sign-in", data={"token": "dlt_nope"}, allow_redirects=False)
    assert resp.status == 401
    assert "not valid" in await resp.text()
    assert "Set-Cookie" not in resp.headers
    assert [k async for k in redis.scan_iter("dl:console:*")] == []


async def test_the_session_keeps_the_token_digest_never_the_token(
    client: TestClient[Any, Any], desk: Desk, redis: aioredis.Redis
) -> None:
    token = desk.token("ana")
    await sign_in(client, token)
    sessions = [k async for k in redis.scan_iter("dl:console:session:*")]
    assert len(sessions) == 1
    fields = await redis.hgetall(sessions[0])
    assert fields[b"token_hash"] == hashlib.sha256(token.encode()).hexdigest().encode()
    assert fields[b"caller"] == b"ana"
    # Nothing stored and nothing sent to the browser holds the token itself.
    assert all(token.encode() not in v for v in fields.values())
    cookie_id = next(iter(client.session.cookie_jar)).value
    assert not await redis.exists(f"dl:console:session:{cookie_id}")
    for path in PAGES[:4]:
        assert token not in await (await client.get(path)).text()


async def test_a_revoked_token_ends_its_sessions_at_the_next_request(
    client: TestClient[Any, Any], desk: Desk, redis: aioredis.Redis
) -> None:
    await sign_in(client, desk.token("ana"))
    resp = await client.delete("/api/v1/agents/ana/tokens", headers=ADMIN)
    assert resp.status == 204
    resp = await client.get(f"/console/numbers/{N1}/settings", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/console/sign-in")
    assert [k async for k in redis.scan_iter("dl:console:session:*")] == []


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"/console/numbers/{N1}/absence", data={"absence.enabled": "on"}, allow_redirects=False
    )
    assert resp.status == 403
    resp = await client.post(
        f"/console/numbers/{N1}/absence",
        data={"absence.enabled": "on", "csrf": "forged"},
        allow_redirects=False,
    )
    assert resp.status == 403
    number = await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json()
    assert number["absence"]["enabled"] is False


async def test_the_csrf_header_of_htmx_requests_is_accepted(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"/console/numbers/{N1}/absence",
        data={"absence.enabled": "on"},
        headers={**HTMX, "X-CSRF-Token": csrf},
    )
    assert resp.status == 200
    number = await (await client.get(f"/api/v1/numbers/{N1}", headers=ADMIN)).json()
    assert number["absence"]["enabled"] is True


async def test_a_cross_site_post_is_refused_even_with_a_valid_csrf_token(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post(
        f"/console/numbers/{N1}/absence",
        data={"absence.enabled": "on", "csrf": csrf},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403
    # Sign-in too (no session yet: the Origin check is what stops login CSRF).
    resp = await client.post(
        "/console/sign-in",
        data={"token": ADMIN_TOKEN},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert resp.status == 403


async def test_sign_out_ends_the_session(
    client: TestClient[Any, Any], desk: Desk, redis: aioredis.Redis
) -> None:
    csrf = await sign_in(client, ADMIN_TOKEN)
    resp = await client.post("/console/sign-out", data={"csrf": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert [k async for k in redis.scan_iter("dl:console:session:*")] == []
    resp = await client.get("/console", allow_redirects=False)
    assert resp.status == 303


@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        (f"/console/numbers/{N1}/tickets", f"/console/numbers/{N1}/tickets"),
        ("//evil.example/console", "/console"),
        ("https://evil.example/console", "/console"),
        ("/\\evil.example", "/console"),
        ("/api/v1/numbers", "/console"),
        ("/console/sign-in", "/console"),
    ],
)
async def test_sign_in_goes_on_to_console_paths_only(
    client: TestClient[Any, Any], desk: Desk, next_path: str, expected: str
) -> None:
    resp = await client.post(
        "/console/sign-in",
        data={"token": ADMIN_TOKEN, "next": next_path},
        allow_redirects=False,
    )
    assert resp.headers["Location"] == expected


async def test_sign_in_attempts_are_limited_per_address(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    statuses = [
        (await client.post("/console/sign-in", data={"token": f"dlt_guess{i}"})).status
        for i in range(11)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    # The right token waits too: the limit is on attempts, not on failures.
    resp = await client.post("/console/sign-in", data={"token": ADMIN_TOKEN})
    assert resp.status == 429


async def test_pages_carry_a_strict_content_security_policy(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    await sign_in(client, ADMIN_TOKEN)
    resp = await client.get(f"/console/numbers/{N1}/settings")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["Cache-Control"] == "no-store"
    html = await resp.text()
    # No inline script: everything the page runs comes from /console/static.
    assert "<script>" not in html
    assert "<script src=" in html


async def test_a_user_sees_only_their_numbers(client: TestClient[Any, Any], desk: Desk) -> None:
    await sign_in(client, desk.token("ana"))
    home = await (await client.get("/console")).text()
    assert N1 in home
    assert N2 not in home
    resp = await client.get(f"/console/numbers/{N2}/settings")
    assert resp.status == 403
    assert "text/html" in resp.headers["Content-Type"]


async def test_the_number_picker_remembers_and_goes_to_the_same_page(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    await sign_in(client, ADMIN_TOKEN)
    resp = await client.get(
        "/console/select", params={"number": N2, "page": "tickets"}, allow_redirects=False
    )
    assert resp.headers["Location"] == f"/console/numbers/{N2}/tickets"
    page = await (await client.get(f"/console/numbers/{N2}/tickets")).text()
    assert f'<option value="{N2}" selected>' in page


async def test_static_files_are_served_without_a_session(client: TestClient[Any, Any]) -> None:
    page = await (await client.get("/console/sign-in")).text()
    assert "htmx.min.js?v=" in page
    resp = await client.get("/console/static/htmx.min.js")
    assert resp.status == 200
    assert "htmx" in await resp.text()
    resp = await client.get("/console/static/../../bot/settings.py")
    assert resp.status in (403, 404)


async def test_csrf_token_differs_per_session(client: TestClient[Any, Any], desk: Desk) -> None:
    first = await sign_in(client, ADMIN_TOKEN)
    second = await sign_in(client, ADMIN_TOKEN)
    assert first != second
    page = await (await client.get("/console")).text()
    assert csrf_of(page) == second
