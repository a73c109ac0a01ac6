"""The event streams (API `GET /api/v1/agents/{id}/events`, console `/console/numbers/{n}/events`)
under attack: one tenant reading another's events, a revoked token or an ended session still
listening, one user holding streams without limit, an event id Redis refuses.

The first four run against real `python -m bot web` processes (tests/faults/harness.py); the
others on the in-process app, with a short `stream_recheck_s` where they wait for a re-check.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.appkeys import stores_key
from bot.runtime.embedded import free_port
from bot.settings import Settings
from storage import keys
from storage.events import EventsStore, is_event_id
from tests.api.conftest import ADMIN, N1, N2, put_agent, put_number
from tests.faults.harness import CLOSED, OPEN, Cluster, report, until

STREAM = {"Accept": "text/event-stream"}
# A has CLOSED, B has OPEN (the harness's two numbers).
A, B = CLOSED, OPEN
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# --- reading streams ------------------------------------------------------------------------


async def next_event(resp: ClientResponse, within: float = 10) -> dict[str, Any]:
    """The next event frame of a stream (comments, `retry:` and `ready` skipped)."""
    async with asyncio.timeout(within):
        while True:
            raw = (await resp.content.readuntil(b"\n\n")).decode()
            fields = dict(
                line.partition(": ")[::2]
                for line in raw.splitlines()
                if line and not line.startswith(":")
            )
            if "event" in fields and fields["event"] != "ready":
                return {"id": fields["id"], "type": fields["event"], **json.loads(fields["data"])}


def events_of(text: str) -> list[dict[str, Any]]:
    """Every event frame of a whole (snapshot) answer."""
    out = []
    for raw in text.split("\n\n"):
        fields = dict(line.partition(": ")[::2] for line in raw.splitlines())
        if "event" in fields:
            out.append({"type": fields["event"], **json.loads(fields["data"])})
    return out


async def ends_within(resp: ClientResponse, seconds: float) -> float:
    """Read the stream to its end; how long that took (fails after `seconds`)."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        while await resp.content.readany():
            pass
    return time.monotonic() - started


# --- a desk on real processes ----------------------------------------------------------------


@pytest.fixture(name="streaming")
async def fixture_streaming() -> AsyncIterator[aiohttp.ClientSession]:
    """A client without the harness's 10 s total timeout (streams stay open longer)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        yield http


async def desk(cluster: Cluster) -> dict[str, dict[str, str]]:
    """Numbers A and B; `duo` (agent) on both, `ma` manager of A, `mb` manager of B. Their
    bearer headers, by id."""
    await cluster.setup_numbers()
    people = {"duo": ("agent", [A, B]), "ma": ("manager", [A]), "mb": ("manager", [B])}
    headers = {}
    for agent_id, (role, numbers) in people.items():
        body = {"name": agent_id.title(), "numbers": numbers, "slots": 3, "role": role}
        status, answer = await cluster.api("PUT", f"/agents/{agent_id}", body)
        assert status in (200, 201), answer
        status, answer = await cluster.api("POST", f"/agents/{agent_id}/tokens")
        assert status == 201, answer
        headers[agent_id] = {"Authorization": f"Bearer {answer['token']}"}
    return headers


async def console_session(cluster: Cluster, headers: dict[str, str]) -> aiohttp.ClientSession:
    """A browser signed in to the console with the token of `headers` (cookie jar of its own;
    `unsafe`: the deployment's host is an IP address)."""
    http = aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=None)
    )
    token = headers["Authorization"].removeprefix("Bearer ")
    async with http.post(
        f"{cluster.base_url}/console/sign-in", data={"token": token}, allow_redirects=False
    ) as resp:
        assert resp.status == 303, await resp.text()
    return http


async def csrf(cluster: Cluster, http: aiohttp.ClientSession) -> str:
    async with http.get(f"{cluster.base_url}/console") as resp:
        match = _CSRF.search(await resp.text())
    assert match is not None
    return match.group(1)


def session_id(http: aiohttp.ClientSession) -> str:
    return next(c.value for c in http.cookie_jar if c.key == "deskline_console")


def event(seq: str, pnid: str | None) -> dict[str, Any]:
    """An after-hours contact event as jobs/after_hours.py publishes it (pnid None: none)."""
    data: dict[str, Any] = {"id": seq, "wa_id": "5511900000001", "name": f"Cliente {seq}"}
    if pnid is not None:
        data["phone_number_id"] = pnid
    return data


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_a_manager_streams_only_the_events_of_their_own_number(
    cluster: Cluster, direct: aioredis.Redis, streaming: aiohttp.ClientSession
) -> None:
    """`duo` works on A and B; the manager of A reads duo's stream but must get only A's
    events (and the manager of B only B's), in the API's replay, the API's live stream and
    the console's; an event naming no number reaches duo and admins only."""
    await cluster.start_web()
    who = await desk(cluster)
    events = EventsStore(direct)
    # Before anyone connects: what a replay from the start (Last-Event-ID 0-0) returns.
    for seq, pnid in (("r1", A), ("r2", B), ("r3", None)):
        await events.publish("duo", "after_hours.contact", event(seq, pnid))
    url = f"{cluster.base_url}/api/v1/agents/duo/events"

    async def replay(headers: dict[str, str]) -> list[str]:
        async with streaming.get(f"{url}?last_event_id=0-0", headers=headers) as resp:
            assert resp.status == 200
            return [e["id"] for e in events_of(await resp.text())]

    assert await replay(who["ma"]) == ["r1"]
    assert await replay(who["mb"]) == ["r2"]
    assert await replay(who["duo"]) == ["r1", "r2", "r3"]
    assert await replay(ADMIN) == ["r1", "r2", "r3"]

    # Live: the API's streams and the console's pages of each manager's own number.
    api = {m: await streaming.get(url, headers={**STREAM, **who[m]}) for m in ("ma", "mb")}
    browsers = {m: await console_session(cluster, who[m]) for m in ("ma", "mb")}
    pages = {
        "ma": await browsers["ma"].get(f"{cluster.base_url}/console/numbers/{A}/events"),
        "mb": await browsers["mb"].get(f"{cluster.base_url}/console/numbers/{B}/events"),
    }
    try:
        for resp in (*api.values(), *pages.values()):
            assert resp.status == 200
        # Console pages start with `ready`: wait for it, so the page's cursor is set.
        for resp in pages.values():
            assert (await resp.content.readuntil(b"event: ready\ndata: {}\n\n")).endswith(b"\n\n")
        for seq, pnid in (("b1", B), ("u1", None), ("a1", A), ("b2", B), ("a2", A)):
            await events.publish("duo", "after_hours.contact", event(seq, pnid))
        # Order is kept, so the first two events each gets prove the others were held back.
        for label, streams in (("api", api), ("console", pages)):
            got_a = [(await next_event(streams["ma"]))["id"] for _ in range(2)]
            got_b = [(await next_event(streams["mb"]))["id"] for _ in range(2)]
            assert (label, got_a, got_b) == (label, ["a1", "a2"], ["b1", "b2"])
    finally:
        for resp in (*api.values(), *pages.values()):
            resp.close()
        for http in browsers.values():
            await http.close()


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_a_revoked_token_ends_its_open_stream_within_ten_seconds(
    cluster: Cluster, streaming: aiohttp.ClientSession
) -> None:
    """EventSource style (`?token=`), default `stream_recheck_s`: revoking the agent's tokens
    ends the stream already open, and a reconnection is refused."""
    await cluster.start_web()
    who = await desk(cluster)
    token = who["duo"]["Authorization"].removeprefix("Bearer ")
    url = f"{cluster.base_url}/api/v1/agents/duo/events?token={token}"
    async with streaming.get(url, headers=STREAM) as resp:
        assert resp.status == 200
        await resp.content.readuntil(b"\n\n")  # the retry line: the stream is up
        status, _ = await cluster.api("DELETE", "/agents/duo/tokens")
        assert status in (200, 204)
        took = await ends_within(resp, 10)
    async with streaming.get(url, headers=STREAM) as again:
        assert again.status == 401
    report(
        "stream_revoked",
        recheck_s=Settings.model_fields["stream_recheck_s"].default,
        ended_after_s=round(took, 2),
    )


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_an_ended_console_session_ends_its_open_stream(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    """One page's session is signed out, another's expires (its key deleted, as its TTL
    would): both open streams end within 10 s."""
    await cluster.start_web()
    who = await desk(cluster)
    signed_out = await console_session(cluster, who["duo"])
    expired = await console_session(cluster, who["duo"])
    page = f"{cluster.base_url}/console/numbers/{A}/events"
    try:
        first = await signed_out.get(page)
        second = await expired.get(page)
        assert (first.status, second.status) == (200, 200)
        for resp in (first, second):
            await resp.content.readuntil(b"event: ready\ndata: {}\n\n")
        token = await csrf(cluster, signed_out)
        async with signed_out.post(
            f"{cluster.base_url}/console/sign-out", data={"csrf": token}, allow_redirects=False
        ) as out:
            assert out.status == 303
        digest = hashlib.sha256(session_id(expired).encode()).hexdigest()
        assert await direct.delete(keys.console_session(digest)) == 1
        took = await asyncio.gather(ends_within(first, 10), ends_within(second, 10))
        report("console_stream_ended", signed_out_s=round(took[0], 2), expired_s=round(took[1], 2))
    finally:
        await signed_out.close()
        await expired.close()


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_open_streams_are_capped_per_user_across_web_processes(
    cluster: Cluster, streaming: aiohttp.ClientSession
) -> None:
    """Two web processes, at most 2 streams for the user: the third (on the other process)
    is a 429 with a JSON error; a closed stream frees its place, and so, after its heartbeat
    deadline, does a stream of a process that was killed."""
    cap = {"max_streams_per_user": 2, "stream_recheck_s": 1}
    first_web = await cluster.start_web(**cap)
    who = await desk(cluster)
    first_url = cluster.base_url
    # The harness serves one port per deployment: move it for the second process.
    cluster.port = free_port()
    await cluster.start_web(**cap)
    second_url = cluster.base_url
    path = "/api/v1/agents/duo/events"
    headers = {**STREAM, **who["duo"]}
    opened = [await streaming.get(f"{first_url}{path}", headers=headers) for _ in range(2)]
    try:
        assert [r.status for r in opened] == [200, 200]
        async with streaming.get(f"{second_url}{path}", headers=headers) as refused:
            assert refused.status == 429
            assert (await refused.json())["error"]["code"] == "too_many_streams"
            assert int(refused.headers["Retry-After"]) >= 1
        browser = await console_session(cluster, who["duo"])
        async with browser.get(f"{second_url}/console/numbers/{A}/events") as page:
            assert page.status == 429  # the console's streams count too (an HTML error page)
        await browser.close()
        # The bootstrap admin is another user: not refused.
        async with streaming.get(f"{second_url}{path}", headers={**STREAM, **ADMIN}) as other:
            assert other.status == 200

        opened.pop().close()
        replacement: list[ClientResponse] = []

        async def place_free() -> bool:
            resp = await streaming.get(f"{second_url}{path}", headers=headers)
            if resp.status == 200:
                replacement.append(resp)
                return True
            resp.close()
            return False

        started = time.monotonic()
        await until(place_free, within=10, what="a place freed by the closed stream")
        freed_s = time.monotonic() - started
        opened += replacement
        # Killed with one stream open: its place ages out (3 x recheck + 5 s = 8 s here).
        cluster.kill(first_web)
        replacement.clear()
        async with streaming.get(f"{second_url}{path}", headers=headers) as still:
            assert still.status == 429
        started = time.monotonic()
        await until(place_free, within=30, what="the killed process's place aged out", interval=1)
        report(
            "stream_cap",
            cap=2,
            closed_freed_s=round(freed_s, 2),
            crashed_freed_s=round(time.monotonic() - started, 2),
        )
        opened += replacement
    finally:
        for resp in opened:
            resp.close()


# --- in process ------------------------------------------------------------------------------


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(stream_recheck_s=0.2)


async def test_a_manager_who_changes_numbers_gets_the_new_number_s_events_or_none(
    client: TestClient[Any, Any],
) -> None:
    """The filter follows the caller's numbers at each re-check; once the caller may no longer
    read the agent, the stream ends."""
    await put_number(client, N1)
    await put_number(client, N2)
    await put_agent(client, "duo", role="agent", numbers=[N1, N2])
    token = await put_agent(client, "ma", role="manager", numbers=[N1])
    events = client.app[stores_key].events
    resp = await client.get(
        "/api/v1/agents/duo/events", headers={**STREAM, "Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    await events.publish("duo", "after_hours.contact", event("n1", N1))
    assert (await next_event(resp))["id"] == "n1"
    # Moved from N1 to N2 (still a manager of one of duo's numbers).
    body = {"name": "Ma", "numbers": [N2], "role": "manager", "slots": 2}
    assert (await client.put("/api/v1/agents/ma", json=body, headers=ADMIN)).status == 200
    await asyncio.sleep(1)  # several re-checks
    await events.publish("duo", "after_hours.contact", event("n3", N1))
    await events.publish("duo", "after_hours.contact", event("n4", N2))
    assert (await next_event(resp))["id"] == "n4"
    # Demoted to agent: may no longer read duo at all.
    body["role"] = "agent"
    assert (await client.put("/api/v1/agents/ma", json=body, headers=ADMIN)).status == 200
    await ends_within(resp, 5)


async def test_stream_rechecks_do_not_keep_a_console_session_alive(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    """An open page re-checks its session but is not a use of it: the idle TTL runs on."""
    await put_number(client, N1)
    token = await put_agent(client, "ana", role="agent", numbers=[N1])
    resp = await client.post("/console/sign-in", data={"token": token}, allow_redirects=False)
    assert resp.status == 303
    sid = resp.cookies["deskline_console"].value
    key = keys.console_session(hashlib.sha256(sid.encode()).hexdigest())
    page = await client.get(f"/console/numbers/{N1}/events")
    assert page.status == 200
    before = await redis.pttl(key)
    await asyncio.sleep(1.5)  # about seven re-checks
    assert await redis.pttl(key) <= before - 1000
    page.close()


@pytest.mark.parametrize(
    "last",
    [
        "18446744073709551616-0",  # 2**64: twenty digits, past an unsigned 64-bit integer
        "0-18446744073709551616",
        "99999999999999999999-0",
        "123456789012345678901-0",  # 21 digits
        "1-",
        "-1",
    ],
)
async def test_a_last_event_id_redis_would_refuse_is_a_422(
    client: TestClient[Any, Any], last: str
) -> None:
    await put_number(client, N1)
    await put_agent(client, "ana", role="agent", numbers=[N1])
    for headers, query in (({"Last-Event-ID": last}, ""), ({}, f"?last_event_id={last}")):
        resp = await client.get(f"/api/v1/agents/ana/events{query}", headers={**ADMIN, **headers})
        assert resp.status == 422
        assert (await resp.json())["error"]["field"] == "Last-Event-ID"


@pytest.mark.parametrize(
    "last", ["0-0", "18446744073709551615-18446744073709551615", "00001-00", "1700000000000-7"]
)
async def test_every_event_id_that_passes_is_one_redis_accepts(
    redis: aioredis.Redis, last: str
) -> None:
    events = EventsStore(redis)
    await events.publish("ana", "t", {})
    assert is_event_id(last)
    await events.read("ana", last)  # raises (ResponseError) on an id Redis refuses


async def test_the_place_of_a_stream_is_taken_kept_and_given_back(redis: aioredis.Redis) -> None:
    events = EventsStore(redis)
    assert await events.claim_stream("ana", "s1", cap=2, ttl_s=30)
    assert await events.claim_stream("ana", "s2", cap=2, ttl_s=30)
    assert not await events.claim_stream("ana", "s3", cap=2, ttl_s=30)
    assert await events.claim_stream("ana", "s2", cap=2, ttl_s=30)  # a renewal, not a third
    assert await events.claim_stream("bob", "s3", cap=2, ttl_s=30)  # per user
    assert await events.keep_stream("ana", "s1", ttl_s=30)
    await events.release_stream("ana", "s1")
    assert not await events.keep_stream("ana", "s1", ttl_s=30)
    assert await events.open_streams("ana") == 1
    # A place not kept in time is dropped, and its key goes with the last one.
    assert await events.claim_stream("cy", "s1", cap=1, ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert not await events.keep_stream("cy", "s1", ttl_s=30)
    assert await events.claim_stream("cy", "s2", cap=1, ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await redis.exists(keys.event_streams("cy")) == 0
