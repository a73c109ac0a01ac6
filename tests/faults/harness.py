"""The fault suite's harness: a deskline deployment of real processes, and a faulty Meta.

`Cluster` starts `python -m bot web` and `python -m bot worker` children on one redis-server
(`bot.runtime.embedded.EmbeddedRedis`, append-only file on), with `FaultGraph` (a FakeGraphAPI that
can
be slow or fail) as the Graph API they call. The fixtures at the end are imported by
tests/faults/conftest.py, and by tests/security/conftest.py for the logs of real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from arq.constants import default_queue_name, in_progress_key_prefix
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.runtime.embedded import EmbeddedRedis, free_port
from bot.simulate import build_payload
from handlers.signature import sign
from storage import keys
from tests.conftest import ADMIN_TOKEN, APP_SECRET, VERIFY_TOKEN
from tests.graph_fake import FakeGraphAPI, Recorded

REPO = Path(__file__).resolve().parents[2]
CLOSED = "1000"  # a number that is never open: after-hours reply + after-hours row
OPEN = "2000"  # a number that is always open: a ticket per contact
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Figures printed by the tests, repeated in the terminal summary (RELIABILITY.md copies them).
SUMMARIES: list[str] = []


def report(name: str, **figures: object) -> str:
    """Record one test's figures as `name: key=value ...` (printed and kept for the summary)."""
    line = f"{name}: " + " ".join(f"{key}={value}" for key, value in figures.items())
    SUMMARIES.append(line)
    print(line)
    return line


def customer(i: int) -> str:
    """A Brazilian mobile wa_id (with the ninth digit, as contact keys spell them)."""
    return f"55119{i:08d}"


def message(pnid: str, wa_id: str, wamid: str, text: str = "Oi") -> dict[str, Any]:
    """One customer message as Meta delivers it, stamped now."""
    return build_payload(
        phone_number_id=pnid, wa_id=wa_id, name="Cliente", text=text, message_id=wamid
    )


# --- the fake Graph API -------------------------------------------------------------------


def fingerprint(body: dict[str, Any]) -> str:
    """What identifies one reply on the wire: recipient, type and content.

    Auto-replies carry no idempotency tag, but each test gives every reply a distinct
    (recipient, type, text), so two acceptances with one fingerprint are one reply sent twice.
    """
    kind = str(body.get("type"))
    content = body.get(kind)
    text: Any = None
    if kind == "text" and isinstance(content, dict):
        text = content.get("body")
    elif kind == "interactive" and isinstance(content, dict):
        text = content.get("body", {}).get("text")
    elif kind == "contacts" and isinstance(content, list) and content:
        text = content[0].get("name", {}).get("formatted_name")
    return f"{body.get('to')}|{kind}|{text}"


@dataclass
class FaultGraph(FakeGraphAPI):
    """FakeGraphAPI that can be slow, or fail for a while, and counts what it accepted.

    Attributes:
        delay_s: every accepted send waits this long first (a slow Graph API).
        faults: while `failing`, requests are answered with these, in turn: "500", "429"
            (Graph code 130429, throttled) or "timeout" (no answer for `hang_s`, then a 503:
            Meta never took it, the client gave up first).
        accepted: (fingerprint, message id) of every send Meta took, in order: answered 200,
            or would have been had the client not gone away meanwhile.
        in_flight: fingerprints of requests received and not yet answered.
    """

    delay_s: float = 0.0
    faults: list[str] = field(default_factory=list)
    failing: bool = False
    hang_s: float = 1.5
    accepted: list[tuple[str, str]] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    _turn: int = 0

    def accepted_per_key(self) -> Counter[str]:
        return Counter(key for key, _ in self.accepted)

    def seen(self) -> set[str]:
        """Fingerprints accepted or in flight right now (a snapshot for crash windows)."""
        return {key for key, _ in self.accepted} | {k for k, n in self.in_flight.items() if n}

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(request.method, request.path, dict(request.headers), body))
        # Shielded: a request Meta has received is processed even if the client goes away
        # meanwhile (a worker killed mid-send), which is the worst case for duplicates.
        return await asyncio.shield(self._answer(body))

    async def _answer(self, body: dict[str, Any]) -> web.StreamResponse:
        key = fingerprint(body)
        self.in_flight[key] += 1
        try:
            if self.failing and self.faults:
                fault = self.faults[self._turn % len(self.faults)]
                self._turn += 1
                self.refused[fault] += 1
                if fault == "timeout":
                    await asyncio.sleep(self.hang_s)
                    return web.Response(status=503, text="gateway timeout")
                if fault == "429":
                    error = {"message": "throttled", "type": "OAuthException", "code": 130429}
                    return web.json_response({"error": error}, status=429)
                return web.Response(status=500, text="upstream failure")
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            message_id = f"wamid.FAULT{next(self._ids):06d}"
            self.accepted.append((key, message_id))
            return web.json_response(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                    "messages": [{"id": message_id}],
                }
            )
        finally:
            self.in_flight[key] -= 1


# --- processes ----------------------------------------------------------------------------


@dataclass
class Child:
    """One `python -m bot <role>` process, its output in a JSON-lines log file."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines of the process (anything else it printed is skipped)."""
        out = []
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    out.append(event)
        return out


class Cluster:
    """A deskline deployment on one machine, for one test: Redis, web, workers, fake Graph.

    Children are started with `start_web` / `start_worker` (settings overrides as keyword
    arguments, e.g. `job_timeout_s=3` → DESKLINE_JOB_TIMEOUT_S=3) and are all killed at the
    end of the test, whatever happens.
    """

    def __init__(
        self, tmp_path: Path, redis: EmbeddedRedis, graph: FaultGraph, http: aiohttp.ClientSession
    ) -> None:
        self.tmp_path = tmp_path
        self.redis = redis
        self.graph = graph
        self.http = http
        self.port = free_port()
        self.children: list[Child] = []
        # Bodies of the webhook answers, in order (`{"ok", "new", "duplicate"}` for a 200).
        self.answers: list[bytes] = []
        self.defaults: dict[str, object] = {
            "redis_timeout_s": 1,
            "job_timeout_s": 5,
            "max_jobs": 10,
            "graph_retry_backoff_s": 0.05,
            "reply_retry_base_s": 0.5,
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **overrides: object) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DESKLINE_", "REDIS_URL")) and k not in ("PORT", "HOST")
        }
        env.update(
            PYTHONPATH=str(REPO),
            REDIS_URL=self.redis.url,
            PORT=str(self.port),
            HOST="127.0.0.1",
            DESKLINE_APP_SECRET=APP_SECRET,
            DESKLINE_VERIFY_TOKEN=VERIFY_TOKEN,
            DESKLINE_ADMIN_TOKEN=ADMIN_TOKEN,
            DESKLINE_ACCESS_TOKEN="fault-suite-token",
            DESKLINE_GRAPH_API_URL=self.graph.url,
            DESKLINE_LOG_FORMAT="json",
            DESKLINE_LOG_LEVEL="INFO",
            DESKLINE_DATA_DIR=str(self.tmp_path / "data"),
        )
        for name, value in {**self.defaults, **overrides}.items():
            env[f"DESKLINE_{name.upper()}"] = str(value)
        return env

    def spawn(self, role: str, **overrides: object) -> Child:
        n = sum(1 for c in self.children if c.role == role)
        log_path = self.tmp_path / f"{role}{n}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", role],
            env=self.env(**overrides),
            cwd=self.tmp_path,  # no stray .env file is read
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        child = Child(role, process, log_path, log_file)
        self.children.append(child)
        return child

    async def start_web(self, **overrides: object) -> Child:
        """Start the web process and wait until /readyz answers 200."""
        child = self.spawn("web", **overrides)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not child.alive():
                raise AssertionError(f"web exited:\n{child.output()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self.http.get(f"{self.base_url}/readyz") as resp:
                    if resp.status == 200:
                        return child
            await asyncio.sleep(0.1)
        raise AssertionError(f"web not ready:\n{child.output()[-3000:]}")

    async def start_worker(self, **overrides: object) -> Child:
        """Start a worker and wait until arq announces it (it then polls within 0.5 s)."""
        child = self.spawn("worker", **overrides)
        await until(lambda: _started(child), within=30, what=f"worker started ({child.log_path})")
        return child

    async def run_cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """`python -m bot <argv>` against this deployment's Redis, as an operator runs it."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            *argv,
            env=self.env(),
            cwd=self.tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode(), err.decode())

    @staticmethod
    def kill(child: Child) -> None:
        """SIGKILL: the process dies at once, whatever it was doing."""
        if child.alive():
            child.process.send_signal(signal.SIGKILL)
        child.process.wait(10)

    @staticmethod
    def stop(child: Child, timeout_s: float = 15) -> None:
        """SIGTERM and wait (a clean shutdown); SIGKILL if it takes longer than `timeout_s`."""
        if child.alive():
            child.process.terminate()
            try:
                child.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(10)

    def close(self) -> None:
        for child in self.children:
            with contextlib.suppress(Exception):
                if child.alive():
                    child.process.kill()
                child.process.wait(10)
            child.log_file.close()

    # --- talking to it, as Meta and as an admin -----------------------------------------

    async def post_webhook(self, payload: Any, *, timeout_s: float = 10) -> tuple[int, float]:
        """POST a signed webhook; (status, seconds). Status 0: no answer (connection error)."""
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(APP_SECRET.encode(), body),
        }
        started = time.monotonic()
        try:
            async with self.http.post(
                f"{self.base_url}/webhook",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                answer = await resp.read()
                self.answers.append(answer)
                return resp.status, time.monotonic() - started
        except (aiohttp.ClientError, TimeoutError):
            return 0, time.monotonic() - started

    async def api_root(self, method: str, path: str) -> tuple[int, Any]:
        """A call outside the API (/readyz, /metrics): status and JSON (or text) body."""
        async with self.http.request(method, f"{self.base_url}{path}") as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def api(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.base_url}/api/v1{path}", json=body, headers=headers or ADMIN
        ) as resp:
            text = await resp.text()
            return resp.status, (json.loads(text) if text else None)

    async def setup_numbers(self) -> None:
        """CLOSED (never open, plain-text after-hours reply) and OPEN (always open)."""
        closed = {
            "timezone": "America/Sao_Paulo",
            "language": "en",
            "service_hours": {"weekly": {}},
            "after_hours": {"message": "We are closed.", "notify_next_service_hour": False},
        }
        opened = {"timezone": "UTC", "language": "en", "service_hours": {"always_open": True}}
        for pnid, body in ((CLOSED, closed), (OPEN, opened)):
            status, answer = await self.api("PUT", f"/numbers/{pnid}", body)
            assert status in (200, 201), answer


def _started(child: Child) -> bool:
    if not child.alive():
        raise AssertionError(f"{child.role} exited:\n{child.output()[-3000:]}")
    return "Starting worker" in child.output()


async def until(
    predicate: Callable[[], bool | Awaitable[bool]],
    *,
    within: float,
    what: str,
    interval: float = 0.2,
) -> None:
    """Poll `predicate` until it holds; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for: {what}")
        await asyncio.sleep(interval)


# Workers on the real clock schedule the ticket sweep (jobs.CRON_JOBS): arq queues its next
# run ahead of time, so the queue is never quite empty. It is not work a test waits for.
_CRON_PREFIX = "sweep_tickets:"


async def drained(r: aioredis.Redis) -> bool:
    """No job queued, deferred or running, cron ticks aside (arq's queue and in-progress keys)."""
    for job_id in await r.zrange(default_queue_name, 0, -1):
        if not job_id.decode().startswith(_CRON_PREFIX):
            return False
    async for key in r.scan_iter(f"{in_progress_key_prefix}*", count=1000):
        if not key.decode().removeprefix(in_progress_key_prefix).startswith(_CRON_PREFIX):
            return False
    return True


# --- counting what was stored (read straight from Redis, through storage/keys.py) ----------


async def timeline_ids(r: aioredis.Redis, pnid: str, wa_ids: list[str]) -> Counter[str]:
    """Message ids on the contacts' timelines (a ZSET: an id is there once or not at all)."""
    out: Counter[str] = Counter()
    for wa_id in wa_ids:
        for member in await r.zrange(keys.timeline(pnid, wa_id), 0, -1):
            out[member.decode()] += 1
    return out


async def tickets(r: aioredis.Redis, pnid: str) -> dict[str, dict[str, str]]:
    """Every ticket of the number: id -> its hash."""
    out = {}
    for raw_id in await r.zrange(keys.tickets_all(pnid), 0, -1):
        ticket_id = raw_id.decode()
        fields = await r.hgetall(keys.ticket(ticket_id))
        out[ticket_id] = {k.decode(): v.decode() for k, v in fields.items()}
    return out


async def ticket_inbound_ids(r: aioredis.Redis, ticket_ids: list[str]) -> Counter[str]:
    """Customer message ids on the tickets (a LIST: a repeat would show as a count of 2)."""
    out: Counter[str] = Counter()
    for ticket_id in ticket_ids:
        for raw in await r.lrange(keys.ticket_messages(ticket_id), 0, -1):
            entry = json.loads(raw)
            if entry.get("d") == "in":
                out[entry["id"]] += 1
    return out


async def after_hours_messages(r: aioredis.Redis, pnid: str) -> dict[str, int]:
    """contact -> `messages` of their after-hours row(s) (each wamid is counted once)."""
    out: Counter[str] = Counter()
    for raw_id in await r.zrange(keys.after_hours_rows(pnid), 0, -1):
        fields = await r.hmget(keys.after_hours_row(pnid, raw_id.decode()), "contact", "messages")
        if fields[0] is not None:
            out[fields[0].decode()] += int(fields[1] or 0)
    return dict(out)


async def dead_letters(r: aioredis.Redis) -> list[dict[str, Any]]:
    return [json.loads(v) for v in (await r.hgetall(keys.DEAD_LETTERS)).values()]


# --- fixtures (imported by tests/faults/conftest.py and tests/security/conftest.py) ------


@pytest.fixture(name="fault_graph")
async def fixture_fault_graph(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> FaultGraph:
    fake = FaultGraph()
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture(name="aof_redis")
def fixture_aof_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A private redis-server with `appendonly yes` and `appendfsync everysec`, as required."""
    server = EmbeddedRedis(data_dir=tmp_path / "redis", persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="cluster")
async def fixture_cluster(
    tmp_path: Path, aof_redis: EmbeddedRedis, fault_graph: FaultGraph
) -> AsyncIterator[Cluster]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        cluster = Cluster(tmp_path, aof_redis, fault_graph, http)
        try:
            yield cluster
        finally:
            cluster.close()


@pytest.fixture(name="direct")
async def fixture_direct(aof_redis: EmbeddedRedis) -> AsyncIterator[aioredis.Redis]:
    """A client on the deployment's Redis, for the test's own counting."""
    # Reconnects (a few times) when a test has restarted the server under it.
    client = aioredis.Redis.from_url(
        aof_redis.url,
        socket_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0), 5),
        retry_on_error=[RedisConnectionError, TimeoutError],
    )
    try:
        yield client
    finally:
        await client.aclose()
