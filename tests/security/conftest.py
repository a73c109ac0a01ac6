"""Security tests reuse the fault suite's deployment of real processes (tests/faults/harness.py)."""

from __future__ import annotations

from tests.faults.harness import (  # noqa: F401 -- fixtures, found by pytest through this import
    fixture_aof_redis,
    fixture_cluster,
    fixture_direct,
    fixture_fault_graph,
)
