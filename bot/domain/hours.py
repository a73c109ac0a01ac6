"""The service-hours engine: is a number open at an instant, when does it open next, and why.

Pure (no I/O, no clock, no environment): every answer depends only on the `ServiceHours`, the
number's `ZoneInfo` and the instant asked about, never on the machine's TZ or locale.

Semantics (API.md):

* Open and closed are properties of the *wall clock* in the number's zone. An instant is open
  when its local date and time fall in an interval. Times skipped by a spring-forward jump never
  occur, so an interval starting inside the gap opens when the gap ends; both occurrences of a
  repeated fall-back hour count.
* Intervals are `[start, end)`; one whose end is before its start runs past midnight and
  belongs to the day it starts on. A date's rule decides the intervals that START on it:
  dated exception > recurring exception > holiday > weekly. So Friday 22:00-02:00 still covers
  Saturday 01:30 when Saturday has an exception, unless Friday has one. `always_open` beats all.
* Boundaries are whole minutes, so comparing whole seconds is exact: 23:59:30 on a
  00:00-24:00 day is open, 02:00:00 is not inside 22:00-02:00.

Cost: `compile_schedule` turns a `ServiceHours` into integer tables once; `is_open` is then a
zone conversion and a few dict lookups. The module-level functions memoise the compiled form
per (schedule object, zone), so callers may simply pass the model they hold. Holiday tables are
built once per (country, subdivision, year, language) and shared by every schedule.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Final, Literal
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from bot.domain.schedule import (
    DAYS,
    DateException,
    HolidayRule,
    Interval,
    ServiceHours,
    holiday_languages,
)

__all__ = [
    "CompiledSchedule",
    "Explanation",
    "Reason",
    "compile_schedule",
    "explain",
    "is_open",
    "next_opening",
]

Reason = Literal["always_open", "weekly", "exception", "holiday", "closed_day"]

SECONDS_PER_DAY: Final = 86_400
# "Never opens within a year": the search horizon, counted from the instant asked about.
HORIZON: Final = timedelta(days=366)
_ONE_DAY: Final = timedelta(days=1)
_FIRST_YEAR: Final = 2
_LAST_YEAR: Final = 9997


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a number is open or closed at an instant.

    `reason` names the rule of the local date that decided: when open, the date whose interval
    covers the instant (which is the day before for the tail of a past-midnight interval);
    when closed, the instant's own local date, where `weekly` means "outside the weekly hours"
    and `closed_day` "no weekly hours on that weekday". `label` is the exception's label or the
    holiday's name (in the country's language). `next_opening` equals the instant when open,
    is the next opening when closed, and None when it does not open within a year; like
    `CompiledSchedule.next_opening`, it carries the number's offset as a fixed-offset tzinfo.
    """

    open: bool
    reason: Reason
    label: str | None
    next_opening: datetime | None


@dataclass(frozen=True, slots=True)
class _DayRule:
    """The intervals starting on one local date, as [start, end) seconds after its midnight
    (ends above 86400 run into the next date), and the rule they came from."""

    reason: Reason
    spans: tuple[tuple[int, int], ...]
    label: str | None = None


def _spans(intervals: tuple[Interval, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((i.start_minute * 60, i.end_minute * 60) for i in intervals))


def _exception_rule(exception: DateException) -> _DayRule:
    return _DayRule("exception", _spans(exception.hours or ()), exception.label)


# --- holidays -------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _holiday_names(
    country: str, subdivision: str | None, year: int, language: str | None
) -> Mapping[date, tuple[str, ...]]:
    table = holidays_lib.country_holidays(
        country, subdiv=subdivision, years=year, language=language
    )
    return {day: tuple(table.get_list(day)) for day in sorted(table)}


@lru_cache(maxsize=512)
def _closing_holidays(
    country: str, subdivision: str | None, year: int, open_on: frozenset[str]
) -> Mapping[date, str]:
    """The dates of `year` that close, each with its closing holidays' names (own language).

    A date closes unless every holiday on it is named (own language or English) in `open_on`.
    """
    own, english = holiday_languages(country)
    names = _holiday_names(country, subdivision, year, own)
    if not open_on:
        return {day: "; ".join(these) for day, these in names.items()}
    in_english = _holiday_names(country, subdivision, year, english) if english else {}
    closing: dict[date, str] = {}
    for day, these in names.items():
        alternates = in_english.get(day, ())
        if len(alternates) != len(these):
            alternates = ("",) * len(these)
        kept = [
            name
            for name, alt in zip(these, alternates, strict=True)
            if name.casefold() not in open_on and alt.casefold() not in open_on
        ]
        if kept:
            closing[day] = "; ".join(kept)
    return closing


# --- zone transitions -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _transitions(tz: ZoneInfo, year: int) -> tuple[float, ...]:
    """UTC timestamps in [1 Jan `year`, 1 Jan `year`+1) UTC at which `tz`'s offset changes.

    Sampled daily and refined by bisection to the second: zones change offset at most once a
    day. These are the only instants where the wall clock jumps, so the only places besides an
    interval's start where a closed number can become open.
    """
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    found: list[float] = []

    def offset(ts: int) -> timedelta | None:
        return datetime.fromtimestamp(ts, tz).utcoffset()

    lo, lo_offset = start, offset(start)
    while lo < end:
        hi = min(lo + SECONDS_PER_DAY, end)
        hi_offset = offset(hi)
        if hi_offset != lo_offset:
            a, b = lo, hi  # offset(a) == lo_offset != offset(b)
            while b - a > 1:
                mid = (a + b) // 2
                if offset(mid) == lo_offset:
                    a = mid
                else:
                    b = mid
            found.append(float(b))
        lo, lo_offset = hi, hi_offset
    return tuple(found)


# --- the compiled schedule ------------------------------------------------------------------


class CompiledSchedule:
    """A `ServiceHours` in one zone, flattened into integer tables for fast questions.

    Immutable after construction and safe to share between threads (its only caches are the
    module's `lru_cache`d holiday and transition tables). Every method raises ValueError for a
    naive datetime, or one outside years 2..9997.
    """

    __slots__ = (
        "_always_open",
        "_dated_ends",
        "_dated_rules",
        "_dated_starts",
        "_holidays",
        "_max_tail",
        "_never_opens",
        "_recurring",
        "_weekly",
        "tz",
    )

    def __init__(self, schedule: ServiceHours, tz: ZoneInfo) -> None:
        self.tz: Final = tz
        self._always_open = schedule.always_open
        self._weekly = tuple(
            _DayRule("weekly", _spans(schedule.weekly.get(day, ())))
            if schedule.weekly.get(day)
            else _DayRule("closed_day", ())
            for day in DAYS
        )
        dated = sorted(
            [
                (e.date.toordinal(), e.last_date.toordinal(), _exception_rule(e))
                for e in schedule.exceptions
                if not e.recurring
            ],
            key=lambda entry: entry[0],
        )
        self._dated_starts = [start for start, _, _ in dated]
        self._dated_ends = [end for _, end, _ in dated]
        self._dated_rules = [rule for _, _, rule in dated]
        self._recurring: dict[tuple[int, int], _DayRule] = {}
        for exception in schedule.exceptions:
            if exception.recurring:
                rule = _exception_rule(exception)
                self._recurring.update(dict.fromkeys(_month_days(exception), rule))
        self._holidays = _compile_holidays(schedule.holidays)
        rules = [*self._weekly, *self._dated_rules, *self._recurring.values()]
        # A time of day at or past every past-midnight tail needs no look at the day before.
        self._max_tail = max(
            (end - SECONDS_PER_DAY for rule in rules for _, end in rule.spans), default=0
        )
        self._never_opens = not any(rule.spans for rule in rules)

    # -- rules ---------------------------------------------------------------------------

    def _rule(self, day: date) -> _DayRule:
        """The rule deciding the intervals that start on local date `day`."""
        ordinal = day.toordinal()
        if self._dated_starts:
            i = bisect.bisect_right(self._dated_starts, ordinal) - 1
            if i >= 0 and ordinal <= self._dated_ends[i]:
                return self._dated_rules[i]
        if self._recurring:
            recurring = self._recurring.get((day.month, day.day))
            if recurring is not None:
                return recurring
        if self._holidays is not None:
            country, subdivision, open_on = self._holidays
            name = _closing_holidays(country, subdivision, day.year, open_on).get(day)
            if name is not None:
                return _DayRule("holiday", (), name)
        return self._weekly[day.weekday()]

    def _covering(self, local: datetime) -> _DayRule | None:
        """The rule whose interval covers the local wall time of `local`, if any."""
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        today = local.date()
        rule = self._rule(today)
        for start, end in rule.spans:
            if start <= seconds < end:
                return rule
        if seconds < self._max_tail:
            yesterday = self._rule(today - _ONE_DAY)
            seconds += SECONDS_PER_DAY
            for start, end in yesterday.spans:
                if start <= seconds < end:
                    return yesterday
        return None

    def _local(self, instant: datetime) -> datetime:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("instant must be timezone-aware (naive datetimes are refused)")
        if not _FIRST_YEAR <= instant.year <= _LAST_YEAR:
            # A year of search (and a day either side) must fit in datetime's range.
            raise ValueError(f"instant must be in years {_FIRST_YEAR}..{_LAST_YEAR}")
        return instant.astimezone(self.tz)

    # -- questions -----------------------------------------------------------------------

    def is_open(self, instant: datetime) -> bool:
        """Whether the number is open at `instant` (aware; any zone)."""
        local = self._local(instant)
        return self._always_open or self._covering(local) is not None

    def next_opening(self, instant: datetime) -> datetime | None:
        """The first instant at or after `instant` when the number is open; `instant` itself
        when open now; None when not within a year. The result carries the number's UTC offset
        at that instant as a fixed-offset tzinfo (see `_fixed`), so it compares equal to the
        same instant in any zone and prints as the local time (`2026-12-21T13:00:00-03:00`)."""
        local = self._local(instant)
        if self._always_open or self._covering(local) is not None:
            return _fixed(local)
        if self._never_opens:
            return None
        t0 = instant.timestamp()
        limit = (instant + HORIZON).timestamp()
        best = self._first_start(local, t0, limit)
        bound = limit if best is None else best
        jump = self._first_open_transition(t0, bound)
        if jump is not None:
            best = jump
        if best is None:
            return None
        return _fixed(datetime.fromtimestamp(best, self.tz))

    def explain(self, instant: datetime) -> Explanation:
        """Which rule decided, with the label or holiday name, and the next opening."""
        local = self._local(instant)
        if self._always_open:
            return Explanation(True, "always_open", None, _fixed(local))
        covering = self._covering(local)
        if covering is not None:
            return Explanation(True, covering.reason, covering.label, _fixed(local))
        rule = self._rule(local.date())
        return Explanation(False, rule.reason, rule.label, self.next_opening(instant))

    # -- search --------------------------------------------------------------------------

    def _first_start(self, local: datetime, t0: float, limit: float) -> float | None:
        """The earliest open interval start (as a UTC timestamp) in [t0, limit].

        Walks local dates from the day before `local`'s (a fall-back at midnight can repeat
        its last hour) and stops one date after the first hit: a later date's starts are at
        least a day of wall clock later, more than any offset change.
        """
        best: float | None = None
        day = local.date() - _ONE_DAY
        last = (local + HORIZON).date() + _ONE_DAY
        stop: date | None = None
        while day <= last and (stop is None or day <= stop):
            midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
            for start, _ in self._rule(day).spans:
                for ts in self._wall_instants(midnight + timedelta(seconds=start)):
                    # An existing wall time at an interval's start is open by construction.
                    if t0 <= ts <= limit and (best is None or ts < best):
                        best = ts
            if best is not None and stop is None:
                stop = day + _ONE_DAY
            day += _ONE_DAY
        return best

    def _wall_instants(self, wall: datetime) -> tuple[float, ...]:
        """The instants showing wall time `wall`: none in a gap, two in a repeated hour."""
        first = wall.timestamp()
        second = wall.replace(fold=1).timestamp()
        if first == second:
            return (first,)
        naive = wall.replace(tzinfo=None)
        return tuple(
            ts
            for ts in (first, second)
            if datetime.fromtimestamp(ts, self.tz).replace(tzinfo=None) == naive
        )

    def _first_open_transition(self, t0: float, bound: float) -> float | None:
        """The earliest offset change in [t0, bound] after which the number is open: the wall
        clock jumped into an interval (the end of a gap, or back into a repeated hour)."""
        year = datetime.fromtimestamp(t0, UTC).year
        last_year = datetime.fromtimestamp(bound, UTC).year
        while year <= last_year:
            for ts in _transitions(self.tz, year):
                if ts > bound:
                    return None
                if ts >= t0 and self._open_at(ts):
                    return ts
            year += 1
        return None

    def _open_at(self, ts: float) -> bool:
        return self._covering(datetime.fromtimestamp(ts, self.tz)) is not None


def _fixed(local: datetime) -> datetime:
    """`local` with a fixed-offset tzinfo of its current offset (same instant, same ISO text).

    Why not the ZoneInfo itself: by PEP 495 an aware datetime inside a repeated (fall-back)
    hour never compares equal to a datetime of another tzinfo, so `next_opening(...) == at`
    would be False for a correct answer. A fixed offset compares as the instant it is.
    """
    return local.replace(tzinfo=timezone(local.utcoffset() or timedelta(0)), fold=0)


def _month_days(exception: DateException) -> list[tuple[int, int]]:
    """(month, day) pairs a recurring exception covers; a range may wrap the year end. Walked
    in a leap year so that 29 February is included when the range spans it."""
    first = date(2000, exception.date.month, exception.date.day)
    last_date = exception.last_date
    last = date(2000, last_date.month, last_date.day)
    if last < first:  # wraps the year end: first..31 Dec, then 1 Jan..last
        days = [*_walk(first, date(2000, 12, 31)), *_walk(date(2000, 1, 1), last)]
    else:
        days = _walk(first, last)
    return [(d.month, d.day) for d in days]


def _walk(first: date, last: date) -> list[date]:
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def _compile_holidays(rule: HolidayRule | None) -> tuple[str, str | None, frozenset[str]] | None:
    if rule is None:
        return None
    return rule.country, rule.subdivision, frozenset(name.casefold() for name in rule.open_on)


# --- module-level API -----------------------------------------------------------------------

_COMPILED_MAX: Final = 1024
_compiled: dict[tuple[int, str], tuple[ServiceHours, CompiledSchedule]] = {}
_compiled_lock = threading.Lock()


def compile_schedule(schedule: ServiceHours, tz: ZoneInfo) -> CompiledSchedule:
    """The compiled form of `schedule` in `tz`, memoised per schedule object and zone.

    `ServiceHours` is frozen, so the object's identity is a sound key; the cache holds the
    object itself so its id cannot be reused while cached. Oldest entries go first.
    """
    key = (id(schedule), tz.key)
    hit = _compiled.get(key)
    if hit is not None and hit[0] is schedule:
        return hit[1]
    compiled = CompiledSchedule(schedule, tz)
    with _compiled_lock:
        if len(_compiled) >= _COMPILED_MAX:
            del _compiled[next(iter(_compiled))]
        _compiled[key] = (schedule, compiled)
    return compiled


def is_open(schedule: ServiceHours, tz: ZoneInfo, instant: datetime) -> bool:
    """Whether `schedule` in zone `tz` is open at the aware `instant`. ValueError if naive."""
    return compile_schedule(schedule, tz).is_open(instant)


def next_opening(schedule: ServiceHours, tz: ZoneInfo, instant: datetime) -> datetime | None:
    """The first instant at or after `instant` when open, `instant` itself when open, None when
    it does not open within 366 days; with the number's offset at that instant as a fixed-offset
    tzinfo (equal to the same instant in any zone). Raises ValueError for a naive `instant`."""
    return compile_schedule(schedule, tz).next_opening(instant)


def explain(schedule: ServiceHours, tz: ZoneInfo, instant: datetime) -> Explanation:
    """Whether open at `instant`, which rule decided, and the next opening. ValueError if naive."""
    return compile_schedule(schedule, tz).explain(instant)
