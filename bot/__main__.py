"""`python -m bot web|worker|run|simulate|outbox`: the only entrypoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot import datadir
from bot.settings import Settings

# What a stopped child gets before SIGKILL, beyond the worker's grace for its running jobs.
_STOP_MARGIN_S = 10.0


def _say(text: str, *, err: bool = False) -> None:
    """Print one line; a terminal that hung up (EIO, EPIPE) must not break a clean stop."""
    with contextlib.suppress(OSError, ValueError):
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


def _safe_url(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _with_redis(settings: Settings) -> Settings:
    """Settings whose redis_url is set: REDIS_URL, else the URL of the `run` holding data_dir.

    Exits with one line when there is neither (also when `redis/url` is stale: left by a run
    that was killed or hung up, which no longer holds the data directory's lock).
    """
    if settings.redis_url is not None:
        return settings
    data_dir = Path(settings.data_dir)
    url = datadir.running_redis_url(data_dir)
    if url is not None:
        return settings.model_copy(update={"redis_url": url})
    if datadir.redis_url_file(data_dir).exists():
        sys.exit(
            f"deskline: no `python -m bot run` is running in {data_dir} (its"
            f" {datadir.redis_url_file(data_dir)} is left from a run that did not stop cleanly;"
            f" the next run replaces it) and REDIS_URL is not set"
        )
    sys.exit(f"deskline: REDIS_URL is not set and no `python -m bot run` is running in {data_dir}")


def cmd_web(settings: Settings) -> int:
    from aiohttp import web

    from bot.app import create_app

    try:
        web.run_app(
            create_app(_with_redis(settings)),
            host=settings.host,
            port=settings.port,
            access_log=None,
            print=None,
            shutdown_timeout=5,
        )
    except OSError as exc:  # the port is taken, or the host is not an address of this machine
        _say(f"deskline: web cannot listen on {settings.host}:{settings.port}: {exc}", err=True)
        return 1
    return 0


def cmd_worker(settings: Settings) -> int:
    """The arq worker, restarted while Redis is away; SIGTERM/SIGINT stop it in every state.

    First signal: take no new job, give running ones `worker_stop_grace_s` to finish, cancel
    (hand back) the rest, close. Second signal: cancel at once. While Redis is unreachable
    (connecting, or waiting to retry) a signal ends it within a moment.
    """
    import structlog
    from redis.exceptions import RedisError

    from bot.worker import DesklineWorker, worker_settings

    log = structlog.get_logger("bot.worker")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        running: list[DesklineWorker] = []

        def on_signal(signum: signal.Signals) -> None:
            first = not stop.is_set()
            stop.set()
            for worker in running:
                if first:
                    worker.handle_sig_wait_for_completion(signum)
                else:
                    worker.handle_sig(signum)

        def take_signals() -> None:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, on_signal, signum)

        take_signals()
        # arq's poll loop does not survive a lost Redis connection: the worker would exit and
        # wait for a supervisor. Its jobs are safe in Redis, so start a new worker instead,
        # backing off while Redis stays away (RELIABILITY.md).
        delay_s = 1.0
        while not stop.is_set():
            # Built inside the running loop: arq's Worker.__init__ calls get_event_loop(), which
            # fails outside one on Python 3.14 (python-arq/arq#512).
            worker = DesklineWorker(
                **{
                    **worker_settings(_with_redis(settings)),
                    "job_completion_wait": settings.worker_stop_grace_s,
                    "idle_poll": settings.worker_idle_poll_s,
                }
            )
            # arq's __init__ put its own handlers on the loop; ours know about the restarts.
            take_signals()
            running.append(worker)
            try:
                await worker.async_run()
                return
            except asyncio.CancelledError:
                # arq cancels its main task on a signal: a clean stop, not an error.
                if not stop.is_set():
                    raise
                return
            except (RedisError, OSError) as exc:
                if stop.is_set():
                    return
                log.warning("worker_redis_lost", error=type(exc).__name__, retry_in_s=delay_s)
            finally:
                running.remove(worker)
                await _close_worker(worker)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay_s)
            delay_s = min(delay_s * 2, 30.0)

    asyncio.run(main())
    log.info("worker_stopped")
    return 0


async def _close_worker(worker: Any) -> None:
    """arq's `Worker.close` (hooks, pool), bounded: with Redis gone it must not hang a stop."""
    from redis.exceptions import RedisError

    try:
        await asyncio.wait_for(worker.close(), timeout=5)
    except (RedisError, OSError, TimeoutError, asyncio.CancelledError):
        # A job task cancelled before it could catch it (arq gathers them first), or Redis
        # unreachable: drop the pool's connections without a goodbye.
        pool = getattr(worker, "_pool", None)
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.connection_pool.disconnect()


def _dev_secrets(settings: Settings, env: dict[str, str], data_dir: Path) -> None:
    """Fill the secrets the environment lacks from `dev.env` (generated on the first start)."""
    configured = {
        "DESKLINE_APP_SECRET": settings.app_secret,
        "DESKLINE_VERIFY_TOKEN": settings.verify_token,
        "DESKLINE_ADMIN_TOKEN": settings.admin_token,
    }
    if all(value is not None for value in configured.values()):
        return
    values, generated = datadir.ensure_dev_env(data_dir)
    for name, value in configured.items():
        if value is None:
            env[name] = values[name]
    path = data_dir / datadir.DEV_ENV_NAME
    if generated:
        admin = values["DESKLINE_ADMIN_TOKEN"]
        _say(
            f"deskline: development secrets generated in {path} (printed this once):"
            f" admin token {admin}"
        )
    else:
        _say(f"deskline: development secrets from {path} (`. {path}` puts them in a shell)")


def cmd_run(settings: Settings) -> int:
    """Web + worker as two child processes, with an embedded Redis when REDIS_URL is unset.

    One `run` per data directory: its lock is taken before anything starts, and a second
    `run` says so in one line and exits 1, touching nothing of the first. Binds 127.0.0.1
    unless HOST is set. SIGINT, SIGTERM and SIGHUP stop everything cleanly; a second
    signal hurries the worker (running jobs are cancelled and handed back).
    """
    from bot.runtime.embedded import EmbeddedRedis, binary_note, die_with_parent

    signals: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    data_dir = Path(settings.data_dir)
    try:
        lock = datadir.RunLock.acquire(data_dir)
    except datadir.AlreadyRunningError as exc:
        _say(f"deskline: {exc}", err=True)
        return 1
    env = dict(os.environ)
    # A development command: nobody else on the network needs the desk (nor its dev tokens).
    host = settings.host if "host" in settings.model_fields_set else "127.0.0.1"
    env["HOST"] = host
    shown_host = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host  # noqa: S104 -- compared, not bound
    web_url = f"http://{shown_host}:{settings.port}"
    embedded: EmbeddedRedis | None = None
    children: list[subprocess.Popen[bytes]] = []
    code = 0
    try:
        _dev_secrets(settings, env, data_dir)
        redis_url = settings.redis_url
        if redis_url is None:
            from bot.runtime.embedded import find_server_binary

            binary = find_server_binary()
            note = binary_note(binary)
            if note:
                _say(f"deskline: {note}")
            embedded = EmbeddedRedis(data_dir=data_dir / "redis", persistent=True)
            embedded.start()
            redis_url = embedded.url
            env["REDIS_URL"] = redis_url
            lock.publish_redis_url(redis_url)
            _say(
                f"deskline: embedded Redis at {redis_url} ({Path(binary.path).name} from the"
                f" {binary.origin}; append-only file in {data_dir / 'redis'})"
            )
        lock.describe(web=web_url, redis=_safe_url(redis_url))
        if settings.access_token is None:
            _say(
                "deskline: DESKLINE_ACCESS_TOKEN unset: replies go to the sandbox outbox"
                " (see them with `.venv/bin/python -m bot outbox`)"
            )
        if not signals:
            children = [
                subprocess.Popen(  # noqa: S603 -- this interpreter, fixed arguments
                    [sys.executable, "-m", "bot", role],
                    env=env,
                    # Their own process group: Ctrl-C reaches this process, which stops the
                    # web and the worker first and Redis last. They die with it if it is killed.
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
                for role in ("web", "worker")
            ]
            _say(
                f"deskline: web on {web_url} (console {web_url}/console; /healthz, /readyz,"
                f" /metrics, /webhook), listening on {host}; worker running."
                f" Ctrl-C stops everything."
            )
        while not signals and code == 0:
            for role, child in zip(("web", "worker"), children, strict=True):
                if child.poll() is not None:
                    _say(f"deskline: {role} exited with {child.returncode}; stopping", err=True)
                    code = 1
            time.sleep(0.2)
    except RuntimeError as exc:  # the embedded Redis did not start
        _say(f"deskline: {exc}", err=True)
        code = 1
    finally:
        _stop_children(children, settings.worker_stop_grace_s + _STOP_MARGIN_S, signals)
        if embedded is not None:
            embedded.stop()
        lock.release()
        _say("deskline: stopped")
    return code


def _stop_children(
    children: list[subprocess.Popen[bytes]], timeout_s: float, signals: list[int]
) -> None:
    """SIGTERM each child, wait for all (a new signal to us is passed on: hurry), then
    SIGKILL what is left after `timeout_s`."""
    seen = len(signals)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(child.poll() is None for child in children):
        if time.monotonic() > deadline:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            return
        if len(signals) > seen:  # Ctrl-C again: the worker cancels its jobs now
            seen = len(signals)
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
        time.sleep(0.05)


def cmd_outbox(settings: Settings, limit: int) -> None:
    """Print the latest messages the sandbox outbox kept, newest first, one JSON per line."""
    import redis

    from storage import keys

    client = redis.Redis.from_url(str(_with_redis(settings).redis_url))
    try:
        entries: list[bytes] = client.lrange(keys.SANDBOX_OUTBOX, 0, limit - 1)  # type: ignore[assignment]
    finally:
        client.close()
    for raw in entries:
        print(raw.decode())


def _parse_at(text: str) -> int:
    """`--at`: an ISO 8601 instant with its offset (`2026-01-05T22:00-03:00`), as unix time."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give an offset or Z: {text!r}")
    return int(at.timestamp())


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Sign and POST a webhook carrying one customer message, as Meta would.

    The app secret is DESKLINE_APP_SECRET, else the one `run` generated in `dev.env`.
    """
    import aiohttp

    from bot.simulate import build_payload, post

    secret = settings.app_secret.get_secret_value() if settings.app_secret else None
    secret = secret or datadir.load_dev_env(Path(settings.data_dir)).get("DESKLINE_APP_SECRET")
    if not secret:
        _say(
            "deskline: no app secret to sign with: set DESKLINE_APP_SECRET, or start"
            f" `python -m bot run` once (it generates {Path(settings.data_dir) / 'dev.env'})",
            err=True,
        )
        return 1
    payload = build_payload(
        phone_number_id=args.number,
        wa_id=args.sender,
        name=args.name,
        text=args.text,
        button_reply=args.button_reply,
        timestamp=args.at if args.at is not None else args.timestamp,
    )
    url = args.url or f"http://127.0.0.1:{settings.port}/webhook"
    try:
        status, body = asyncio.run(post(url, secret.encode(), payload))
    except (aiohttp.ClientError, OSError) as exc:
        _say(f"deskline: cannot reach {url}: {exc} (is `python -m bot run` up?)", err=True)
        return 1
    print(status, body)
    return 0 if status == 200 else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bot", description="deskline")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("web", help="the aiohttp server only")
    sub.add_parser("worker", help="the arq worker only")
    sub.add_parser("run", help="web + worker (+ embedded Redis when REDIS_URL is unset)")
    out = sub.add_parser("outbox", help="print what the sandbox outbox kept")
    out.add_argument("--limit", type=int, default=20)
    sim = sub.add_parser("simulate", help="sign and post a webhook to a running server")
    sim.add_argument("--number", required=True, help="phone_number_id of a configured number")
    sim.add_argument("--from", dest="sender", required=True, help="customer's wa_id")
    sim.add_argument("--name", default=None, help="customer's WhatsApp profile name")
    sim.add_argument("--button-reply", default=None, help="send a button reply with this id")
    when = sim.add_mutually_exclusive_group()
    when.add_argument("--timestamp", type=int, default=None, help="unix time of the message")
    when.add_argument(
        "--at",
        type=_parse_at,
        default=None,
        help="time of the message, ISO 8601 with offset (rules are judged at it; older than"
        " 24 hours when processed gets no auto-reply)",
    )
    sim.add_argument("--url", default=None, help="webhook URL (default: this machine's PORT)")
    sim.add_argument("text", nargs="?", default="Hello")
    from bot import cli

    cli.add_commands(sub)  # numbers set|show, agents add|token, dead-letters list|retry
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; operator mistakes and an unreachable Redis are one line, exit 1."""
    from pydantic import ValidationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            _say(f"deskline: invalid setting {name}: {error['msg']}", err=True)
        return 2
    from bot.runtime.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command == "web":
        return cmd_web(settings)
    if args.command == "worker":
        return cmd_worker(settings)
    if args.command == "run":
        return cmd_run(settings)
    if args.command == "simulate":
        return cmd_simulate(settings, args)
    # The commands that talk to Redis directly.
    url = str(_with_redis(settings).redis_url)
    try:
        if args.command == "outbox":
            cmd_outbox(settings.model_copy(update={"redis_url": url}), args.limit)
            return 0
        from bot import cli

        return cli.run(url, args)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        _say(f"deskline: cannot reach Redis at {_safe_url(url)}: {exc}", err=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
