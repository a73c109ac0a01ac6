"""The fault suite: deskline as deployed, then broken on purpose (fixtures; see harness.py).

Every test here runs real processes: `python -m bot web` and `python -m bot worker` children,
a real `redis-server` with an append-only file (`bot.runtime.embedded.EmbeddedRedis`), and a fake
Graph API served on a real port from this test process (`FaultGraph`), which the workers call
through `DESKLINE_GRAPH_API_URL`. Tests break one of them (kill, stop, slow down, fail) and
then count what was stored and what Meta received.

Each test prints one summary line of figures (`report`); they are repeated at the end of the
pytest run under "fault suite figures", and RELIABILITY.md quotes them.
"""

from __future__ import annotations

from typing import Any

from tests.faults.harness import (  # noqa: F401 -- fixtures, found by pytest through this import
    SUMMARIES,
    fixture_aof_redis,
    fixture_cluster,
    fixture_direct,
    fixture_fault_graph,
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARIES:
        terminalreporter.section("fault suite figures")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
