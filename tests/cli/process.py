"""`python -m bot` as an operator runs it, in real processes: a `run` (Run), one-off commands
(`bot`), and what /proc says about them. The `runs` fixture is in tests/cli/conftest.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from bot.runtime.embedded import pid_alive

REPO = Path(__file__).resolve().parents[2]


def clean_env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    """This environment without deskline's settings: a fresh machine's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DESKLINE_", "REDIS_URL")) and k not in ("PORT", "HOST")
    }
    env.update(
        PYTHONPATH=str(REPO),
        PORT=str(port),
        DESKLINE_DATA_DIR=str(data_dir),
        DESKLINE_LOG_FORMAT="json",
        **extra,
    )
    return env


def bot(env: dict[str, str], *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGV`, as an operator runs it next to a running `run`."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects: (status, headers, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=2) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def children(pid: int) -> list[int]:
    """The direct children of `pid` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def listening_hosts(port: int) -> set[str]:
    """The local addresses a TCP socket listens on for `port` (Linux /proc/net/tcp)."""
    hosts = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, state = fields[1], fields[3]
        host_hex, port_hex = address.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            raw = bytes.fromhex(host_hex)[::-1]
            hosts.add(".".join(str(b) for b in raw))
    return hosts


class Run:
    """One `python -m bot run` child, its output in a file."""

    def __init__(self, data_dir: Path, port: int, log: Path, **extra: str) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = clean_env(data_dir, port, **extra)
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            env=self.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def wait_ready(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"run not ready:\n{self.output()[-3000:]}")

    def stop(self, signum: int = signal.SIGINT, within: float = 40) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(within)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._out.close()


def started_runs() -> Iterator[list[Run]]:
    """Every Run a test starts; whatever is left is killed at the end."""
    started: list[Run] = []
    yield started
    for run in started:
        for pid in children(run.process.pid) if run.process.poll() is None else []:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.kill()
