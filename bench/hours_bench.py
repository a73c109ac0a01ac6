"""Micro-benchmark of the service-hours engine: `python bench/hours_bench.py`.

Times `is_open` and `next_opening` (the module-level functions, so the memoised compile lookup
is included) on a realistic schedule: lunch breaks, a Friday night shift, public holidays with
one switched off, a recurring half day and a dated range, in several zones. The instants mix
open times, lunch breaks, nights, weekends, holidays and DST changes. Prints µs per call.
Targets on the 2-core dev machine: is_open < 20 µs, next_opening < 200 µs.
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.domain.hours import compile_schedule, is_open, next_opening
from bot.domain.schedule import ServiceHours

WORKDAY = [{"start": "08:30", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
SCHEDULES = {
    "America/Sao_Paulo": ("BR", "SP", ["Tiradentes"]),
    "America/New_York": ("US", "NY", ["Columbus Day"]),
    "Europe/London": ("GB", "ENG", []),
    "Australia/Lord_Howe": ("AU", "NSW", []),
    "Asia/Kolkata": ("IN", None, []),
}


def schedule(country: str, subdivision: str | None, open_on: list[str]) -> ServiceHours:
    return ServiceHours.model_validate(
        {
            "weekly": {
                "mon": WORKDAY,
                "tue": WORKDAY,
                "wed": WORKDAY,
                "thu": WORKDAY,
                "fri": [*WORKDAY, {"start": "22:00", "end": "02:00"}],
                "sat": [{"start": "09:00", "end": "13:00"}],
            },
            "exceptions": [
                {"date": "2026-12-24", "hours": [{"start": "09:00", "end": "12:00"}],
                 "recurring": True},
                {"date": "2026-12-31", "closed": True, "recurring": True, "label": "year end"},
                {"date": "2027-01-02", "end_date": "2027-01-05", "closed": True,
                 "label": "inventory"},
                {"date": "2026-07-15", "hours": [{"start": "10:00", "end": "14:00"}]},
            ],
            "holidays": {"country": country, "subdivision": subdivision, "open_on": open_on},
        }
    )  # fmt: skip


def instants(tz: ZoneInfo) -> list[datetime]:
    """Every 37 minutes for two weeks from a few starting days (DST edges and year end too)."""
    starts = [datetime(2026, 3, 6), datetime(2026, 10, 30), datetime(2026, 12, 22)]
    out = []
    for start in starts:
        base = start.replace(tzinfo=tz).astimezone(UTC)
        out += [base + timedelta(minutes=37 * k) for k in range(14 * 24 * 60 // 37)]
    return out


def per_call_us(func: Callable[..., object], args: list[tuple[Any, ...]], repeat: int = 5) -> float:
    """Best of `repeat` runs over all `args`, in µs per call."""

    def run() -> None:
        for a in args:
            func(*a)

    best = min(timeit.repeat(run, number=1, repeat=repeat))
    return best / len(args) * 1e6


def main() -> None:
    print(f"{'zone':<22} {'is_open µs':>11} {'next_opening µs':>16} {'closed share':>13}")
    totals: list[tuple[float, float]] = []
    for zone, (country, subdivision, open_on) in SCHEDULES.items():
        tz = ZoneInfo(zone)
        s = schedule(country, subdivision, open_on)
        points = instants(tz)
        compile_schedule(s, tz)
        for t in points:  # warm the holiday and transition tables: steady-state cost
            next_opening(s, tz, t)
        args = [(s, tz, t) for t in points]
        open_us = per_call_us(is_open, args)
        next_us = per_call_us(next_opening, args)
        closed = sum(not is_open(s, tz, t) for t in points) / len(points)
        totals.append((open_us, next_us))
        print(f"{zone:<22} {open_us:>11.2f} {next_us:>16.2f} {closed:>12.0%}")
    worst_open = max(o for o, _ in totals)
    worst_next = max(n for _, n in totals)
    print(f"worst: is_open {worst_open:.2f} µs (target < 20), "
          f"next_opening {worst_next:.2f} µs (target < 200)")  # fmt: skip

    # The cost of a cold start: compiling a schedule and building a zone/year's tables.
    tz = ZoneInfo("America/Sao_Paulo")
    s = schedule("BR", "SP", [])
    n = 200
    compile_us = timeit.timeit(lambda: compile_schedule(s.model_copy(), tz), number=n) / n * 1e6
    print(f"compile_schedule (new object): {compile_us:.1f} µs")


if __name__ == "__main__":
    main()
