"""Business time (bot.domain.monitoring.business_seconds) and "today" (day_start), checked against
brute force over random schedules, zones with daylight saving and odd offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.config import NumberConfig
from bot.domain.hours import compile_schedule
from bot.domain.monitoring import business_ms, business_seconds, day_start
from bot.domain.schedule import DAYS, ServiceHours

# Daylight saving at midnight (São Paulo until 2019), at 01:00 UTC (Lisbon), a 30-minute shift
# (Lord Howe), a quarter-hour offset (Kathmandu), and none (UTC).
ZONES = ["America/Sao_Paulo", "Europe/Lisbon", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
# Around the transitions: São Paulo's 2018 spring-forward (4 Nov) and fall-back (17 Feb 2019),
# Lisbon's and Lord Howe's of 2026.
STARTS = [
    datetime(2018, 11, 2, tzinfo=UTC),
    datetime(2019, 2, 15, tzinfo=UTC),
    datetime(2026, 3, 27, tzinfo=UTC),
    datetime(2026, 10, 23, tzinfo=UTC),
    datetime(2026, 4, 3, tzinfo=UTC),
]


def hhmm(minute: int) -> str:
    return "24:00" if minute == 1440 else f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def schedules(draw: st.DrawFn) -> ServiceHours:
    weekly: dict[str, Any] = {}
    for day in DAYS:
        points = sorted(draw(st.sets(st.integers(0, 1440), min_size=2, max_size=4)))
        if len(points) % 2:
            points = points[:-1]
        if points:
            weekly[day] = [
                {"start": hhmm(a), "end": hhmm(b)}
                for a, b in zip(points[::2], points[1::2], strict=True)
            ]
    if draw(st.booleans()) and all(p["start"] >= "02:00" for p in weekly.get("sun", [])):
        # Past midnight into Sunday, which has nothing before 02:00.
        weekly["sat"] = [{"start": "23:00", "end": "02:00"}]
    exceptions = []
    if draw(st.booleans()):
        start = draw(st.sampled_from(STARTS)).date() + timedelta(days=draw(st.integers(0, 3)))
        exceptions.append(
            {"date": start.isoformat(), "hours": [{"start": "10:15", "end": "11:45"}]}
        )
    return ServiceHours.model_validate({"weekly": weekly, "exceptions": exceptions})


def brute_force(hours: ServiceHours, zone: ZoneInfo, start: datetime, end: datetime) -> float:
    """Minute by minute: open or closed is constant within a UTC minute (schedules change on
    whole local minutes, offsets are whole minutes)."""
    compiled = compile_schedule(hours, zone)
    total = 0.0
    t = start.replace(second=0, microsecond=0)
    while t < end:
        nxt = t + timedelta(minutes=1)
        if compiled.is_open(t):
            total += (min(nxt, end) - max(t, start)).total_seconds()
        t = nxt
    return total


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hours=schedules(),
    zone=st.sampled_from(ZONES),
    base=st.sampled_from(STARTS),
    offset_s=st.integers(0, 4 * 86_400),
    length_s=st.integers(3600, 2 * 86_400),
)
def test_business_time_equals_the_minute_by_minute_count(
    hours: ServiceHours, zone: str, base: datetime, offset_s: int, length_s: int
) -> None:
    tz = ZoneInfo(zone)
    start = base + timedelta(seconds=offset_s)
    end = start + timedelta(seconds=length_s)
    assert business_seconds(hours, tz, start, end) == brute_force(hours, tz, start, end)


@settings(max_examples=60, deadline=None)
@given(
    hours=schedules(),
    zone=st.sampled_from(ZONES),
    base=st.sampled_from(STARTS),
    cuts=st.lists(st.integers(0, 10 * 86_400), min_size=3, max_size=3),
)
def test_business_time_adds_up_and_never_exceeds_the_wall_clock(
    hours: ServiceHours, zone: str, base: datetime, cuts: list[int]
) -> None:
    tz = ZoneInfo(zone)
    a, b, c = (base + timedelta(seconds=s) for s in sorted(cuts))
    whole = business_seconds(hours, tz, a, c)
    assert whole == business_seconds(hours, tz, a, b) + business_seconds(hours, tz, b, c)
    assert 0 <= whole <= (c - a).total_seconds()
    assert business_seconds(hours, tz, c, a) == 0


def test_lunch_break_and_evening_are_not_business_time() -> None:
    hours = ServiceHours.model_validate(
        {
            "weekly": {
                "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
            }
        }
    )
    tz = ZoneInfo("America/Sao_Paulo")
    # Monday 11:50 to 13:10 local: 10 + 10 minutes.
    start = datetime(2026, 3, 2, 14, 50, tzinfo=UTC)
    assert business_seconds(hours, tz, start, start + timedelta(minutes=80)) == 20 * 60
    # Friday evening to Monday 09:30: the weekend counts nothing.
    friday = datetime(2026, 2, 27, 21, tzinfo=UTC)
    assert business_seconds(hours, tz, friday, datetime(2026, 3, 2, 12, 30, tzinfo=UTC)) == 30 * 60


def test_always_open_and_unknown_numbers_count_the_wall_clock() -> None:
    start = datetime(2026, 3, 2, 1, tzinfo=UTC)
    end = start + timedelta(hours=30)
    always = ServiceHours(always_open=True)
    assert business_seconds(always, ZoneInfo("UTC"), start, end) == 30 * 3600
    assert business_ms(None, start, end) == 30 * 3600 * 1000
    assert business_ms(None, None, end) == 0
    config = NumberConfig.model_validate({"timezone": "UTC", "service_hours": {}})
    assert business_ms(config, start, end) == 0  # never open


@settings(max_examples=100, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    base=st.sampled_from(STARTS),
    offset_s=st.integers(0, 10 * 86_400),
)
def test_today_starts_at_the_zones_own_midnight(zone: str, base: datetime, offset_s: int) -> None:
    tz = ZoneInfo(zone)
    now = base + timedelta(seconds=offset_s)
    start = day_start(tz, now)
    today: date = now.astimezone(tz).date()
    assert start <= now
    assert start.astimezone(tz).date() == today
    assert (start - timedelta(seconds=1)).astimezone(tz).date() < today
