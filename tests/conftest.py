"""Shared fixtures: a real Redis, the real app, a burst worker and a fake Graph API."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import structlog
from aiohttp.test_utils import TestClient, TestServer
from arq.utils import timestamp_ms
from arq.worker import Worker

from bot.app import create_app
from bot.domain.clock import FixedClock
from bot.runtime.embedded import EmbeddedRedis
from bot.runtime.logs import configure_logging
from bot.settings import Settings
from bot.worker import DesklineWorker, worker_settings
from tests.graph_fake import FakeGraphAPI

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ADMIN_TOKEN = "test-admin-token"
TEST_DB = 9


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging("DEBUG", "json", cache_logger=False)


@pytest.fixture(scope="session", name="redis_base_url")
def fixture_redis_base_url() -> Iterator[str]:
    """REDIS_URL when set; otherwise a private redis-server, persistence off, on a free port."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        return
    with tempfile.TemporaryDirectory(prefix="deskline-redis-") as tmp:
        server = EmbeddedRedis(data_dir=Path(tmp), persistent=False)
        server.start()
        try:
            yield f"redis://127.0.0.1:{server.port}"
        finally:
            server.stop()


@pytest.fixture(name="redis_url")
def fixture_redis_url(redis_base_url: str) -> str:
    return f"{redis_base_url}/{TEST_DB}"


@pytest.fixture(name="redis")
async def fixture_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on the test DB, flushed before each test."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(name="graph")
async def fixture_graph(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> FakeGraphAPI:
    fake = FakeGraphAPI()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture(name="clock")
def fixture_clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(name="make_settings")
def fixture_make_settings(
    redis_url: str, graph: FakeGraphAPI, redis: aioredis.Redis
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "app_secret": APP_SECRET,
            "verify_token": VERIFY_TOKEN,
            "admin_token": ADMIN_TOKEN,
            "access_token": "test-access-token",
            "graph_api_url": graph.url,
            "log_format": "json",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(name="client")
async def fixture_client(
    settings: Settings,
    clock: FixedClock,
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings, clock=clock))


# Jobs due further ahead than this are left queued when a burst run ends.
HORIZON_MS = 30_000


class ReadyBurstWorker(DesklineWorker):
    """A burst worker that also stops when the only jobs left are deferred past HORIZON_MS.

    arq's burst mode runs until the queue is *empty*, deferred jobs included, so a callback due
    tomorrow would keep `run_check()` spinning until the test times out. Tests move time
    themselves (the `clock` fixture) and make such jobs due when they need them to run.
    """

    async def _poll_iteration(self) -> None:
        await super()._poll_iteration()
        if not self.burst or any(not t.done() for t in self.tasks.values()):
            return
        soon = await self.pool.zcount(self.queue_name, "-inf", timestamp_ms() + HORIZON_MS)
        if soon == 0:
            self.max_burst_jobs = self._jobs_started()


@pytest.fixture(name="make_worker")
async def fixture_make_worker(
    settings: Settings, clock: FixedClock
) -> AsyncIterator[Callable[..., Worker]]:
    """arq's shape: a burst worker on the real settings; `await worker.run_check()` runs it."""
    workers: list[Worker] = []

    def make(**overrides: Any) -> Worker:
        options: dict[str, Any] = {**worker_settings(settings, clock=clock)}
        options.update(burst=True, poll_delay=0, handle_signals=False)
        options.update(overrides)
        worker = ReadyBurstWorker(**options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.close()


@pytest.fixture(name="logs")
def fixture_logs() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs() as captured:
        yield captured
