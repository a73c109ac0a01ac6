"""The README's tour, read from README.md itself, run against a real `python -m bot run`.

The README cannot drift from what deskline does: each command of the tour's `sh` block runs
in bash as a reader would paste it (after the block's `. var/dev.env`), against a `run` on a
free port with its own data directory. The example number is closed at every hour, so the
after-hours path shows whatever time CI runs.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from arq.constants import default_queue_name, in_progress_key_prefix

from bot import datadir
from bot.runtime.embedded import free_port
from tests.cli.process import REPO, Run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def tour_commands() -> list[str]:
    """The commands of the `sh` block after README's "A tour" paragraph, one per line."""
    text = (REPO / "README.md").read_text()
    after = text[text.index("**A tour**") :]
    block = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert block is not None, "the tour's sh block is gone from README.md"
    return [line for line in block.group(1).splitlines() if line.strip()]


def localised(command: str, data_dir: Path, port: int) -> str:
    """The command for this test's `run`: its data directory, its port, this interpreter."""
    command = command.replace("var/", f"{shlex.quote(str(data_dir))}/")
    command = command.replace("localhost:8080", f"127.0.0.1:{port}")
    return command.replace(".venv/bin/python", shlex.quote(sys.executable))


def wait_until_drained(data_dir: Path, within: float = 30) -> None:
    """No job queued or running (the ticket sweep's cron ticks aside): the worker is done."""
    client = redis.Redis.from_url(datadir.redis_url_file(data_dir).read_text())
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            queued = [
                j
                for j in client.zrange(default_queue_name, 0, -1)  # type: ignore[union-attr]
                if not j.decode().startswith("sweep_tickets:")
            ]
            running = [
                k
                for k in client.scan_iter(f"{in_progress_key_prefix}*")
                if b"sweep_tickets:" not in k
            ]
            if not queued and not running:
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise AssertionError("the worker did not finish the tour's jobs")


def test_the_readme_tour_runs_as_written_at_any_hour(
    tmp_path: Path,
    runs: list[Run],
) -> None:
    commands = tour_commands()
    assert any("simulate" in c for c in commands)
    data_dir = tmp_path / "var"
    port = free_port()
    run = Run(data_dir, port, tmp_path / "run.log")
    runs.append(run)
    run.wait_ready()

    sourced: list[str] = []
    outputs: list[str] = []
    for command in commands:
        line = localised(command, data_dir, port)
        script = "\n".join([*sourced, line])
        done = subprocess.run(
            ["bash", "-c", script],
            env=run.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (command, done.stderr)
        if command.startswith(". "):
            sourced.append(line)
        if "simulate" in command:
            wait_until_drained(data_dir)
        outputs.append(done.stdout)

    outbox = [out for c, out in zip(commands, outputs, strict=True) if "bot outbox" in c]
    first_reply = json.loads(outbox[0].splitlines()[0])["body"]
    assert first_reply["type"] == "interactive"
    assert first_reply["interactive"]["body"]["text"].startswith("We are closed.")
    [button] = first_reply["interactive"]["action"]["buttons"]
    assert button["reply"]["id"] == "notify_next_service_hour"
    confirmation = json.loads(outbox[-1].splitlines()[0])["body"]
    assert confirmation["text"]["body"].startswith("Done! We will get back to you")

    listing = next(
        out for c, out in zip(commands, outputs, strict=True) if "after-hours-contacts" in c
    )
    [row] = json.loads(listing)["items"]
    assert (row["wa_id"], row["name"], row["requested_return"]) == ("5511987654321", "Ana", "yes")
    assert run.stop() == 0
