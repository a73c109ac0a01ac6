"""Failed authentications are limited per real client address and overall (SECURITY.md).

One limiter (handlers/auth_failures.py) guards the API's bearer tokens, the console sign-in
and the /metrics token: a client past `auth_failures_burst` failures is refused with 429
before its token is even looked at (the right token included), while another client, or the
same one with no failure on record, still gets in. Successes never count. The client is the
socket's peer, or `Fly-Client-IP` with `trusted_proxy="fly"`: without a trusted proxy,
headers a client writes itself change nothing.

The first tests run real `python -m bot web` processes and a second real source address
(127.0.0.2: the whole 127/8 is loopback on Linux); the rest run the app in process.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.faults.harness import Cluster, report

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer dlt_wrong-guess"}
BURST = 10  # the default `auth_failures_burst`
GUESSES = 100

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def real_processes(test: Callable[..., Any]) -> Callable[..., Any]:
    """The marks of a test that runs real processes (tests/faults' own)."""
    for mark in (pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(90)):
        test = mark(test)
    return test


def _from(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """`headers` as sent through Fly's proxy for the client at `address`."""
    return {"Fly-Client-IP": address, **(headers or {})}


async def _guess(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url, headers=headers) as resp:
        body = await resp.json()
        if resp.status == 429:
            assert body["error"]["code"] == "too_many_requests"
            assert int(resp.headers["Retry-After"]) >= 1
        return resp.status


async def _flood(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[Counter[int], float]:
    """GUESSES wrong tokens at once: statuses and seconds taken."""
    started = time.monotonic()
    statuses = await asyncio.gather(*(_guess(http, url, headers) for _ in range(GUESSES)))
    return Counter(statuses), time.monotonic() - started


def _rejected(cluster: Cluster) -> int:
    """How many tokens the web process looked up and found wrong (its log lines)."""
    return sum(
        1
        for child in cluster.children
        for event in child.events()
        if event.get("event") == "api_token_rejected"
    )


# --- real processes ------------------------------------------------------------------------


@real_processes
async def test_a_guesser_is_cut_off_and_the_right_token_still_works_from_another_address(
    cluster: Cluster,
) -> None:
    await cluster.start_web()
    url = f"{cluster.base_url}/api/v1/numbers"
    statuses, seconds = await _flood(cluster.http, url, WRONG)
    report("auth_flood", guesses=GUESSES, seconds=f"{seconds:.2f}", statuses=dict(statuses))
    # Concurrent as they are, only the burst is checked: a slot is reserved before each check.
    assert statuses == {401: BURST, 429: GUESSES - BURST}
    assert seconds < 10
    # Refused before the check: the right token from the same address is refused too ...
    assert await _guess(cluster.http, url, ADMIN) == 429
    assert _rejected(cluster) == BURST
    # ... and gets in from another address.
    other = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=other) as http:
        assert await _guess(http, url, ADMIN) == 200
        assert await _guess(http, url, WRONG) == 401  # a budget of its own


@real_processes
async def test_behind_fly_the_limit_follows_fly_client_ip(cluster: Cluster) -> None:
    await cluster.start_web(trusted_proxy="fly")
    url = f"{cluster.base_url}/api/v1/numbers"
    statuses, _ = await _flood(cluster.http, url, _from("198.51.100.7", WRONG))
    assert statuses == {401: BURST, 429: GUESSES - BURST}
    assert await _guess(cluster.http, url, _from("198.51.100.7", ADMIN)) == 429
    # Every request comes from Fly's proxy (here 127.0.0.1): another client is another key.
    assert await _guess(cluster.http, url, _from("198.51.100.8", ADMIN)) == 200
    assert _rejected(cluster) == BURST


# --- in process: the API -------------------------------------------------------------------


async def _status(client: TestClient[Any, Any], headers: dict[str, str], path: str = "") -> int:
    resp = await client.get(path or "/api/v1/numbers", headers=headers)
    await resp.read()
    if resp.status == 429:
        assert int(resp.headers["Retry-After"]) >= 1
    return resp.status


async def test_successes_do_not_count_and_a_limited_client_is_refused_before_the_check(
    client: TestClient[Any, Any],
) -> None:
    for _ in range(3 * BURST):
        assert await _status(client, ADMIN) == 200
    # Several at once as well: a success gives its reserved slot back.
    assert set(await asyncio.gather(*(_status(client, ADMIN) for _ in range(5)))) == {200}
    assert [await _status(client, WRONG) for _ in range(BURST)] == [401] * BURST
    assert await _status(client, WRONG) == 429
    assert await _status(client, ADMIN) == 429
    assert await _status(client, {}) == 429  # no token: refused all the same


async def test_many_right_tokens_at_once_from_one_address_all_get_in(
    client: TestClient[Any, Any],
) -> None:
    # 60 desks of one office reconnecting at once (one address): far more checks in flight
    # than the burst. Their slots come back as each succeeds, so the others wait, not 429
    # (a browser's EventSource does not retry after a 429).
    statuses = await asyncio.gather(*(_status(client, ADMIN) for _ in range(60)))
    assert set(statuses) == {200}
    # A real failure still counts at once: the budget is intact for wrong tokens.
    assert [await _status(client, WRONG) for _ in range(BURST)] == [401] * BURST
    assert await _status(client, WRONG) == 429


async def test_after_the_burst_failures_are_let_through_at_the_sustained_rate(
    make_settings: Callable[..., Settings], aiohttp_client: MakeClient
) -> None:
    # A burst of 2, then one failure every 2 s.
    settings = make_settings(auth_failures_burst=2, auth_failures_per_minute=30)
    client = await aiohttp_client(create_app(settings))
    assert [await _status(client, WRONG) for _ in range(2)] == [401, 401]
    refused = await client.get("/api/v1/numbers", headers=ADMIN)
    assert refused.status == 429
    assert refused.headers["Retry-After"] in ("1", "2")  # about one interval
    await asyncio.sleep(2.2)
    # One slot came back: one more check, then refused again until the next one.
    assert await _status(client, WRONG) == 401
    assert await _status(client, ADMIN) == 429


async def test_without_a_trusted_proxy_client_headers_do_not_change_the_key(
    client: TestClient[Any, Any],
) -> None:
    statuses = [
        await _status(
            client,
            {**WRONG, "Fly-Client-IP": f"203.0.113.{i}", "X-Forwarded-For": f"192.0.2.{i}"},
        )
        for i in range(BURST + 2)
    ]
    assert statuses == [401] * BURST + [429, 429]


async def test_an_ipv6_client_is_limited_on_its_64(
    make_settings: Callable[..., Settings], aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(make_settings(trusted_proxy="fly")))
    for i in range(BURST):
        assert await _status(client, _from(f"2001:db8:0:1::{i + 1}", WRONG)) == 401
    assert await _status(client, _from("2001:db8:0:1:ffff::9", ADMIN)) == 429
    assert await _status(client, _from("2001:db8:0:2::1", ADMIN)) == 200
    # An IPv4-mapped address is the IPv4 client.
    for _ in range(BURST):
        assert await _status(client, _from("::ffff:198.51.100.9", WRONG)) == 401
    assert await _status(client, _from("198.51.100.9", ADMIN)) == 429


async def test_when_the_global_budget_is_spent_only_clients_without_recent_failure_are_checked(
    make_settings: Callable[..., Settings], aiohttp_client: MakeClient
) -> None:
    # One failure per 10 s across all clients: the first failure spends it.
    settings = make_settings(trusted_proxy="fly", auth_failures_global_per_second=0.1)
    client = await aiohttp_client(create_app(settings))
    assert await _status(client, _from("198.51.100.1", WRONG)) == 401
    # A new failure from a fresh address: 429, not counted globally, and it costs its burst.
    assert await _status(client, _from("198.51.100.2", WRONG)) == 429
    assert await _status(client, _from("198.51.100.2", ADMIN)) == 429
    # Clients that failed recently are refused before the check, the right token included.
    assert await _status(client, _from("198.51.100.1", ADMIN)) == 429
    # A client with no recent failure is still checked: a colleague gets in.
    assert await _status(client, _from("198.51.100.3", ADMIN)) == 200
    assert await _status(client, _from("198.51.100.3", ADMIN)) == 200
    assert await _status(client, _from("198.51.100.4", {})) == 401


# --- in process: the console sign-in -----------------------------------------------------

SIGN_IN = "/console/sign-in"
# As Fly's proxy forwards a browser's HTTPS request.
HTTPS = {"X-Forwarded-Proto": "https", "Host": "desk.example.com"}


async def _sign_in(client: TestClient[Any, Any], token: str, address: str | None = None) -> int:
    headers = _from(address, HTTPS) if address else {}
    resp = await client.post(SIGN_IN, data={"token": token}, headers=headers, allow_redirects=False)
    await resp.read()
    if resp.status == 429:
        assert int(resp.headers["Retry-After"]) >= 1
    return resp.status


async def test_console_sign_in_is_limited_per_real_client_and_successes_do_not_count(
    make_settings: Callable[..., Settings], aiohttp_client: MakeClient
) -> None:
    client = await aiohttp_client(create_app(make_settings(trusted_proxy="fly")))
    for _ in range(2 * BURST):
        assert await _sign_in(client, ADMIN_TOKEN, "198.51.100.20") == 303
    failures = [await _sign_in(client, "dlt_wrong", "198.51.100.20") for _ in range(BURST)]
    assert failures == [401] * BURST
    assert await _sign_in(client, ADMIN_TOKEN, "198.51.100.20") == 429
    # Everybody reaches the app through Fly's proxy: another client is not affected.
    assert await _sign_in(client, ADMIN_TOKEN, "198.51.100.21") == 303
    # One limiter: failures on the API count against the console, and the other way round.
    assert await _status(client, _from("198.51.100.20", ADMIN)) == 429
    for _ in range(BURST):
        assert await _status(client, _from("198.51.100.22", WRONG)) == 401
    assert await _sign_in(client, ADMIN_TOKEN, "198.51.100.22") == 429


async def test_console_sign_in_without_a_trusted_proxy_keys_on_the_peer(
    client: TestClient[Any, Any],
) -> None:
    for i in range(BURST):
        resp = await client.post(
            SIGN_IN,
            data={"token": "dlt_wrong"},
            headers={"Fly-Client-IP": f"203.0.113.{i}", "X-Forwarded-For": f"192.0.2.{i}"},
            allow_redirects=False,
        )
        assert resp.status == 401
    assert await _sign_in(client, ADMIN_TOKEN) == 429


# --- in process: /metrics ------------------------------------------------------------------


async def test_metrics_asks_for_its_token_when_one_is_set(
    client: TestClient[Any, Any],
    make_settings: Callable[..., Settings],
    aiohttp_client: MakeClient,
) -> None:
    assert await _status(client, {}, "/metrics") == 200  # no metrics_token: public
    client = await aiohttp_client(create_app(make_settings(metrics_token="scrape-me")))
    bare = await client.get("/metrics")
    assert bare.status == 401
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await bare.json())["error"]["code"] == "unauthorized"
    scraper = {"Authorization": "Bearer scrape-me"}
    assert await _status(client, scraper, "/metrics") == 200
    # A token of another kind is not the metrics token.
    assert await _status(client, ADMIN, "/metrics") == 401
    for _ in range(BURST - 1):
        assert await _status(client, {"Authorization": "Bearer scrape-you"}, "/metrics") == 401
    # Failures count in the same limiter: the right token is now refused before the check.
    assert await _status(client, scraper, "/metrics") == 429
