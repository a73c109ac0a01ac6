"""`python -m bot run` on a machine without Redis: embedded Redis, web and worker, clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bot.runtime.embedded import free_port


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 -- localhost only
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_run_starts_everything_and_ctrl_c_leaves_no_redis(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESKLINE_", "REDIS_URL"))}
    env.update(PORT=str(port), DESKLINE_DATA_DIR=str(tmp_path), DESKLINE_LOG_FORMAT="json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 45
        status = 0
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert status == 200, "web did not become ready"
        # Embedded Redis runs with an append-only file, so readiness carries no warning.
        assert body["warnings"] == []
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        redis_url = (tmp_path / "redis" / "url").read_text()
        redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        assert _port_open(redis_port)
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    assert "deskline: stopped" in output
    assert not _port_open(redis_port), "redis-server survived Ctrl-C"
    assert not _port_open(port)
    assert (tmp_path / "redis" / "appendonly.aof").exists() or any(
        (tmp_path / "redis").glob("appendonly*")
    )
