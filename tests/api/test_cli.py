"""The operator CLI: `python -m bot numbers set|show`, `agents add|token`, on the real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot import cli
from tests.api.conftest import N1, bearer, settings_body

ROOT = Path(__file__).resolve().parents[2]


def _main(redis_url: str, *argv: str) -> int:
    return cli.main(redis_url, list(argv))


async def _in_thread(redis_url: str, *argv: str) -> int:
    # cli.main runs its own event loop (asyncio.run), as it does from the shell.
    import asyncio

    return await asyncio.to_thread(_main, redis_url, *argv)


async def test_numbers_set_then_show_then_served_through_the_api(
    client: TestClient[Any, Any],
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings_body()))
    assert await _in_thread(redis_url, "numbers", "set", N1, "--file", str(path)) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == 1
    assert shown["updated_by"].startswith("cli")

    assert await _in_thread(redis_url, "numbers", "show", N1) == 0
    assert json.loads(capsys.readouterr().out)["display_name"] == "Loja Centro"

    assert await _in_thread(redis_url, "agents", "add", "ana", "--name", "Ana", "--numbers",
                            f"{N1}, 999", "--role", "manager", "--slots", "4") == 0  # fmt: skip
    added = json.loads(capsys.readouterr().out)
    assert added["numbers"] == [N1, "999"]
    assert added["slots"] == 4

    assert await _in_thread(redis_url, "agents", "token", "ana") == 0
    token = capsys.readouterr().out.strip()
    resp = await client.patch(f"/api/v1/numbers/{N1}", json={"display_name": "Loja 2"},
                              headers=bearer(token))  # fmt: skip
    assert resp.status == 200


@pytest.mark.usefixtures("redis")  # flushes the test database
async def test_numbers_set_refuses_invalid_settings_naming_the_field(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = settings_body()
    body["service_hours"]["weekly"]["mon"][0]["end"] = "25:00"
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(body))
    assert await _in_thread(redis_url, "numbers", "set", N1, "--file", str(path)) == 2
    assert "service_hours.weekly.mon[0].end" in capsys.readouterr().err
    assert await _in_thread(redis_url, "numbers", "show", N1) == 1


@pytest.mark.usefixtures("redis")
async def test_token_for_unknown_agent_fails(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _in_thread(redis_url, "agents", "token", "ghost") == 1
    assert "ghost" in capsys.readouterr().err


@pytest.mark.usefixtures("redis")
def test_python_m_bot_dispatches_the_operator_commands(redis_url: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "DESKLINE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "agents", "add", "zed", "--name", "Zed"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == "zed"
