"""The settings forms (pure): form ⇄ merge patch, error placement, the week chart, and the
queue-over-the-day series of the monitoring page."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.config import NumberView, merge_patch, parse_config, strip_nulls
from bot.domain.schedule import DAYS
from bot.domain.tickets import TicketEvent
from handlers.console.forms import (
    HoursForm,
    IntervalRow,
    aware_or_text,
    error_target,
    minimal_patch,
    parse_intervals,
    path_prefixes,
    week_bars,
)
from handlers.console.monitoring import BUCKET, queue_changes, queue_series

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def test_path_prefixes_walk_up_the_groups() -> None:
    assert list(path_prefixes("service_hours.weekly.mon[1].end")) == [
        "service_hours.weekly.mon[1].end",
        "service_hours.weekly.mon[1]",
        "service_hours.weekly.mon",
        "service_hours.weekly",
        "service_hours",
    ]


segments = st.lists(
    st.one_of(
        st.sampled_from(["a", "b", "weekly", "mon"]), st.integers(0, 3).map(lambda i: f"[{i}]")
    ),
    min_size=1,
    max_size=5,
).filter(lambda s: not s[0].startswith("["))


def _join(parts: list[str]) -> str:
    return "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(parts))


@given(path=segments, known=st.lists(segments, max_size=8))
def test_the_error_goes_to_the_deepest_rendered_field_containing_it(
    path: list[str], known: list[list[str]]
) -> None:
    names = {_join(k) for k in known}
    target = error_target(_join(path), names)
    containing = [p for p in path_prefixes(_join(path)) if p in names]
    if not containing:
        assert target is None
    else:
        assert target == max(containing, key=len)


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["x", "y"]))
json_doc = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=8,
)
docs = st.dictionaries(st.sampled_from("abcd"), json_doc, max_size=4)


@given(old=docs, new=docs)
def test_the_minimal_patch_changes_a_document_as_the_whole_patch_would(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    # A stored document holds no null (null means absent): strip_nulls, as storage does.
    old = strip_nulls(old)
    small = minimal_patch(new, old)
    assert merge_patch(old, small) == merge_patch(old, new)
    assert minimal_patch(old, old) == {}


def test_a_blank_message_resets_to_the_default_and_untouched_defaults_stay_unset() -> None:
    old = {"after_hours": {"message": "Olá!", "notify_next_service_hour": False}}
    new = {"after_hours": {"message": None, "notify_next_service_hour": False}}
    assert minimal_patch(new, old) == {"after_hours": {"message": None}}


def test_exception_hours_read_as_typed() -> None:
    assert parse_intervals("09:00-12:00, 13:00 – 15:00;") == [
        {"start": "09:00", "end": "12:00"},
        {"start": "13:00", "end": "15:00"},
    ]
    # Something unreadable goes through for the API to name it.
    assert parse_intervals("9h") == [{"start": "9h", "end": ""}]


def test_datetime_local_is_read_in_the_number_s_zone() -> None:
    assert aware_or_text("2026-12-01T08:00", SAO_PAULO) == "2026-12-01T08:00:00-03:00"
    assert aware_or_text("", SAO_PAULO) is None
    assert aware_or_text("tomorrow", SAO_PAULO) == "tomorrow"


times = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])).map(
    lambda t: f"{t[0]:02d}:{t[1]:02d}"
)
intervals = st.tuples(times, st.one_of(times, st.just("24:00"))).filter(lambda p: p[0] != p[1])


def _minutes(start: str, end: str) -> int:
    s = int(start[:2]) * 60 + int(start[3:])
    e = int(end[:2]) * 60 + int(end[3:])
    return e - s if e > s else e + 1440 - s


@given(week=st.dictionaries(st.sampled_from(DAYS), st.lists(intervals, max_size=3), max_size=7))
def test_the_week_chart_draws_every_minute_of_every_interval(
    week: dict[str, list[tuple[str, str]]],
) -> None:
    rows = {day: [IntervalRow(s, e) for s, e in items] for day, items in week.items()}
    bars = week_bars(rows)
    assert sum(b.width for b in bars) == sum(
        _minutes(s, e) for items in week.values() for s, e in items
    )
    assert all(b.start >= 0 and b.start + b.width <= 1440 and 0 <= b.row < 7 for b in bars)


def _form_fields(form: HoursForm) -> dict[str, str]:
    """What the service-hours form submits (the names the template renders)."""
    out = {}
    if form.always_open:
        out["service_hours.always_open"] = "on"
    for day, rows in form.weekly.items():
        for i, row in enumerate(rows):
            out[f"service_hours.weekly.{day}[{i}].start"] = row.start
            out[f"service_hours.weekly.{day}[{i}].end"] = row.end
    for i, x in enumerate(form.exceptions):
        p = f"service_hours.exceptions[{i}]"
        out.update({f"{p}.date": x.date, f"{p}.end_date": x.end_date, f"{p}.hours": x.hours})
        out.update({f"{p}.label": x.label, f"{p}.kind": "closed" if x.closed else "hours"})
        if x.recurring:
            out[f"{p}.recurring"] = "on"
    out["service_hours.holidays.country"] = form.country
    out["service_hours.holidays.subdivision"] = form.subdivision
    out["service_hours.holidays.open_on"] = form.open_on
    return out


def _same_day_ok(items: list[tuple[str, str]]) -> bool:
    spans = sorted((int(s[:2]) * 60 + int(s[3:]), _minutes(s, e)) for s, e in items)
    return all(a + la <= b for (a, la), (b, _) in itertools.pairwise(spans)) and all(
        a + la <= 1440 for a, la in spans
    )


@settings(max_examples=60, deadline=None)
@given(
    week=st.dictionaries(
        st.sampled_from(DAYS), st.lists(intervals, min_size=1, max_size=2).filter(_same_day_ok)
    ),
    always_open=st.booleans(),
    closed_dates=st.lists(
        st.dates(datetime(2026, 1, 1).date(), datetime(2027, 12, 31).date()),
        max_size=2,
        unique=True,
    ),
)
def test_hours_shown_in_the_form_save_back_unchanged(
    week: dict[str, list[tuple[str, str]]], always_open: bool, closed_dates: list[Any]
) -> None:
    hours = {
        "always_open": always_open,
        "weekly": {d: [{"start": s, "end": e} for s, e in items] for d, items in week.items()},
        "exceptions": [{"date": d.isoformat(), "closed": True} for d in sorted(closed_dates)],
    }
    document = {"timezone": "America/Sao_Paulo", "service_hours": hours}
    view = NumberView.model_validate(
        {
            **document,
            "phone_number_id": "1",
            "version": 1,
            "updated_at": datetime.now(UTC),
            "updated_by": "t",
        }
    )
    form = HoursForm.of(view)
    read = HoursForm.read(_form_fields(form))
    assert read == form
    merged = merge_patch(document, read.patch())
    assert parse_config(merged).service_hours == parse_config(document).service_hours


T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # local midnight in São Paulo


def _event(kind: str, minute: int, to_agent: str | None = None) -> TicketEvent:
    return TicketEvent(at=T0 + timedelta(minutes=minute), type=kind, to_agent=to_agent)


def test_a_ticket_routed_the_instant_it_was_created_never_waited() -> None:
    assert queue_changes([_event("created", 5), _event("routed", 5)]) == []
    assert queue_changes(
        [_event("created", 5), _event("routed", 9), _event("transferred", 20), _event("closed", 30)]
    ) == [(T0 + timedelta(minutes=5), 1), (T0 + timedelta(minutes=9), -1),
          (T0 + timedelta(minutes=20), 1), (T0 + timedelta(minutes=30), -1)]  # fmt: skip
    # Agent to agent is no stay in the queue.
    assert queue_changes(
        [_event("created", 0), _event("routed", 1), _event("transferred", 2, "bia")]
    ) == [
        (T0, 1),
        (T0 + timedelta(minutes=1), -1),
    ]


stays = st.lists(st.tuples(st.integers(-120, 1500), st.integers(0, 300)), max_size=12)


@given(stays=stays)
def test_the_queue_series_is_the_peak_of_each_quarter_hour(stays: list[tuple[int, int]]) -> None:
    histories = [
        [_event("created", start), _event("routed", start + length)] for start, length in stays
    ]
    end = T0 + timedelta(days=1)
    series = queue_series(histories, T0, end)
    assert len(series) == 96
    for b, value in enumerate(series):
        lo = T0 + BUCKET * b
        hi = lo + BUCKET
        instants = [lo] + [
            T0 + timedelta(minutes=m)
            for s, ln in stays
            for m in (s, s + ln)
            if lo <= T0 + timedelta(minutes=m) < hi
        ]

        def level(at: datetime) -> int:
            return sum(
                1 for s, ln in stays
                if ln > 0 and T0 + timedelta(minutes=s) <= at < T0 + timedelta(minutes=s + ln)
            )  # fmt: skip

        assert value == max(level(at) for at in instants)


def test_an_error_is_summarised_in_the_form_s_words() -> None:
    from handlers.console.forms import field_label

    assert (
        field_label("service_hours.weekly.mon[1].start")
        == "Service hours, Monday, interval 2, from"
    )
    assert field_label("service_hours.exceptions[0].date") == "Service hours, exception 1, date"
    assert (
        field_label("absence.suggested_agent.phone") == "Absence, suggested person, WhatsApp number"
    )
