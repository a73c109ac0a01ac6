"""The `service_hours` of a number: the validated model of the JSON in API.md, and nothing else.

This module is a leaf: it imports no other deskline module and does no I/O beyond reading the
zone and holiday tables shipped with Python, `tzdata` and `holidays`. The engine that answers
"is it open now?" lives in `bot.domain.hours`; this module only guarantees that what reaches it is
sane.

Every model is frozen and forbids unknown keys. Every rule breaks as a pydantic
`ValidationError` whose `loc` points at the deepest field that is wrong, so the admin API can
answer 422 with `field_path(error["loc"])` (`weekly.mon[0].end`). `null` means the same as an
absent field everywhere.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from typing import Any, Final, Literal, Self

import holidays as holidays_lib
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ValidationInfo

__all__ = [
    "DAYS",
    "DateException",
    "Day",
    "HolidayRule",
    "Interval",
    "ServiceHours",
    "field_path",
    "holiday_languages",
    "holiday_names",
    "validate_timezone",
]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Index = date.weekday(): Monday is 0.
DAYS: Final[tuple[Day, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY: Final = 24 * 60

_HHMM = re.compile(r"(?P<h>[01]\d|2[0-3]):(?P<m>[0-5]\d)")
# Years whose holiday names are accepted in `open_on`: wide enough for holidays created or
# renamed recently, narrow enough to build in a few milliseconds (once per country/subdivision).
_NAME_YEARS: Final = range(2015, 2041)


def field_path(loc: Sequence[int | str]) -> str:
    """Turn a pydantic error `loc` into the API's field form: `("weekly", "mon", 0, "end")` →
    `weekly.mon[0].end`. Dict-key markers (`[key]`, used when the key itself is invalid) are
    dropped, so an unknown day reads `weekly.xyz`."""
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@cache
def _zone_names() -> frozenset[str]:
    # `localtime` and `posixrules` are aliases of whatever the machine is set to: refused, since
    # the machine's zone must never leak into a number's hours.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules"})


def validate_timezone(name: str) -> str:
    """Return `name` unchanged if it is an IANA zone name this machine can load.

    Raises ValueError otherwise (so it can sit in a pydantic validator). Names are checked
    against the zone list rather than merely loaded, so that paths and `localtime` are refused.
    """
    if name not in _zone_names():
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as America/Sao_Paulo")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


@lru_cache(maxsize=4096)  # a few hundred distinct times in practice; parsed on every compile
def _parse_hhmm(value: str, *, allow_24: bool) -> int:
    if allow_24 and value == "24:00":
        return MINUTES_PER_DAY
    match = _HHMM.fullmatch(value)
    if match is None:
        expected = "00:00 to 24:00" if allow_24 else "00:00 to 23:59"
        raise _invalid("time", f"time must be HH:MM, {expected}; got {value!r}")
    return int(match["h"]) * 60 + int(match["m"])


def _none_as_default(value: Any, default: Any) -> Any:
    return default if value is None else value


class Interval(BaseModel):
    """`[start, end)` in the local wall clock. `end` may be `24:00`; an `end` before `start`
    runs past midnight, and the interval belongs to the day it starts on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: str
    end: str

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        _parse_hhmm(value, allow_24=False)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str, info: ValidationInfo) -> str:
        end = _parse_hhmm(value, allow_24=True)
        start = info.data.get("start")
        if start is not None and _parse_hhmm(start, allow_24=False) == end:
            raise _invalid(
                "empty_interval", "end must differ from start (use 00:00-24:00 for a whole day)"
            )
        return value

    @property
    def start_minute(self) -> int:
        """Minutes after the start of the day the interval starts on (0..1439)."""
        return _parse_hhmm(self.start, allow_24=False)

    @property
    def end_minute(self) -> int:
        """Minutes after the start of the *starting* day: above 1440 for past-midnight ends."""
        end = _parse_hhmm(self.end, allow_24=True)
        return end if end > self.start_minute else end + MINUTES_PER_DAY

    @property
    def crosses_midnight(self) -> bool:
        return self.end_minute > MINUTES_PER_DAY


def _first_overlap(intervals: Sequence[Interval]) -> tuple[int, int] | None:
    """(later, earlier) indices of the first pair of overlapping intervals, ordered by start."""
    order = sorted(range(len(intervals)), key=lambda i: intervals[i].start_minute)
    for prev, cur in itertools.pairwise(order):
        if intervals[cur].start_minute < intervals[prev].end_minute:
            return (cur, prev)
    return None


def _invalid(code: str, message: str) -> PydanticCustomError:
    # The message goes in through the context so that braces in user input are not a template.
    return PydanticCustomError(code, "{detail}", {"detail": message})


def _error(loc: tuple[int | str, ...], code: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=_invalid(code, message), loc=loc, input=value)


def _raise(title: str, errors: list[InitErrorDetails]) -> None:
    """Raise `errors` (if any) as one ValidationError. Its locs are relative to the validated
    value, and pydantic prefixes them with the path to it, so they stay as deep as given."""
    if errors:
        raise ValidationError.from_exception_data(title, errors)


def _same_day_overlaps(
    intervals: Sequence[Interval], loc: tuple[int | str, ...]
) -> list[InitErrorDetails]:
    pair = _first_overlap(intervals)
    if pair is None:
        return []
    later, earlier = pair
    other = intervals[earlier]
    return [
        _error(
            (*loc, later),
            "overlap",
            f"overlaps the interval {other.start}-{other.end} at index {earlier}",
            intervals[later].model_dump(),
        )
    ]


class DateException(BaseModel):
    """One date (or `date`..`end_date` inclusive) that is closed or has replacement hours.

    Exactly one of `closed: true` or `hours` is given (`hours: []` is also a closed day).
    The exception replaces the intervals that START on its dates; a past-midnight interval
    of the day before still runs into it. `recurring` repeats the same month/day every year
    (a 29 February only in leap years; a range may wrap the year end).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: dt.date
    end_date: dt.date | None = None
    closed: bool = False
    hours: tuple[Interval, ...] | None = None
    recurring: bool = False
    label: str | None = None

    @field_validator("closed", "recurring", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return _none_as_default(value, False)

    @field_validator("end_date")
    @classmethod
    def _check_range(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("date")
        if value is not None and start is not None and value < start:
            raise _invalid("range_order", f"end_date {value} is before date {start}")
        return value

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, value: tuple[Interval, ...] | None) -> tuple[Interval, ...] | None:
        if value is not None:
            _raise("hours", _same_day_overlaps(value, ()))
        return value

    @model_validator(mode="after")
    def _closed_xor_hours(self) -> Self:
        if self.closed and self.hours is not None:
            message = "give either closed: true or hours, not both"
            _raise("DateException", [_error(("hours",), "closed_and_hours", message, None)])
        if not self.closed and self.hours is None:
            raise _invalid("closed_or_hours", "give either closed: true or hours")
        if self.recurring and self.end_date is not None and (self.end_date - self.date).days > 365:
            message = "a recurring range spans at most one year"
            _raise("DateException", [_error(("end_date",), "range_too_long", message, None)])
        return self

    @property
    def last_date(self) -> dt.date:
        return self.end_date or self.date


@cache
def _known_holiday_names(country: str, subdivision: str | None) -> frozenset[str]:
    names: set[str] = set()
    own, english = holiday_languages(country)
    for language in (own, english) if english else (own,):
        table = holidays_lib.country_holidays(
            country, subdiv=subdivision, years=_NAME_YEARS, language=language
        )
        for day in table:
            names.update(name.casefold() for name in table.get_list(day))
    return frozenset(names)


@cache
def holiday_languages(country: str) -> tuple[str | None, str | None]:
    """(the country's own language, English when available and different) for `holidays`.

    Always pass one of these explicitly: with `language=None` the `holidays` package follows
    the process locale, and the machine must never change an answer.
    """
    cls = type(holidays_lib.country_holidays(country))
    supported: tuple[str, ...] = tuple(getattr(cls, "supported_languages", ()))
    own: str | None = getattr(cls, "default_language", None)
    if own is None and "en_US" in supported:
        own = "en_US"
    english = "en_US" if "en_US" in supported and own != "en_US" else None
    return own, english


def holiday_names(country: str, subdivision: str | None) -> frozenset[str]:
    """Every holiday name (casefolded) of a country/subdivision in 2015..2040, in the country's
    own language and in English: the names `HolidayRule.open_on` may use."""
    return _known_holiday_names(country, subdivision)


class HolidayRule(BaseModel):
    """Close on the public holidays of `country` (ISO 3166-1 alpha-2, as the `holidays` package
    knows it) and optionally `subdivision` (its code, e.g. `SP`).

    `open_on` switches the closing off for the named holidays: names in the country's own
    language or in English, compared case-insensitively (`["Tiradentes"]`, `["Good Friday"]`).
    Only public holidays close, so optional ones (Carnaval in BR) are not accepted here.
    A date closes when at least one of its holidays is not switched off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str
    subdivision: str | None = None
    open_on: tuple[str, ...] = ()

    @field_validator("open_on", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return _none_as_default(value, ())

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        if value not in holidays_lib.list_supported_countries():
            raise _invalid(
                "country", f"unknown or unsupported country {value!r}; use an ISO code like BR"
            )
        return value

    @field_validator("subdivision")
    @classmethod
    def _check_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if value is None or country is None:
            return value
        try:
            holidays_lib.country_holidays(country, subdiv=value)
        except NotImplementedError as exc:
            raise _invalid("subdivision", f"{country} has no subdivision {value!r}") from exc
        return value

    @field_validator("open_on")
    @classmethod
    def _check_open_on(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        country = info.data.get("country")
        if not value or country is None or "subdivision" not in info.data:
            return value
        known = holiday_names(country, info.data["subdivision"])
        _raise(
            "open_on",
            [
                _error((i,), "unknown_holiday", f"{country} has no holiday named {name!r}", name)
                for i, name in enumerate(value)
                if name.casefold() not in known
            ],
        )
        return value


def _tail_overlaps(weekly: Mapping[Day, Sequence[Interval]]) -> list[InitErrorDetails]:
    """A past-midnight tail must not overlap the intervals that start on the next day."""
    errors: list[InitErrorDetails] = []
    for index, day in enumerate(DAYS):
        following = DAYS[(index + 1) % 7]
        for prev in weekly.get(day, ()):
            tail_end = prev.end_minute - MINUTES_PER_DAY
            if tail_end <= 0:
                continue
            for j, nxt in enumerate(weekly.get(following, ())):
                if nxt.start_minute < tail_end:
                    errors.append(
                        _error(
                            (following, j),
                            "overlap",
                            f"overlaps the past-midnight end of {day} {prev.start}-{prev.end}",
                            nxt.model_dump(),
                        )
                    )
    return errors


def _recurring_days(exception: DateException) -> set[tuple[int, int]]:
    """(month, day) pairs covered by a recurring exception, in a leap year to include 29 Feb."""
    start = dt.date(2000, exception.date.month, exception.date.day)
    last = exception.last_date
    span = (last - exception.date).days
    return {
        ((start + dt.timedelta(days=k)).month, (start + dt.timedelta(days=k)).day)
        for k in range(span + 1)
    }


def _exception_conflicts(exceptions: Sequence[DateException]) -> list[InitErrorDetails]:
    """Two exceptions of the same kind (dated / recurring) may not cover the same date: which
    one applies would be a guess. A dated exception over a recurring one is fine: it wins."""
    errors: list[InitErrorDetails] = []
    dated: list[tuple[int, DateException]] = []
    recurring_seen: dict[tuple[int, int], int] = {}
    for i, exc in enumerate(exceptions):
        if exc.recurring:
            days = _recurring_days(exc)
            clash = next((recurring_seen[d] for d in sorted(days) if d in recurring_seen), None)
            if clash is not None:
                errors.append(
                    _error(
                        (i, "date"),
                        "overlap",
                        f"covers a date of exceptions[{clash}] too",
                        str(exc.date),
                    )
                )
                continue
            recurring_seen.update(dict.fromkeys(days, i))
        else:
            clash = next(
                (
                    j
                    for j, other in dated
                    if exc.date <= other.last_date and other.date <= exc.last_date
                ),
                None,
            )
            if clash is not None:
                errors.append(
                    _error(
                        (i, "date"),
                        "overlap",
                        f"covers a date of exceptions[{clash}] too",
                        str(exc.date),
                    )
                )
                continue
            dated.append((i, exc))
    return errors


class ServiceHours(BaseModel):
    """A number's `service_hours`, exactly the JSON shape of API.md.

    A day absent from `weekly` is closed (`{}` with `always_open: false` is always closed).
    Precedence when deciding a date: dated exception > recurring exception > holiday > weekly.
    `always_open: true` overrides everything else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    always_open: bool = False
    weekly: dict[Day, tuple[Interval, ...]] = {}  # pydantic copies defaults
    exceptions: tuple[DateException, ...] = ()
    holidays: HolidayRule | None = None

    @field_validator("always_open", mode="before")
    @classmethod
    def _null_is_false(cls, value: Any) -> Any:
        return _none_as_default(value, False)

    @field_validator("exceptions", mode="before")
    @classmethod
    def _null_is_no_exceptions(cls, value: Any) -> Any:
        return _none_as_default(value, ())

    @field_validator("weekly", mode="before")
    @classmethod
    def _null_is_closed(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, Mapping):
            return {day: v for day, v in value.items() if v is not None}
        return value

    @field_validator("weekly")
    @classmethod
    def _check_weekly(
        cls, value: dict[Day, tuple[Interval, ...]]
    ) -> dict[Day, tuple[Interval, ...]]:
        errors: list[InitErrorDetails] = []
        for day, intervals in value.items():
            errors += _same_day_overlaps(intervals, (day,))
        if not errors:
            errors = _tail_overlaps(value)
        _raise("weekly", errors)
        return value

    @field_validator("exceptions")
    @classmethod
    def _check_exceptions(cls, value: tuple[DateException, ...]) -> tuple[DateException, ...]:
        _raise("exceptions", _exception_conflicts(value))
        return value

    def intervals_on(self, weekday: int) -> tuple[Interval, ...]:
        """The weekly intervals starting on `weekday` (0 = Monday)."""
        return self.weekly.get(DAYS[weekday], ())
