"""Unauthenticated floods of `POST /webhook` against a real `python -m bot web` process.

A webhook body has to be read before its signature can be checked, so anyone can make the web
process read bodies. These tests measure what that costs it: resident memory under a flood of
large forged bodies (read from /proc, as the kernel counts it), and how long a body trickled a
byte at a time can hold a connection. Fly gives the web VM 512 MB (fly.toml).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from handlers.signature import sign
from storage import keys
from tests.conftest import APP_SECRET
from tests.faults.harness import OPEN, Cluster, message, report

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MB = 1024 * 1024
FLOOD_CONNECTIONS = 120
# Just under the 4 MiB body limit (`max_body_bytes`): read in full, not refused up front.
FLOOD_BODY_BYTES = 4 * MB - 4096
# Bounds on the web process' resident memory under the flood. Without the read limits the
# flood added 540 MB at its peak (every body in memory at once, twice over: 70 -> 609 MB).
# With them, at most `webhook_max_concurrent_reads` (16) bodies are held at once, ~64 MB;
# the peak measured ~90 MB above the baseline (socket buffers, allocator slack), ~160 MB in
# all. Fly's web VM has 512 MB.
MAX_FLOOD_GROWTH_MB = 150
MAX_PEAK_MB = 250


def _memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak since the process started), in MB."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024  # kB
    return out


async def _forged_post(http: aiohttp.ClientSession, url: str, body: bytes) -> int:
    """One forged webhook: its status, or 0 when the connection failed."""
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    try:
        async with http.post(url, data=io.BytesIO(body), headers=headers) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def _signed_post(cluster: Cluster, payload: object) -> tuple[int, dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign(APP_SECRET.encode(), body),
    }
    async with cluster.http.post(
        f"{cluster.base_url}/webhook",
        data=body,
        headers=headers,
        timeout=aiohttp.ClientTimeout(total=60),
    ) as resp:
        await resp.read()
        return resp.status, dict(resp.headers)


async def _deliver_as_meta(cluster: Cluster, payload: object, within_s: float) -> list[int]:
    """POST a signed webhook until it gets a 200, waiting out each 503's Retry-After (as Meta
    redelivers); the statuses seen, in order."""
    statuses: list[int] = []
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        status, headers = await _signed_post(cluster, payload)
        statuses.append(status)
        if status != 503:
            return statuses
        assert "Retry-After" in headers
        await asyncio.sleep(min(float(headers["Retry-After"]), 1.0))
    return statuses


async def test_a_flood_of_forged_4_mib_bodies_keeps_the_web_process_small_and_serving(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    """120 concurrent forged bodies of 4 MiB: web memory stays bounded, real webhooks get in."""
    await direct.sadd(keys.NUMBERS, OPEN)
    web = await cluster.start_web()
    warm = await _signed_post(cluster, message(OPEN, "5511900000001", "wamid.WARM"))
    assert warm[0] == 200
    before = _memory_mb(web.pid)

    body = b'{"object": "whatsapp_business_account", "entry": [], "pad": "'
    body += b"x" * (FLOOD_BODY_BYTES - len(body) - 2) + b'"}'
    url = f"{cluster.base_url}/webhook"
    connector = aiohttp.TCPConnector(limit=FLOOD_CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=120)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        flood = asyncio.gather(*(_forged_post(http, url, body) for _ in range(FLOOD_CONNECTIONS)))
        await asyncio.sleep(0.2)  # the flood is under way
        during = await _deliver_as_meta(
            cluster, message(OPEN, "5511900000002", "wamid.DURING"), within_s=60
        )
        statuses = Counter(await flood)
    flood_s = time.monotonic() - started
    after_flood = _memory_mb(web.pid)
    after = await _deliver_as_meta(
        cluster, message(OPEN, "5511900000003", "wamid.AFTER"), within_s=30
    )

    growth = after_flood["VmHWM"] - before["VmRSS"]
    report(
        "webhook flood",
        rss_before_mb=round(before["VmRSS"]),
        peak_mb=round(after_flood["VmHWM"]),
        rss_after_mb=round(after_flood["VmRSS"]),
        growth_mb=round(growth),
        flood_s=round(flood_s, 1),
        statuses=dict(statuses),
        during=during,
    )
    assert web.alive()
    assert growth < MAX_FLOOD_GROWTH_MB, f"the flood added {growth:.0f} MB at its peak"
    assert after_flood["VmHWM"] < MAX_PEAK_MB
    # Forged bodies are refused (403 once read, 503 when no read slot freed in time); none is
    # ever accepted, and the process never fails with a 500.
    assert set(statuses) <= {403, 503}, statuses
    assert during[-1] == 200, during
    assert after == [200]
    for wamid in ("wamid.DURING", "wamid.AFTER"):
        assert await direct.exists(keys.inbound(wamid)) == 1


async def _status_line(reader: asyncio.StreamReader) -> bytes:
    return await reader.readline()


async def test_a_trickled_body_is_cut_off_at_the_read_deadline(
    cluster: Cluster, direct: aioredis.Redis
) -> None:
    """A body sent a byte at a time is answered 408 at `webhook_read_timeout_s`, not waited
    for: a slow sender cannot hold a read slot (or the connection's memory) for minutes."""
    deadline_s = 1.0
    await cluster.start_web(webhook_read_timeout_s=deadline_s)
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.port)
    try:
        head = (
            "POST /webhook HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{cluster.port}\r\n"
            "Content-Type: application/json\r\n"
            f"X-Hub-Signature-256: sha256={'0' * 64}\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        started = time.monotonic()

        async def trickle() -> None:
            for _ in range(1000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.25)

        sender = asyncio.create_task(trickle())
        try:
            line = await asyncio.wait_for(_status_line(reader), timeout=deadline_s + 10)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
        answered_s = time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    report("webhook trickle", deadline_s=deadline_s, answered_s=round(answered_s, 2))
    assert line.startswith(b"HTTP/1.1 408"), line
    # Timed from the test's side: the server's clock starts a moment before this one.
    assert deadline_s * 0.8 <= answered_s < deadline_s + 5
    # The same web process still serves a real webhook at once.
    await direct.sadd(keys.NUMBERS, OPEN)
    status, _ = await _signed_post(cluster, message(OPEN, "5511900000004", "wamid.TRICKLE"))
    assert status == 200
