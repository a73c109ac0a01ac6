"""Headers: what every response carries, and which request headers are believed.

- `X-Content-Type-Options: nosniff` on every kind of response: JSON answers and errors, 404s
  of no route, the webhook's text/plain challenge echo (a browser must not render an echoed
  `<script>` as HTML), static files, redirects, event streams, PDFs.
- A client's `X-Request-Id` reaches the logs only when short and plain; otherwise a fresh one.
- `X-Forwarded-Proto` and the client address headers count only behind the trusted proxy.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import Settings
from handlers.signature import sign
from tests.api.conftest import ADMIN, N1, put_agent, put_number
from tests.api.test_history import History
from tests.conftest import ADMIN_TOKEN, APP_SECRET, VERIFY_TOKEN

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
NOSNIFF = ("X-Content-Type-Options", "nosniff")
CHALLENGE = "<script>alert(1)</script>"


async def test_every_kind_of_response_says_nosniff(
    make_settings: Callable[..., Settings], aiohttp_client: MakeClient, redis: aioredis.Redis
) -> None:
    client = await aiohttp_client(create_app(make_settings(max_body_bytes=1024)))
    await put_number(client, N1)
    await put_agent(client, "ana", role="agent", numbers=[N1])
    ticket_id = await History(redis).open(datetime.now(UTC))
    subscribe = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": CHALLENGE,
    }
    big = b"{" + b" " * 2048 + b"}"
    signed = {"X-Hub-Signature-256": sign(APP_SECRET.encode(), big)}
    calls: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("GET", "/webhook", {"params": subscribe}, 200, "text/plain"),
        ("GET", "/webhook", {"params": {**subscribe, "hub.verify_token": "x"}}, 403, "json"),
        ("POST", "/webhook", {"data": b"{}"}, 401, "json"),
        ("POST", "/webhook", {"data": big, "headers": signed}, 413, "json"),
        ("GET", "/healthz", {}, 200, "json"),
        ("GET", "/metrics", {}, 200, "text/plain"),
        ("GET", "/nowhere", {}, 404, "json"),
        ("DELETE", "/healthz", {}, 405, "json"),
        ("GET", "/api/v1/numbers", {}, 401, "json"),
        ("GET", "/api/v1/numbers", {"headers": ADMIN}, 200, "json"),
        ("GET", "/api/v1/openapi.json", {}, 200, "json"),
        ("GET", f"/api/v1/tickets/{ticket_id}/transcript.pdf", {"headers": ADMIN}, 200, "pdf"),
        ("GET", "/console", {}, 303, ""),
        ("GET", "/console/sign-in", {}, 200, "text/html"),
        ("GET", "/console/static/console.css", {}, 200, "text/css"),
        ("GET", "/console/static/nothing.css", {}, 404, ""),
    ]
    for method, path, options, status, kind in calls:
        resp = await client.request(method, path, allow_redirects=False, **options)
        body = await resp.read()
        where = f"{method} {path}: {resp.status} {resp.headers.get('Content-Type')}"
        assert resp.status == status, where
        assert kind in resp.headers.get("Content-Type", ""), where
        assert resp.headers.get(NOSNIFF[0]) == NOSNIFF[1], where
        if path == "/webhook" and status == 200:
            assert body.decode() == CHALLENGE
    # The console's own security headers are still there.
    page = await client.get("/console/sign-in")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    # An event stream: its headers leave before any event, from the handler itself.
    stream = await client.get(
        "/api/v1/agents/ana/events", headers={**ADMIN, "Accept": "text/event-stream"}
    )
    try:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers.get(NOSNIFF[0]) == NOSNIFF[1]
    finally:
        stream.close()


# --- X-Request-Id ------------------------------------------------------------------------------

_GENERATED = re.compile(r"[0-9a-f]{16}")


async def _request_ids(client: TestClient[Any, Any], presented: str) -> tuple[str, set[str]]:
    """The request id answered, and those the request's log lines carried (a wrong token
    makes it log; the test stays within the burst of failures a client may have)."""
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as events:
        resp = await client.get(
            "/api/v1/numbers",
            headers={"X-Request-Id": presented, "Authorization": "Bearer dlt_wrong"},
        )
    assert resp.status == 401
    logged = {str(event["request_id"]) for event in events if "request_id" in event}
    assert logged, events
    return resp.headers["X-Request-Id"], logged


UNSAFE_IDS = ["a" * 65, "two words", "<script>", 'x", "level": "critical', "caf\u00e9"]
SAFE_IDS = ["req-42", "A.b_c-9", "z" * 64]


async def test_only_a_short_plain_request_id_is_kept_else_a_fresh_one_is_logged(
    client: TestClient[Any, Any],
) -> None:
    for presented in UNSAFE_IDS:
        # As raw bytes on the wire: a non-ASCII id arrives as UTF-8.
        answered, logged = await _request_ids(client, presented.encode().decode("latin-1"))
        assert _GENERATED.fullmatch(answered), (presented, answered)
        assert logged == {answered}, presented
    for presented in SAFE_IDS:
        assert await _request_ids(client, presented) == (presented, {presented})


# --- which request headers are believed ------------------------------------------------------

SIGN_IN = "/console/sign-in"


async def _cookie(client: TestClient[Any, Any], headers: dict[str, str]) -> tuple[int, str]:
    resp = await client.post(
        SIGN_IN, data={"token": ADMIN_TOKEN}, headers=headers, allow_redirects=False
    )
    return resp.status, resp.headers.get("Set-Cookie", "")


async def test_x_forwarded_proto_counts_only_behind_the_trusted_proxy(
    client: TestClient[Any, Any],
    make_settings: Callable[..., Settings],
    aiohttp_client: MakeClient,
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    # Local run (loopback host and peer): plain HTTP, so a plain cookie whatever the header says.
    status, cookie = await _cookie(client, https)
    assert status == 303
    assert cookie.startswith("deskline_console=")
    assert "secure" not in cookie.lower()
    behind_fly = await aiohttp_client(create_app(make_settings(trusted_proxy="fly")))
    status, cookie = await _cookie(
        behind_fly, {**https, "Host": "desk.example.com", "Fly-Client-IP": "198.51.100.5"}
    )
    assert status == 303
    assert cookie.startswith("__Secure-deskline_console=")


async def test_a_loopback_host_header_from_a_remote_client_is_not_a_local_run(
    make_settings: Callable[..., Settings], aiohttp_client: MakeClient
) -> None:
    """Behind Fly the client is `Fly-Client-IP`, never this machine: claiming `Host: localhost`
    over plain HTTP does not unlock the cookie-in-clear sign-in of local runs."""
    client = await aiohttp_client(create_app(make_settings(trusted_proxy="fly")))
    status, cookie = await _cookie(
        client, {"Host": "localhost", "Fly-Client-IP": "198.51.100.5", "X-Forwarded-Proto": "http"}
    )
    assert status == 403
    assert cookie == ""
