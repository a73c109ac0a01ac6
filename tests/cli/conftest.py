"""Fixtures of the command-line tests (real processes; see tests/cli/process.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.process import Run, started_runs


@pytest.fixture(name="runs")
def _runs() -> Iterator[list[Run]]:
    """Every Run a test starts; whatever is left is killed at the end."""
    yield from started_runs()
