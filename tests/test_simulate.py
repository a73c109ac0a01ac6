"""`python -m bot simulate` posts a signed webhook to a running server, and the message lands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.__main__ import cmd_simulate, parser
from bot.settings import Settings
from storage import Stores, keys

PNID = "106540352242922"


async def simulate(settings: Settings, client: TestClient[Any, Any], *argv: str) -> int:
    """Run the CLI command against the test server, which listens on a real local port."""
    url = str(client.server.make_url("/webhook"))
    args = parser().parse_args(["simulate", "--number", PNID, "--url", url, *argv])
    # The command runs its own event loop (asyncio.run), as it does from a shell.
    return await asyncio.to_thread(cmd_simulate, settings, args)


async def test_simulated_text_lands_on_contact_and_timeline(
    settings: Settings,
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
    capsys: pytest.CaptureFixture[str],
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    code = await simulate(
        settings,
        client,
        "--from",
        "551187654321",
        "--name",
        "Ana",
        "--timestamp",
        "1767625200",
        "Oi, tudo bem?",
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("200 ")
    await make_worker().run_check()
    stores = Stores.on(redis)
    contact = await stores.contacts.get(PNID, "5511987654321")
    assert contact is not None
    assert contact.name == "Ana"
    [entry] = await stores.timeline.list(PNID, "5511987654321")
    assert (entry.direction, entry.type, entry.text) == ("in", "text", "Oi, tudo bem?")


async def test_simulated_button_reply_carries_its_id(
    settings: Settings,
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    make_worker: Callable[..., Worker],
) -> None:
    await redis.sadd(keys.NUMBERS, PNID)
    code = await simulate(
        settings,
        client,
        "--from",
        "5511987654321",
        "--button-reply",
        "notify_next_service_hour",
        "Avise-me",
    )
    assert code == 0
    await make_worker().run_check()
    [entry] = await Stores.on(redis).timeline.list(PNID, "5511987654321")
    assert (entry.type, entry.button_reply_id) == ("interactive", "notify_next_service_hour")


async def test_simulate_with_a_wrong_secret_is_refused(
    make_settings: Callable[..., Settings],
    client: TestClient[Any, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await simulate(
        make_settings(app_secret="not-the-server-secret"), client, "--from", "5511987654321"
    )
    assert code == 1
    assert capsys.readouterr().out.startswith("403 ")
