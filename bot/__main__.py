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
from pathlib import Path

from bot.settings import Settings

# Development defaults of `run`, printed at start; production sets its own.
DEV_SECRETS = {
    "DESKLINE_APP_SECRET": "dev-app-secret",
    "DESKLINE_VERIFY_TOKEN": "dev-verify-token",
    "DESKLINE_ADMIN_TOKEN": "dev-admin-token",
}


def _embedded_url_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "redis" / "url"


def _with_redis(settings: Settings) -> Settings:
    """Settings whose redis_url is set: REDIS_URL, else the URL `run` left for other commands."""
    if settings.redis_url is not None:
        return settings
    path = _embedded_url_file(settings)
    if path.exists():
        return settings.model_copy(update={"redis_url": path.read_text().strip()})
    sys.exit("REDIS_URL is not set and no `python -m bot run` is running here")


def cmd_web(settings: Settings) -> None:
    from aiohttp import web

    from bot.app import create_app

    web.run_app(
        create_app(_with_redis(settings)),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        shutdown_timeout=10,
    )


def cmd_worker(settings: Settings) -> None:
    import structlog
    from redis.exceptions import RedisError

    from bot.worker import DesklineWorker, worker_settings

    log = structlog.get_logger("bot.worker")

    async def main() -> None:
        # arq's poll loop does not survive a lost Redis connection: the worker would exit and
        # wait for a supervisor. Its jobs are safe in Redis, so start a new worker instead,
        # backing off while Redis stays away (RELIABILITY.md).
        delay_s = 1.0
        while True:
            # Built inside the running loop: arq's Worker.__init__ calls get_event_loop(), which
            # fails outside one on Python 3.14 (python-arq/arq#512).
            worker = DesklineWorker(**worker_settings(_with_redis(settings)))
            try:
                await worker.async_run()
                return
            except (RedisError, OSError) as exc:
                log.warning("worker_redis_lost", error=type(exc).__name__, retry_in_s=delay_s)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await worker.close()
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, 30.0)

    asyncio.run(main())


def cmd_run(settings: Settings) -> int:
    """Web + worker as two child processes, with an embedded Redis when REDIS_URL is unset."""
    from bot.runtime.embedded import EmbeddedRedis

    env = dict(os.environ)
    for name, value in DEV_SECRETS.items():
        if not env.get(name):
            env[name] = value
            print(f"deskline: {name} unset, using {value!r} for this development run")
    embedded: EmbeddedRedis | None = None
    url_file = _embedded_url_file(settings)
    if settings.redis_url is None:
        embedded = EmbeddedRedis(data_dir=Path(settings.data_dir) / "redis", persistent=True)
        embedded.start()
        env["REDIS_URL"] = embedded.url
        url_file.write_text(embedded.url)
        print(
            f"deskline: embedded Redis at {embedded.url}"
            f" (append-only file in {settings.data_dir}/redis)"
        )
    if settings.access_token is None:
        print(
            "deskline: DESKLINE_ACCESS_TOKEN unset: replies go to the sandbox outbox"
            " (see them with `python -m bot outbox`)"
        )
    children = [
        subprocess.Popen([sys.executable, "-m", "bot", role], env=env)  # noqa: S603
        for role in ("web", "worker")
    ]
    print(
        f"deskline: web on http://localhost:{settings.port} (/healthz, /readyz, /metrics,"
        f" /webhook); worker running. Ctrl-C stops everything."
    )
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    print(f"deskline: {child.args!r} exited with {child.returncode}")
                    stopping, code = True, 1
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.stop()
            url_file.unlink(missing_ok=True)
        print("deskline: stopped")
    return code


def cmd_outbox(settings: Settings, limit: int) -> None:
    """Print the latest messages the sandbox outbox kept, newest first, one JSON per line."""
    import redis

    from storage import keys

    client = redis.Redis.from_url(str(_with_redis(settings).redis_url))
    entries: list[bytes] = client.lrange(keys.SANDBOX_OUTBOX, 0, limit - 1)  # type: ignore[assignment]
    for raw in entries:
        print(raw.decode())


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    """Sign and POST a webhook carrying one customer message, as Meta would."""
    from bot.simulate import build_payload, post

    secret = settings.app_secret.get_secret_value() if settings.app_secret else None
    secret = secret or DEV_SECRETS["DESKLINE_APP_SECRET"]
    payload = build_payload(
        phone_number_id=args.number,
        wa_id=args.sender,
        name=args.name,
        text=args.text,
        button_reply=args.button_reply,
        timestamp=args.timestamp,
    )
    url = args.url or f"http://127.0.0.1:{settings.port}/webhook"
    status, body = asyncio.run(post(url, secret.encode(), payload))
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
    sim.add_argument("--timestamp", type=int, default=None, help="unix time of the message")
    sim.add_argument("--url", default=None, help="webhook URL (default: this machine's PORT)")
    sim.add_argument("text", nargs="?", default="Hello")
    from bot import cli

    cli.add_commands(sub)  # numbers set|show, agents add|token, dead-letters list|retry
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    from bot.runtime.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command == "web":
        cmd_web(settings)
    elif args.command == "worker":
        cmd_worker(settings)
    elif args.command == "run":
        return cmd_run(settings)
    elif args.command == "outbox":
        cmd_outbox(settings, args.limit)
    elif args.command == "simulate":
        return cmd_simulate(settings, args)
    elif args.command in ("numbers", "agents", "dead-letters"):
        from bot import cli

        return cli.run(str(_with_redis(settings).redis_url), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
