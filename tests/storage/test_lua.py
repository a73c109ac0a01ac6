"""The Lua registry (storage/lua): every file is used, includes and tokens resolve, and every
resolved script compiles on the real Redis. What each script does is tested through its store
(tests/storage/test_<store>.py)."""

from __future__ import annotations

import ast
import hashlib
import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from storage import lua
from storage.lua import LuaSourceError, load

ROOT = Path(__file__).resolve().parents[2]
LUA_DIR = ROOT / "storage" / "lua"
PACKAGES = ("bot", "handlers", "jobs", "storage")


def _lua_calls() -> dict[str, set[str]]:
    """The literal names passed to `lua.register(redis, name)`, `lua.source(name)` and
    `lua.include(name)` anywhere in the application code, by function."""
    found: dict[str, set[str]] = {"register": set(), "source": set(), "include": set()}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "lua"
                    and node.func.attr in found
                ):
                    names = [
                        a.value
                        for a in node.args
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)
                    ]
                    assert names, f"{path}: call lua.{node.func.attr} with a literal name"
                    found[node.func.attr].update(names)
    return found


def _files() -> set[str]:
    return {p.relative_to(LUA_DIR).as_posix() for p in LUA_DIR.rglob("*.lua")}


def test_every_file_is_a_script_or_an_include() -> None:
    expected = {f"{n}.lua" for n in lua.LIBRARY.scripts} | {
        f"includes/{n}.lua" for n in lua.LIBRARY.includes
    }
    assert _files() == expected


def test_every_script_is_registered_by_a_store_and_every_name_exists() -> None:
    calls = _lua_calls()
    used = calls["register"] | calls["source"]
    assert used == set(lua.LIBRARY.scripts)
    assert calls["include"] <= set(lua.LIBRARY.includes)


def test_every_include_is_used() -> None:
    included = {
        m[1]
        for p in LUA_DIR.rglob("*.lua")
        for m in re.finditer(r"^--@include (\w+)", p.read_text(), re.M)
    }
    assert included | _lua_calls()["include"] == set(lua.LIBRARY.includes)


def test_includes_and_tokens_are_resolved_and_every_token_is_used() -> None:
    sources = {
        **lua.LIBRARY.scripts,
        **{f"includes/{n}": t for n, t in lua.LIBRARY.includes.items()},
    }
    for name, text in sources.items():
        assert "--@include" not in text, name
        assert not re.search(r"@[A-Z][A-Z0-9_]*@", text), name
    raw = "".join(p.read_text() for p in LUA_DIR.rglob("*.lua"))
    assert set(re.findall(r"@([A-Z][A-Z0-9_]*)@", raw)) == set(lua.TOKENS)
    # An include lands where its line was: the contact scripts define the index helpers.
    for name in ("contacts_upsert", "contacts_import", "contacts_reindex"):
        assert lua.source(name).count("local function reindex(") == 1, name


def test_no_script_is_duplicated() -> None:
    texts = list(lua.LIBRARY.scripts.values())
    assert len(set(texts)) == len(texts)


def test_every_lua_file_ships_in_the_package() -> None:
    # `pip install .` (the Dockerfile) copies only the package-data globs: a file outside
    # them would be missing in the image and fail its store at start.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["storage.lua"]

    def shipped(rel: str) -> bool:
        parts = rel.split("/")
        return any(
            len(g.split("/")) == len(parts)
            and all(fnmatchcase(p, q) for p, q in zip(parts, g.split("/"), strict=True))
            for g in globs
        )

    assert [f for f in sorted(_files()) if not shipped(f)] == []


async def test_every_resolved_script_compiles_on_redis(redis: aioredis.Redis) -> None:
    # Includes too: a piece must compile on its own, so an error points at the right file.
    for name, text in [*lua.LIBRARY.scripts.items(), *lua.LIBRARY.includes.items()]:
        sha = await redis.script_load(text)
        assert sha == hashlib.sha1(text.encode()).hexdigest(), name  # noqa: S324
    # What the stores' EVALSHA asks for is what was loaded.
    shas = [lua.register(redis, name).sha for name in lua.LIBRARY.scripts]
    assert all(await redis.script_exists(*shas))


def test_no_lua_source_in_a_python_string() -> None:
    # Any string calling into Redis is a script: it belongs in storage/lua, where the registry
    # fills its keys and the tests above see it.
    holders = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and re.search(r"redis\.p?call\(", node.value)
                ):
                    holders.add(path.relative_to(ROOT).as_posix())
    assert holders == set()


def test_unknown_script_or_include_name_raises() -> None:
    with pytest.raises(LuaSourceError, match="no script"):
        lua.source("no_such_script")
    with pytest.raises(LuaSourceError, match="no include"):
        lua.include("no_such_include")


# --- the resolver on its own files ----------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_nested_includes_are_inlined_once_in_place(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "includes/base.lua": "local B = '@PREFIX@'\n",
            "includes/left.lua": "--@include base\nlocal L = 1",
            "includes/right.lua": "--@include base\nlocal R = @N@\n",
            "main.lua": "-- doc\n--@include left\n--@include right\nreturn {L, R, B}\n",
        },
    )
    library = load(root, {"PREFIX": "dl:x:", "N": "7"})
    assert library.source("main") == (
        "-- doc\nlocal B = 'dl:x:'\nlocal L = 1\nlocal R = 7\nreturn {L, R, B}\n"
    )
    assert library.include("right") == "local B = 'dl:x:'\nlocal R = 7\n"


@pytest.mark.parametrize(
    ("files", "tokens", "error"),
    [
        ({"a.lua": "--@include gone\n"}, {}, "no include includes/gone.lua"),
        ({"a.lua": "--@include  two words\n"}, {}, "malformed include line"),
        (
            {
                "a.lua": "--@include x\n",
                "includes/x.lua": "--@include y\n",
                "includes/y.lua": "--@include x\n",
            },
            {},
            "include cycle",
        ),
        ({"a.lua": "return '@MISSING@'\n"}, {}, "unknown token @MISSING@"),
        ({"a.lua": "return '@Q@'\n"}, {"Q": "x'; redis.call('FLUSHALL') --"}, "cannot go into Lua"),
        ({"Bad-Name.lua": "return 1\n"}, {}, "names are"),
    ],
)
def test_resolver_refuses_broken_sources(
    tmp_path: Path, files: dict[str, str], tokens: dict[str, str], error: str
) -> None:
    with pytest.raises(LuaSourceError, match=re.escape(error)):
        load(_tree(tmp_path, files), tokens)
