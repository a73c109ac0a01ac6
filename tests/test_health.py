"""Operations endpoints: liveness, readiness against a real Redis that stops and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app import create_app
from bot.runtime.embedded import EmbeddedRedis
from bot.settings import Settings


async def test_healthz_answers_while_process_runs(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert (await resp.json()) == {"status": "ok"}


async def test_readyz_warns_when_redis_persistence_is_off(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["redis"] == "ok"
    # The test Redis runs without an append-only file, so the warning must be there.
    assert any("appendonly" in w for w in body["warnings"])


async def test_readyz_follows_redis_down_and_back_without_restart(
    tmp_path: Path,
    make_settings: Callable[..., Settings],
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]],
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path, persistent=True)
    server.start()
    try:
        settings = make_settings(redis_url=server.url, redis_timeout_s=0.5)
        client = await aiohttp_client(create_app(settings))
        ok = await client.get("/readyz")
        assert ok.status == 200
        assert (await ok.json())["warnings"] == []

        server.stop()
        down = await client.get("/readyz")
        assert down.status == 503
        assert (await down.json())["status"] == "unavailable"

        server.start()  # same port: the app must reconnect on its own
        back = await client.get("/readyz")
        assert back.status == 200
    finally:
        server.stop()


async def test_metrics_expose_request_counts_per_route(client: TestClient[Any, Any]) -> None:
    await client.get("/healthz")
    resp = await client.get("/metrics")
    assert resp.status == 200
    text = await resp.text()
    assert 'deskline_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "deskline_http_request_duration_seconds_bucket" in text


async def test_unknown_path_answers_json_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
