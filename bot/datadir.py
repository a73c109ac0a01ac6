"""The data directory of `python -m bot run` (`DESKLINE_DATA_DIR`, `var/` by default).

What lives there, and who may touch it:

- `run.lock`: held (an exclusive `flock`) by the one `run` that owns the directory, from
  before its Redis starts until it has stopped. The kernel releases it when that process
  ends, however it ends, so a lock is never stale. Its text says who holds it (pid, web URL,
  Redis URL) for the one-line refusal a second `run` prints.
- `redis/url`: the embedded Redis' URL, for the other commands (`outbox`, `numbers`, ...).
  Written and removed only by the lock's holder; a file left by a run that was SIGKILLed or
  hung up is recognised as stale (nobody holds the lock) and replaced by the next `run`.
- `dev.env`: the development secrets `run` generates on its first start (random, mode 0600),
  as `NAME=value` lines a shell can source (`. var/dev.env`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOCK_NAME: Final = "run.lock"
DEV_ENV_NAME: Final = "dev.env"
# The secrets `run` generates when the environment does not set them.
DEV_SECRET_NAMES: Final = (
    "DESKLINE_APP_SECRET",
    "DESKLINE_VERIFY_TOKEN",
    "DESKLINE_ADMIN_TOKEN",
)


class AlreadyRunningError(Exception):
    """Another `run` holds the data directory; `holder` is what it wrote about itself."""

    def __init__(self, data_dir: Path, holder: dict[str, object]) -> None:
        self.data_dir = data_dir
        self.holder = holder
        web = holder.get("web") or "?"
        redis = holder.get("redis") or "?"
        pid = holder.get("pid") or "?"
        super().__init__(
            f"deskline already runs in {data_dir} (pid {pid}, web {web}, Redis {redis});"
            f" stop it first, or give this one another DESKLINE_DATA_DIR"
        )


def redis_url_file(data_dir: Path) -> Path:
    return data_dir / "redis" / "url"


@dataclass
class RunLock:
    """The data directory's lock, held by this process while `run` is up."""

    data_dir: Path
    _fd: int

    @classmethod
    def acquire(cls, data_dir: Path, *, patience_s: float = 1.0) -> RunLock:
        """Take the lock, or raise AlreadyRunningError naming its holder.

        `patience_s`: a command that checks whether a run is up (`holder_running`) holds a
        shared lock for a few microseconds; retrying for a moment tells that apart from a
        running `run`, which holds it for hours.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + patience_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return cls(data_dir, fd)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(path)
                    os.close(fd)
                    raise AlreadyRunningError(data_dir, holder) from None
                time.sleep(0.05)

    def describe(self, **holder: object) -> None:
        """Write who holds the lock (pid, URLs) for the refusal of a second `run`."""
        text = json.dumps({"pid": os.getpid(), **holder}).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text, 0)

    def publish_redis_url(self, url: str) -> None:
        """Write `redis/url` for the other commands; replaces a stale one."""
        path = redis_url_file(self.data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(url)
        tmp.replace(path)

    def release(self) -> None:
        """Remove what this run published, then let go of the lock (in that order, so that
        the next `run` never sees its own files removed)."""
        redis_url_file(self.data_dir).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _read_holder(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def holder_running(data_dir: Path) -> bool:
    """Whether a `run` holds `data_dir` now (a shared lock succeeds only when none does)."""
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def running_redis_url(data_dir: Path) -> str | None:
    """The embedded Redis URL of the `run` that holds `data_dir`, or None.

    None both when there is no `redis/url` and when it is stale (no run holds the lock: the
    run that wrote it was killed or hung up before it could remove it).
    """
    path = redis_url_file(data_dir)
    if not path.exists() or not holder_running(data_dir):
        return None
    url = path.read_text().strip()
    return url or None


def load_dev_env(data_dir: Path) -> dict[str, str]:
    """The `NAME=value` lines of `dev.env` ({} when there is none)."""
    path = data_dir / DEV_ENV_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            values[name] = value
    return values


def ensure_dev_env(data_dir: Path) -> tuple[dict[str, str], bool]:
    """The development secrets, generated on the first start; (values, generated now).

    Random URL-safe tokens (no character a shell would interpret), so that `. var/dev.env`
    works; the file is created with mode 0600 and never rewritten once complete.
    """
    values = load_dev_env(data_dir)
    missing = [name for name in DEV_SECRET_NAMES if not values.get(name)]
    if not missing:
        return values, False
    for name in missing:
        values[name] = secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEV_ENV_NAME
    lines = [
        "# Development secrets of `python -m bot run` in this directory, generated on its",
        "# first start. Not for production: set DESKLINE_* in the environment there.",
        *(f"{name}={values[name]}" for name in DEV_SECRET_NAMES),
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    return values, True
