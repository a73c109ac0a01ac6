"""bot.domain.schedule: the service_hours model accepts API.md's example and names the field of
every
error the way the admin API answers 422 (`weekly.mon[0].end`)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bot.domain.schedule import ServiceHours, field_path, holiday_names, validate_timezone

EXAMPLE: dict[str, Any] = {
    "always_open": False,
    "weekly": {
        "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
        "sat": [{"start": "22:00", "end": "02:00"}],
    },
    "exceptions": [
        {"date": "2026-12-25", "closed": True},
        {"date": "2026-12-24", "hours": [{"start": "09:00", "end": "12:00"}], "recurring": True},
        {"date": "2027-01-02", "end_date": "2027-01-05", "closed": True, "label": "inventory"},
    ],
    "holidays": {"country": "BR", "subdivision": "SP"},
}


class _Settings(BaseModel):
    """The shape the admin API nests the model in, so paths are checked with their prefix."""

    service_hours: ServiceHours


def _fields(patch: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _Settings.model_validate({"service_hours": patch})
    return [field_path(error["loc"]) for error in caught.value.errors()]


def _example(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    data.update(changes)
    return data


def test_api_example_round_trips_through_json() -> None:
    hours = ServiceHours.model_validate(EXAMPLE)
    again = ServiceHours.model_validate_json(hours.model_dump_json())
    assert again == hours
    assert hours.weekly["sat"][0].end_minute == 26 * 60  # past midnight: 02:00 the next day
    assert hours.exceptions[2].last_date.isoformat() == "2027-01-05"


def test_null_means_absent() -> None:
    hours = ServiceHours.model_validate(
        {"always_open": None, "weekly": {"mon": None}, "exceptions": None, "holidays": None}
    )
    assert hours == ServiceHours()
    assert hours.intervals_on(0) == ()


def test_empty_weekly_is_valid_and_models_are_frozen() -> None:
    hours = ServiceHours.model_validate({"weekly": {}})
    with pytest.raises(ValidationError):
        hours.always_open = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        # malformed and out-of-range times
        (lambda d: d["weekly"]["mon"][0].update(end="25:00"), "service_hours.weekly.mon[0].end"),
        (lambda d: d["weekly"]["mon"][0].update(end="9:00"), "service_hours.weekly.mon[0].end"),
        (
            lambda d: d["weekly"]["mon"][1].update(start="24:00"),
            "service_hours.weekly.mon[1].start",
        ),
        (
            lambda d: d["weekly"]["mon"][0].update(start="09:60"),
            "service_hours.weekly.mon[0].start",
        ),
        # end equal to start, including 00:00 vs 24:00
        (lambda d: d["weekly"]["mon"][0].update(end="09:00"), "service_hours.weekly.mon[0].end"),
        (
            lambda d: d["weekly"].update(tue=[{"start": "00:00", "end": "00:00"}]),
            "service_hours.weekly.tue[0].end",
        ),
        # overlaps name the later interval (by start), wherever it sits in the list
        (
            lambda d: d["weekly"]["mon"].append({"start": "11:00", "end": "12:30"}),
            "service_hours.weekly.mon[2]",
        ),
        (
            lambda d: d["weekly"]["mon"].insert(0, {"start": "17:00", "end": "19:00"}),
            "service_hours.weekly.mon[0]",
        ),
        (
            lambda d: d["weekly"]["sat"].append({"start": "23:00", "end": "23:30"}),
            "service_hours.weekly.sat[1]",
        ),
        # a past-midnight tail overlapping the next day's intervals (sat wraps into sun)
        (
            lambda d: d["weekly"].update(sun=[{"start": "01:00", "end": "03:00"}]),
            "service_hours.weekly.sun[0]",
        ),
        (lambda d: d["weekly"].update(xyz=[]), "service_hours.weekly.xyz"),
        (lambda d: d["weekly"]["mon"][0].update(until="x"), "service_hours.weekly.mon[0].until"),
        # exceptions
        (
            lambda d: d["exceptions"][2].update(end_date="2027-01-01"),
            "service_hours.exceptions[2].end_date",
        ),
        (
            lambda d: d["exceptions"][0].update(date="2026-13-01"),
            "service_hours.exceptions[0].date",
        ),
        (lambda d: d["exceptions"][0].update(hours=[]), "service_hours.exceptions[0].hours"),
        (lambda d: d["exceptions"][0].update(closed=False), "service_hours.exceptions[0]"),
        (
            lambda d: d["exceptions"][1]["hours"].append({"start": "10:00", "end": "11:00"}),
            "service_hours.exceptions[1].hours[1]",
        ),
        (
            lambda d: d["exceptions"].append({"date": "2027-01-04", "closed": True}),
            "service_hours.exceptions[3].date",
        ),
        (
            lambda d: d["exceptions"].append(
                {"date": "2030-12-23", "end_date": "2030-12-24", "closed": True, "recurring": True}
            ),
            "service_hours.exceptions[3].date",
        ),
        # holidays
        (lambda d: d["holidays"].update(country="XX"), "service_hours.holidays.country"),
        (lambda d: d["holidays"].update(subdivision="ZZ"), "service_hours.holidays.subdivision"),
        (
            lambda d: d["holidays"].update(open_on=["Natal", "Not a holiday"]),
            "service_hours.holidays.open_on[1]",
        ),
        (lambda d: d.update(always_open="sometimes"), "service_hours.always_open"),
        (lambda d: d.update(timezone="UTC"), "service_hours.timezone"),
    ],
)
def test_each_error_names_its_field(mutate: Any, field: str) -> None:
    data = copy.deepcopy(EXAMPLE)
    mutate(data)
    assert _fields(data) == [field]


def test_whole_day_and_midnight_ends_are_valid() -> None:
    data = _example(weekly={
        "tue": [{"start": "00:00", "end": "24:00"}],
        "wed": [{"start": "20:00", "end": "00:00"}],  # runs to midnight: the same as 24:00
    })  # fmt: skip
    hours = ServiceHours.model_validate(data)
    assert hours.weekly["tue"][0].end_minute == hours.weekly["wed"][0].end_minute == 1440


def test_a_dated_exception_may_cover_a_recurring_one() -> None:
    data = _example()
    data["exceptions"].append({"date": "2027-12-24", "closed": True, "label": "stocktake"})
    assert len(ServiceHours.model_validate(data).exceptions) == 4


def test_recurring_range_may_wrap_the_year_end() -> None:
    data = _example(exceptions=[
        {"date": "2026-12-31", "end_date": "2027-01-02", "closed": True, "recurring": True},
    ])  # fmt: skip
    assert ServiceHours.model_validate(data).exceptions[0].recurring


def test_open_on_accepts_own_language_and_english_names_case_insensitively() -> None:
    data = _example(holidays={"country": "BR", "open_on": ["natal", "Good Friday"]})
    assert ServiceHours.model_validate(data).holidays is not None
    assert {"natal", "christmas day", "sexta-feira santa"} <= holiday_names("BR", None)


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("weekly", "mon", 0, "end"), "weekly.mon[0].end"),
        (("weekly", "xyz", "[key]"), "weekly.xyz"),
        (("exceptions", 2, "end_date"), "exceptions[2].end_date"),
        (("holidays",), "holidays"),
        ((), ""),
    ],
)
def test_field_path(loc: tuple[int | str, ...], path: str) -> None:
    assert field_path(loc) == path


@pytest.mark.parametrize("name", ["America/Sao_Paulo", "UTC", "Australia/Lord_Howe"])
def test_validate_timezone_accepts_iana_names(name: str) -> None:
    assert validate_timezone(name) == name


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "localtime", "utc+3"])
def test_validate_timezone_refuses_the_rest(name: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        validate_timezone(name)
