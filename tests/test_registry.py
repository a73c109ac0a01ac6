"""Every job name bot.runtime.queue spells is registered in jobs.FUNCTIONS, and vice versa."""

from __future__ import annotations

from bot.runtime import queue
from jobs import FUNCTIONS


def test_job_names_match_the_registry() -> None:
    registered = {f.name for f in FUNCTIONS}
    assert registered == set(queue.JOB_NAMES)


def test_job_names_are_the_constants_spelled_in_queue() -> None:
    constants = {
        value
        for name, value in vars(queue).items()
        if name.isupper()
        and isinstance(value, str)
        and name != "JOB_NAMES"
        and not name.startswith("_")
    }
    assert set(queue.JOB_NAMES) <= constants
