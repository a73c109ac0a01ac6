"""`python -m bot run` as an operator meets it: one per data directory, clean stops, no leftovers.

Real processes: `run` starts its embedded Redis, the web and the worker as children; the tests
read its output, its data directory and /proc, and signal it as a terminal or a supervisor
would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import datadir
from bot.runtime.embedded import free_port, pid_alive
from tests.cli.process import REPO, Run, bot, children, clean_env, get, listening_hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_run_refuses_in_one_line_and_both_stop_without_leftovers(
    tmp_path: Path, runs: list[Run], signum: int
) -> None:
    data_dir = tmp_path / "var"
    # Lower case on purpose: any case is accepted.
    first = Run(data_dir, free_port(), tmp_path / "first.log", DESKLINE_LOG_LEVEL="warning")
    runs.append(first)
    first.wait_ready()
    url_file = datadir.redis_url_file(data_dir)
    redis_url = url_file.read_text()
    family = children(first.process.pid)
    assert len(family) == 3, family  # Redis, web, worker

    second = bot(clean_env(data_dir, free_port()), "run", timeout=30)
    assert second.returncode == 1
    lines = (second.stdout + second.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "already runs" in lines[0]
    assert redis_url in lines[0]
    assert "Traceback" not in second.stderr

    # The first is untouched: its URL file, its Redis, its web.
    assert url_file.read_text() == redis_url
    outbox = bot(first.env, "outbox")
    assert outbox.returncode == 0, outbox.stderr
    assert get(f"http://127.0.0.1:{first.port}/readyz")[0] == 200

    assert first.stop(signum) == 0
    output = first.output()
    assert "Traceback" not in output, output
    assert "CancelledError" not in output, output
    assert output.rstrip().endswith("deskline: stopped")
    assert [pid for pid in family if pid_alive(pid)] == []
    assert not url_file.exists()
    assert not datadir.holder_running(data_dir)


def test_run_binds_loopback_with_generated_secrets_and_points_to_the_console(
    tmp_path: Path, runs: list[Run]
) -> None:
    data_dir = tmp_path / "var"
    run = Run(data_dir, free_port(), tmp_path / "run.log")
    runs.append(run)
    run.wait_ready()
    assert listening_hosts(run.port) == {"127.0.0.1"}
    dev_env = data_dir / "dev.env"
    assert dev_env.stat().st_mode & 0o777 == 0o600
    secrets = datadir.load_dev_env(data_dir)
    admin = secrets["DESKLINE_ADMIN_TOKEN"]
    assert len(admin) >= 32
    assert not admin.startswith("dev-")
    banner = run.output()
    assert f"http://localhost:{run.port}/console" in banner
    assert str(dev_env) in banner
    assert banner.count(admin) == 1  # printed once, when generated

    status, headers, _ = get(f"http://127.0.0.1:{run.port}/")
    assert (status, headers["Location"]) == (302, "/console")
    # The generated secrets are the ones in force: simulate signs with dev.env's app secret.
    numbers = bot(run.env, "numbers", "set", "1000", "--file", "examples/number-closed.json")
    assert numbers.returncode == 0, numbers.stderr
    posted = bot(run.env, "simulate", "--number", "1000", "--from", "5511987654321", "Oi")
    assert posted.returncode == 0, posted.stdout + posted.stderr
    assert run.stop() == 0

    # A second start keeps the secrets and does not print them again.
    again = Run(data_dir, free_port(), tmp_path / "again.log")
    runs.append(again)
    again.wait_ready()
    assert datadir.load_dev_env(data_dir) == secrets
    assert admin not in again.output()
    assert again.stop() == 0


def test_a_killed_run_leaves_a_stale_url_that_is_reported_then_replaced(
    tmp_path: Path, runs: list[Run]
) -> None:
    data_dir = tmp_path / "var"
    run = Run(data_dir, free_port(), tmp_path / "run.log")
    runs.append(run)
    run.wait_ready()
    family = children(run.process.pid)
    run.process.send_signal(signal.SIGKILL)  # a crash: nothing of run's own cleanup runs
    run.process.wait(10)
    deadline = time.monotonic() + 15
    while any(pid_alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in family if pid_alive(pid)] == [], "children outlived their parent"
    assert datadir.redis_url_file(data_dir).exists()

    stale = bot(run.env, "outbox")
    assert stale.returncode == 1
    assert "Traceback" not in stale.stderr
    assert len(stale.stderr.strip().splitlines()) == 1, stale.stderr
    assert "did not stop cleanly" in stale.stderr

    fresh = Run(data_dir, free_port(), tmp_path / "fresh.log")
    runs.append(fresh)
    fresh.wait_ready()
    assert bot(fresh.env, "outbox").returncode == 0
    assert fresh.stop(signal.SIGHUP) == 0  # a closed terminal stops it cleanly too
    assert not datadir.redis_url_file(data_dir).exists()


def test_cli_against_an_unreachable_redis_says_so_in_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path, free_port(), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    for argv in (["outbox"], ["numbers", "show", "1000"], ["dead-letters", "list"]):
        done = bot(env, *argv)
        assert done.returncode == 1, (argv, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("deskline: cannot reach Redis at redis://127.0.0.1:")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_worker_without_redis_stops_on_a_signal_within_5s(tmp_path: Path, signum: int) -> None:
    env = clean_env(tmp_path, free_port(), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while "redis connection error" not in log.read_text(errors="replace"):
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            signalled = time.monotonic()
            worker.send_signal(signum)
            code = worker.wait(15)
            took = time.monotonic() - signalled
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    output = log.read_text(errors="replace")
    assert code == 0, output
    assert took < 5, (took, output)
    assert "Traceback" not in output, output
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    assert events[-1] == "worker_stopped"
