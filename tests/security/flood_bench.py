"""How cheaply the webhook refuses a flood: unsigned and forged 1 MB bodies vs signed ones.

A benchmark script, not a test (timings belong to the machine): it starts a redis-server and a
real `python -m bot web`, posts each kind of body from 8 connections, and prints requests per
second and the web process' CPU time per request (from /proc). Run it with

    .venv/bin/python -m tests.security.flood_bench [--requests 400]

What it shows: without a signature header the body is not even read (401 straight from the
headers); a wrong signature costs one HMAC-SHA256 over the body (403); only a valid signature
gets the body parsed and stored. RELIABILITY.md quotes a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bot.runtime.embedded import EmbeddedRedis, free_port
from bot.simulate import build_payload
from handlers.signature import sign

SECRET = "bench-app-secret"
REPO = Path(__file__).resolve().parents[2]
CONNECTIONS = 8
MB = 1024 * 1024


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bodies() -> dict[str, tuple[bytes, dict[str, str]]]:
    # One message whose text makes the body 1 MB; the same message id every time, so that the
    # signed case measures the whole intake (claim script included) without filling Redis.
    payload = build_payload(
        phone_number_id="1000", wa_id="5511987654321", text="x", message_id="wamid.BENCH"
    )
    skeleton = len(json.dumps(payload).encode())
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "x" * (
        MB - skeleton
    )
    big = json.dumps(payload).encode()
    small = json.dumps(
        build_payload(phone_number_id="1000", wa_id="5511987654321", message_id="wamid.SMALL")
    ).encode()
    json_type = {"Content-Type": "application/json"}
    return {
        "unsigned 1 MB": (big, json_type),
        "forged 1 MB": (big, {**json_type, "X-Hub-Signature-256": "sha256=" + "0" * 64}),
        "signed 1 MB": (big, {**json_type, "X-Hub-Signature-256": sign(SECRET.encode(), big)}),
        "signed 0.5 KB": (
            small,
            {**json_type, "X-Hub-Signature-256": sign(SECRET.encode(), small)},
        ),
    }


async def _flood(
    url: str, body: bytes, headers: dict[str, str], n: int
) -> tuple[float, Counter[int]]:
    statuses: Counter[int] = Counter()
    todo = list(range(n))
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one_connection() -> None:
            while todo:
                todo.pop()
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except aiohttp.ClientError:
                    # The server answered 401 before reading the body, and closed the
                    # connection while this client was still sending it.
                    statuses[0] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(CONNECTIONS)))
        return time.perf_counter() - started, statuses


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="deskline-flood-") as tmp:
        redis = EmbeddedRedis(data_dir=Path(tmp), persistent=False)
        redis.start()
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKLINE_", "REDIS_URL"))}
        env.update(
            PYTHONPATH=str(REPO),
            REDIS_URL=redis.url,
            PORT=str(port),
            HOST="127.0.0.1",
            DESKLINE_APP_SECRET=SECRET,
            DESKLINE_LOG_LEVEL="WARNING",
            DESKLINE_LOG_FORMAT="json",
        )
        web = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "web",
            env=env,
            cwd=tmp,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/webhook"
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
            print(f"{n} requests per kind, {CONNECTIONS} connections, one web process\n")
            print(f"{'body':<16} {'statuses':<22} {'req/s':>8} {'CPU ms/req':>11}")
            for name, (body, headers) in _bodies().items():
                cpu_before = _cpu_s(web.pid)
                seconds, statuses = await _flood(url, body, headers, n)
                cpu_ms = (_cpu_s(web.pid) - cpu_before) * 1000 / n
                shown = ", ".join(f"{s or 'reset'}×{c}" for s, c in sorted(statuses.items()))
                print(f"{name:<16} {shown:<22} {n / seconds:>8.0f} {cpu_ms:>11.2f}")
        finally:
            web.terminate()
            await asyncio.wait_for(web.wait(), 10)
            redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))
