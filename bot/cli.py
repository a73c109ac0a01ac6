"""Operator commands: `python -m bot numbers set|show`, `python -m bot agents add|token`.

They talk to Redis directly through the same stores (and the same validation) as the HTTP
API, for setting a deployment up without curl. Changes are audited with the actor
`cli:<os user>`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.domain.errors import DesklineError, InvalidInputError

if TYPE_CHECKING:
    from storage import Stores

COMMANDS = ("numbers", "agents")


def add_commands(sub: Any) -> None:
    """Add the `numbers` and `agents` sub-commands to `python -m bot`'s parser."""
    numbers = sub.add_parser("numbers", help="a number's chatbot settings").add_subparsers(
        dest="action", required=True
    )
    put = numbers.add_parser("set", help="create or replace a number's settings from JSON")
    put.add_argument("phone_number_id")
    put.add_argument("--file", required=True, help="settings JSON (API.md body); - for stdin")
    show = numbers.add_parser("show", help="print a number's settings, defaults filled")
    show.add_argument("phone_number_id")

    agents = sub.add_parser("agents", help="agents and their API tokens").add_subparsers(
        dest="action", required=True
    )
    add = agents.add_parser("add", help="create or replace an agent")
    add.add_argument("agent_id")
    add.add_argument("--name", required=True)
    add.add_argument("--numbers", default="", help="comma-separated phone_number_ids")
    add.add_argument("--role", choices=("agent", "manager", "admin"), default="agent")
    add.add_argument("--slots", type=int, default=3)
    token = agents.add_parser("token", help="issue a new API token for an agent (printed once)")
    token.add_argument("agent_id")

    dead = sub.add_parser("dead-letters", help="jobs that failed for good").add_subparsers(
        dest="action", required=True
    )
    listing = dead.add_parser("list", help="print the latest dead letters, newest first")
    listing.add_argument("--limit", type=int, default=50)
    retry = dead.add_parser("retry", help="queue dead-lettered jobs again (idempotent jobs)")
    retry.add_argument("job_ids", nargs="*", help="job ids to replay")
    retry.add_argument("--all", action="store_true", help="replay every dead letter")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry for the uid (some containers)
        return "cli"


@asynccontextmanager
async def open_stores(redis_url: str) -> AsyncIterator[Stores]:
    from redis.asyncio import Redis

    from storage import Stores

    client = Redis.from_url(redis_url)
    try:
        yield Stores.on(client)
    finally:
        await client.aclose()


def _print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


async def numbers_set(stores: Stores, phone_number_id: str, body: Any, out: TextIO) -> None:
    from bot.domain.clock import SystemClock
    from bot.domain.config import is_valid_id

    if not is_valid_id(phone_number_id):
        raise InvalidInputError("not a valid phone_number_id", "phone_number_id")
    stored, _ = await stores.numbers.put(
        phone_number_id, body, actor=_actor(), at=SystemClock().now()
    )
    _print_json(stored.view().model_dump(mode="json"), out)


async def numbers_show(stores: Stores, phone_number_id: str, out: TextIO) -> bool:
    stored = await stores.numbers.get(phone_number_id)
    if stored is None:
        return False
    _print_json(stored.view().model_dump(mode="json"), out)
    return True


async def agents_add(stores: Stores, args: argparse.Namespace, out: TextIO) -> None:
    from bot.domain.clock import SystemClock
    from bot.domain.config import AgentInput, is_valid_id, parse_body

    if not is_valid_id(args.agent_id):
        raise InvalidInputError("not a valid agent id", "agent_id")
    numbers = [n.strip() for n in args.numbers.split(",") if n.strip()]
    data = parse_body(
        AgentInput, {"name": args.name, "numbers": numbers, "role": args.role, "slots": args.slots}
    )
    record, _ = await stores.agents.put(args.agent_id, data, at=SystemClock().now())
    _print_json(record.model_dump(mode="json"), out)


async def agents_token(stores: Stores, agent_id: str, out: TextIO) -> None:
    """Print a new token (stdout, alone on its line, for scripts); only its hash is stored."""
    from bot.domain import auth
    from bot.domain.clock import SystemClock

    token = auth.new_token()
    digest = auth.hash_token(token)
    await stores.agents.add_token(
        agent_id, digest, auth.token_id(digest), actor=_actor(), at=SystemClock().now()
    )
    out.write(token + "\n")


def _read_body(path: str) -> Any:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not JSON: {exc}") from None


async def _run(redis_url: str, args: argparse.Namespace, out: TextIO) -> int:
    async with open_stores(redis_url) as stores:
        if args.command == "numbers" and args.action == "set":
            await numbers_set(stores, args.phone_number_id, _read_body(args.file), out)
        elif args.command == "numbers" and args.action == "show":
            if not await numbers_show(stores, args.phone_number_id, out):
                sys.stderr.write(f"number {args.phone_number_id} is not configured\n")
                return 1
        elif args.command == "agents" and args.action == "add":
            await agents_add(stores, args, out)
        elif args.command == "agents" and args.action == "token":
            await agents_token(stores, args.agent_id, out)
        elif args.command == "dead-letters" and args.action == "list":
            for entry in await stores.dead_letters.list(args.limit):
                out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        elif args.command == "dead-letters" and args.action == "retry":
            return await dead_letters_retry(stores, redis_url, args, out)
    return 0


async def dead_letters_retry(
    stores: Stores, redis_url: str, args: argparse.Namespace, out: TextIO
) -> int:
    """Replay dead letters (by id, or all); each leaves the list once it is queued again."""
    from arq.connections import ArqRedis
    from redis.asyncio import BlockingConnectionPool

    from bot.runtime.queue import enqueue_replay, job_deserializer, job_serializer

    entries = (
        await stores.dead_letters.list(keys_max())
        if args.all
        else [e for e in [await stores.dead_letters.get(i) for i in args.job_ids] if e]
    )
    if not entries:
        sys.stderr.write("no such dead letters\n")
        return 1
    arq_redis = ArqRedis(
        BlockingConnectionPool.from_url(redis_url),
        job_serializer=job_serializer,
        job_deserializer=job_deserializer,
    )
    try:
        for entry in entries:
            new_id = await enqueue_replay(arq_redis, entry)
            await stores.dead_letters.remove(str(entry["id"]))
            out.write(f"{entry['id']} -> {new_id}\n")
    finally:
        await arq_redis.aclose(close_connection_pool=True)
    return 0


def keys_max() -> int:
    from storage.keys import DEAD_LETTERS_MAX

    return DEAD_LETTERS_MAX


def run(redis_url: str, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one operator command; exit status 2 on invalid input (message names the field)."""
    try:
        return asyncio.run(_run(redis_url, args, out or sys.stdout))
    except InvalidInputError as exc:
        sys.stderr.write(f"invalid: {exc.message}\n")
        return 2
    except DesklineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


def main(redis_url: str, argv: Sequence[str]) -> int:
    """Parse `argv` (e.g. `["numbers", "show", "123"]`) and run it: for tests and scripts."""
    parser = argparse.ArgumentParser(prog="python -m bot")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(redis_url, parser.parse_args(argv))
