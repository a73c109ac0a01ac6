"""The Lua scripts' registry: every script deskline runs, read from `storage/lua/` once.

Layout (BullMQ's `src/commands/*.lua` with `includes/`):

* `storage/lua/<name>.lua`: one script each, registered by its store with
  `lua.register(redis, "<name>")`. Names are `<store>_<what>`; a script several stores run
  has a plain name (`compare_and_delete`). The arq worker's two (`worker_*`, bot/worker.py)
  live here too, and take arq's keys as KEYS and ARGV: tokens come from keys.py only.
* `storage/lua/includes/<name>.lua`: shared pieces (Lua functions and locals), never run on
  their own.

A script pulls a piece in with a line of its own, `--@include <name>` (a Lua comment, so a
file stays valid Lua for an editor). The line is replaced by the piece, which may include
others; a piece is inlined at most once per script (a second `--@include` of it is dropped,
so two pieces can both include a third), and a cycle is an error.

Key prefixes and constants are written `@NAME@` in the Lua and filled from `TOKENS`, built
from storage/keys.py here and only here: keys.py stays the one source of truth for key
spellings and TTLs, and no store fills tokens of its own. A string token goes inside quotes in
the Lua (`'@MONITOR_TAGS@'`), a number without (`@MONITOR_BUCKET_MS@`).

Everything is read, resolved and checked when this module is imported (at process start): a
missing include, a cycle or an unknown token raises `LuaSourceError` then, not at the first
call of a rarely used script. Stores register their scripts per Redis client as before;
`redis.register_script` runs EVALSHA and loads the script again after a Redis restart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Final

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from storage import keys

INCLUDES_DIR: Final = "includes"
_NAME: Final = re.compile(r"[a-z][a-z0-9_]*")
_INCLUDE: Final = re.compile(r"--@include (?P<name>[a-z][a-z0-9_]*)[ \t]*")
_TOKEN: Final = re.compile(r"@(?P<name>[A-Z][A-Z0-9_]*)@")
# A token's value lands inside a Lua string literal or as a number: nothing that could end
# the literal or the line.
_SAFE_VALUE: Final = re.compile(r"[^'\"\\\n\r]*")


class LuaSourceError(Exception):
    """A script or include that cannot be resolved: bad name, missing or cyclic include,
    malformed include line, unknown token."""


def _split(template: str, count: int) -> tuple[str, ...]:
    """The fixed text around a key's `count` variable parts ("\\0", "\\1"... in `template`):
    `count + 1` pieces, the scripts build such keys as PRE .. a .. MID .. b .. SUF."""
    pieces = tuple(re.split("[\0-\x08]", template))
    if len(pieces) != count + 1:
        raise LuaSourceError(f"key {template!r} does not have {count} variable parts")
    return pieces


def _parts(template: str, count: int) -> tuple[str, ...]:
    """`_split` without the empty suffix: the key must end with its last part."""
    pieces = _split(template, count)
    if pieces[-1] != "":
        raise LuaSourceError(f"key {template!r} does not end with its last part")
    return pieces[:-1]


def _prefix(key: Callable[[str], str]) -> str:
    """The prefix of a one-part key that ends with its part: the key of `x` is PREFIX .. x."""
    return _parts(key("\0"), 1)[0]


def _tokens() -> dict[str, str]:
    """Every `@NAME@` the Lua may use, from storage/keys.py."""
    day_pre, day_mid = _parts(keys.monitor_day("\0", "\1"), 2)  # type: ignore[arg-type]
    agent_pre, agent_mid = _parts(keys.tickets_by_agent("\0", "\1"), 2)
    tag_pre, tag_mid = _parts(keys.tickets_by_tag("\0", "\1"), 2)
    outcome_pre, outcome_mid = _parts(keys.tickets_by_outcome("\0", "\1"), 2)
    na_pre, na_suf = _split(keys.number_agents("\0"), 1)
    open_pre, open_mid, open_suf = _split(keys.open_ticket("\0", "\1"), 2)
    return {
        # Key prefixes: the key of `x` is PREFIX .. x.
        "MONITOR_WAITING": _prefix(keys.monitor_waiting),
        "MONITOR_IN_SERVICE": _prefix(keys.monitor_in_service),
        "MONITOR_TAGS": _prefix(keys.monitor_tags),
        "TICKET": _prefix(keys.ticket),
        "TICKET_MESSAGES": _prefix(keys.ticket_messages),
        "TICKET_HISTORY": _prefix(keys.ticket_history),
        "TICKET_NOTES": _prefix(keys.ticket_notes),
        "TICKET_QUEUE": _prefix(keys.ticket_queue),
        "TICKETS_IDLE": _prefix(keys.tickets_idle),
        "TICKETS_UNANSWERED": _prefix(keys.tickets_unanswered),
        "TICKETS_ACTIVE": _prefix(keys.tickets_active),
        "TICKETS_ALL": _prefix(keys.tickets_all),
        "AGENT": _prefix(keys.agent),
        "AGENT_TICKETS": _prefix(keys.agent_tickets),
        "AGENT_EVENTS": _prefix(keys.agent_events),
        "PORTFOLIO": _prefix(keys.portfolio),
        # Two-part keys: PRE .. a .. MID .. b.
        "MONITOR_DAY_PRE": day_pre,
        "MONITOR_DAY_MID": day_mid,
        "TICKETS_BY_AGENT_PRE": agent_pre,
        "TICKETS_BY_AGENT_MID": agent_mid,
        "TICKETS_BY_TAG_PRE": tag_pre,
        "TICKETS_BY_TAG_MID": tag_mid,
        "TICKETS_BY_OUTCOME_PRE": outcome_pre,
        "TICKETS_BY_OUTCOME_MID": outcome_mid,
        # Keys with a suffix: PRE .. a [.. MID .. b] .. SUF.
        "NUMBER_AGENTS_PRE": na_pre,
        "NUMBER_AGENTS_SUF": na_suf,
        "OPEN_TICKET_PRE": open_pre,
        "OPEN_TICKET_MID": open_mid,
        "OPEN_TICKET_SUF": open_suf,
        # Fixed keys.
        "ASSIGN_SEQ": keys.ASSIGN_SEQ,
        "LAST_ASSIGNED": keys.LAST_ASSIGNED,
        "TICKET_HOLDERS": keys.TICKET_HOLDERS,
        # Numbers.
        "MONITOR_BUCKET_MS": str(keys.MONITOR_BUCKET_MS),
        "MONITOR_BUCKETS_PER_DAY": str(86_400_000 // keys.MONITOR_BUCKET_MS),
        "MONITOR_DAY_TTL_S": str(keys.MONITOR_DAY_TTL_S),
        "TICKET_TTL_S": str(keys.TICKET_TTL_S),
        "AGENT_EVENTS_MAX": str(keys.AGENT_EVENTS_MAX),
        "AGENT_EVENTS_TTL_S": str(keys.AGENT_EVENTS_TTL_S),
        "DRAIN_BATCH": str(keys.DRAIN_BATCH),
    }


TOKENS: Final[Mapping[str, str]] = MappingProxyType(_tokens())


@dataclass(frozen=True, slots=True)
class Library:
    """Resolved sources (includes inlined, tokens filled) by name."""

    scripts: Mapping[str, str]
    # Each include resolved on its own too: a piece must compile on its own, so an error
    # points at the right file (tests/storage/test_lua.py).
    includes: Mapping[str, str]

    def source(self, name: str) -> str:
        """The resolved text of script `name` (storage/lua/<name>.lua)."""
        try:
            return self.scripts[name]
        except KeyError:
            raise LuaSourceError(f"no script storage/lua/{name}.lua") from None

    def include(self, name: str) -> str:
        """The resolved text of include `name` (storage/lua/includes/<name>.lua)."""
        try:
            return self.includes[name]
        except KeyError:
            raise LuaSourceError(f"no include storage/lua/{INCLUDES_DIR}/{name}.lua") from None

    def register(self, redis: Redis, name: str) -> AsyncScript:
        """Script `name` on `redis`: calling it runs EVALSHA (EVAL when Redis lost it)."""
        return redis.register_script(self.source(name))


def _read(folder: Traversable, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in folder.iterdir():
        if not entry.is_file() or not entry.name.endswith(".lua"):
            continue
        name = entry.name.removesuffix(".lua")
        if not _NAME.fullmatch(name):
            raise LuaSourceError(f"{where}{entry.name}: names are [a-z][a-z0-9_]*")
        out[name] = entry.read_text(encoding="utf-8")
    return out


def _inline(
    text: str, where: str, pieces: Mapping[str, str], stack: tuple[str, ...], done: set[str]
) -> str:
    """`text` with its `--@include` lines replaced, recursively (`done`: inlined already)."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("--@include"):
            out.append(line)
            continue
        found = _INCLUDE.fullmatch(line.rstrip("\r\n"))
        if found is None:
            raise LuaSourceError(f"{where}: malformed include line {line.strip()!r}")
        name = found["name"]
        if name in stack:
            raise LuaSourceError(f"{where}: include cycle {' -> '.join((*stack, name))}")
        if name not in pieces:
            raise LuaSourceError(f"{where}: no include {INCLUDES_DIR}/{name}.lua")
        if name in done:
            continue
        done.add(name)
        piece = _inline(pieces[name], f"{INCLUDES_DIR}/{name}.lua", pieces, (*stack, name), done)
        out.append(piece if piece.endswith("\n") else piece + "\n")
    return "".join(out)


def _fill(text: str, where: str, tokens: Mapping[str, str]) -> str:
    def value(found: re.Match[str]) -> str:
        name = found["name"]
        if name not in tokens:
            raise LuaSourceError(f"{where}: unknown token @{name}@")
        return tokens[name]

    return _TOKEN.sub(value, text)


def load(root: Traversable, tokens: Mapping[str, str]) -> Library:
    """Read `root/*.lua` (scripts) and `root/includes/*.lua`, inline includes, fill tokens.

    Raises:
        LuaSourceError: a bad file name, a malformed, missing or cyclic include, an unknown
            token, or a token value that could break out of a Lua string.
    """
    for name, value in tokens.items():
        if not _SAFE_VALUE.fullmatch(value):
            raise LuaSourceError(f"token @{name}@: {value!r} cannot go into Lua source")
    pieces_dir = root.joinpath(INCLUDES_DIR)
    pieces = _read(pieces_dir, f"{INCLUDES_DIR}/") if pieces_dir.is_dir() else {}
    includes = {
        name: _fill(
            _inline(text, f"{INCLUDES_DIR}/{name}.lua", pieces, (name,), {name}),
            f"{INCLUDES_DIR}/{name}.lua",
            tokens,
        )
        for name, text in sorted(pieces.items())
    }
    scripts = {
        name: _fill(_inline(text, f"{name}.lua", pieces, (), set()), f"{name}.lua", tokens)
        for name, text in sorted(_read(root, "").items())
    }
    return Library(MappingProxyType(scripts), MappingProxyType(includes))


LIBRARY: Final = load(files(__name__), TOKENS)


def register(redis: Redis, name: str) -> AsyncScript:
    """Script `name` (storage/lua/<name>.lua, resolved) registered on `redis`."""
    return LIBRARY.register(redis, name)


def source(name: str) -> str:
    """The resolved text of script `name`, for callers that load it themselves (SCRIPT LOAD)."""
    return LIBRARY.source(name)


def include(name: str) -> str:
    """The resolved text of include `name` on its own."""
    return LIBRARY.include(name)
