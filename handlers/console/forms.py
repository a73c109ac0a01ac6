"""The settings forms of the console: form fields ⇄ a JSON Merge Patch of the API's settings.

Every input is named by the API's own field path (`service_hours.weekly.mon[0].end`,
`absence.suggested_agent.phone`), and each section saves as the merge patch the API would get
(`PATCH /api/v1/numbers/{id}`), validated by the very same code (`NumbersStore.patch`, which
runs `bot.domain.config.patched_document`). A 422's `field` therefore names an input directly;
`error_target` picks the closest rendered field for paths that name a group (an interval, an
exception row) or a list item (`open_on[1]`).

Blank rows (an interval with neither start nor end, an exception with nothing filled in) are
dropped before saving and the form is rendered back compacted, so the indices of the patch and
of the rendered inputs always agree. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final, Protocol

from bot.domain.config import NumberView
from bot.domain.schedule import DAYS

Form = Mapping[str, str]

DAY_NAMES: Final = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_INDEXED = re.compile(r"^(?P<prefix>.+)\[(?P<index>\d{1,4})\]\.(?P<leaf>[a-z_]+)$")
_SEGMENT = re.compile(r"\.|(?=\[)")
_LOCAL_FORMAT: Final = "%Y-%m-%dT%H:%M"
# Rows a form may carry per list: far above any real week or calendar, and a bound on work.
MAX_ROWS: Final = 200


def path_prefixes(path: str) -> Iterator[str]:
    """`a.b[1].c`, then `a.b[1]`, `a.b`, `a`: the path and every group that contains it."""
    parts = [p for p in _SEGMENT.split(path) if p]
    for end in range(len(parts), 0, -1):
        out = ""
        for part in parts[:end]:
            out += part if part.startswith("[") or not out else f".{part}"
        yield out


def error_target(path: str | None, known: Iterable[str]) -> str | None:
    """The rendered field (or group) closest to an error's `field` path; None when the path
    names nothing of this form (the section shows the message on its own)."""
    if not path:
        return None
    names = set(known)
    return next((p for p in path_prefixes(path) if p in names), None)


def _checked(form: Form, name: str) -> bool:
    return form.get(name, "") in ("on", "true", "1", "yes")


def _text(form: Form, name: str) -> str:
    return form.get(name, "").strip()


def _rows(form: Form, prefix: str) -> list[dict[str, str]]:
    """The rows `prefix[i].leaf` of a form, in index order (gaps closed)."""
    found: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _INDEXED.match(key)
        if match is None or match["prefix"] != prefix:
            continue
        index = int(match["index"])
        if index < MAX_ROWS:
            found.setdefault(index, {})[match["leaf"]] = value.strip()
    return [found[i] for i in sorted(found)]


def _int_or_text(value: str) -> int | str:
    """An integer when the text is one; otherwise the text, for the API to name the field."""
    return int(value) if re.fullmatch(r"-?\d{1,9}", value) else value


def local_input(value: datetime | None, zone: tzinfo) -> str:
    """An aware instant as a `datetime-local` value in the number's zone."""
    return "" if value is None else value.astimezone(zone).strftime(_LOCAL_FORMAT)


def aware_or_text(value: str, zone: tzinfo) -> str | None:
    """A `datetime-local` value read in the number's zone, as ISO 8601 with its offset.

    Blank is None (absent); anything unreadable goes through as typed, so that the API's
    validation names the field.
    """
    if not value:
        return None
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return value
    if naive.tzinfo is not None:
        return naive.isoformat()
    # fold=0: in a repeated hour (DST ending) the first occurrence is meant.
    return naive.replace(tzinfo=zone).isoformat()


class Section(Protocol):
    """One form of the settings page."""

    name: str

    def patch(self) -> dict[str, Any]: ...

    def fields(self) -> set[str]: ...


# --- general ------------------------------------------------------------------------------


@dataclass
class GeneralForm:
    name: str = "general"
    display_name: str = ""
    timezone: str = ""
    language: str = "pt-BR"

    @classmethod
    def of(cls, view: NumberView) -> GeneralForm:
        return cls(
            display_name=view.display_name or "", timezone=view.timezone, language=view.language
        )

    @classmethod
    def read(cls, form: Form) -> GeneralForm:
        return cls(
            display_name=_text(form, "display_name"),
            timezone=_text(form, "timezone"),
            language=_text(form, "language"),
        )

    def patch(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name or None,
            "timezone": self.timezone,
            "language": self.language,
        }

    def fields(self) -> set[str]:
        return {"display_name", "timezone", "language"}


# --- service hours ------------------------------------------------------------------------


@dataclass
class IntervalRow:
    start: str = ""
    end: str = ""


@dataclass
class ExceptionRow:
    date: str = ""
    end_date: str = ""
    closed: bool = True
    hours: str = ""
    recurring: bool = False
    label: str = ""

    @property
    def blank(self) -> bool:
        return not (self.date or self.end_date or self.hours or self.label)


def intervals_text(intervals: Iterable[Mapping[str, str]]) -> str:
    """`09:00-12:00, 13:00-18:00`: how an exception's hours read in one input."""
    return ", ".join(f"{i['start']}-{i['end']}" for i in intervals)


def parse_intervals(text: str) -> list[dict[str, str]]:
    """The inverse of `intervals_text`; a piece without a dash becomes a start with an empty
    end, so that the API names what is missing."""
    out = []
    for piece in re.split(r"[,;]", text):
        piece = piece.strip()
        if not piece:
            continue
        parts = re.split(r"\s*[-–]\s*", piece, maxsplit=1)
        out.append({"start": parts[0], "end": parts[1] if len(parts) > 1 else ""})
    return out


@dataclass
class HoursForm:
    name: str = "hours"
    always_open: bool = False
    weekly: dict[str, list[IntervalRow]] = field(default_factory=dict)
    exceptions: list[ExceptionRow] = field(default_factory=list)
    country: str = ""
    subdivision: str = ""
    open_on: str = ""

    @classmethod
    def of(cls, view: NumberView) -> HoursForm:
        hours = view.service_hours
        weekly: dict[str, list[IntervalRow]] = {
            day: [IntervalRow(i.start, i.end) for i in hours.weekly.get(day, ())] for day in DAYS
        }
        exceptions = [
            ExceptionRow(
                date=e.date.isoformat(),
                end_date=e.end_date.isoformat() if e.end_date else "",
                closed=e.hours is None,
                hours=intervals_text(i.model_dump() for i in e.hours or ()),
                recurring=e.recurring,
                label=e.label or "",
            )
            for e in hours.exceptions
        ]
        rule = hours.holidays
        return cls(
            always_open=hours.always_open,
            weekly=weekly,
            exceptions=exceptions,
            country=rule.country if rule else "",
            subdivision=(rule.subdivision or "") if rule else "",
            open_on=", ".join(rule.open_on) if rule else "",
        )

    @classmethod
    def read(cls, form: Form) -> HoursForm:
        weekly: dict[str, list[IntervalRow]] = {
            day: [
                IntervalRow(r.get("start", ""), r.get("end", ""))
                for r in _rows(form, f"service_hours.weekly.{day}")
                if r.get("start") or r.get("end")
            ]
            for day in DAYS
        }
        exceptions = [
            row
            for row in (
                ExceptionRow(
                    date=r.get("date", ""),
                    end_date=r.get("end_date", ""),
                    closed=r.get("kind", "closed") != "hours",
                    hours=r.get("hours", ""),
                    recurring=r.get("recurring", "") == "on",
                    label=r.get("label", ""),
                )
                for r in _rows(form, "service_hours.exceptions")
            )
            if not row.blank
        ]
        return cls(
            always_open=_checked(form, "service_hours.always_open"),
            weekly=weekly,
            exceptions=exceptions,
            country=_text(form, "service_hours.holidays.country").upper(),
            subdivision=_text(form, "service_hours.holidays.subdivision").upper(),
            open_on=_text(form, "service_hours.holidays.open_on"),
        )

    def patch(self) -> dict[str, Any]:
        weekly: dict[str, Any] = {
            # null removes a day (merge patch): a day left without intervals is closed.
            day: [{"start": r.start, "end": r.end} for r in rows] or None
            for day, rows in self.weekly.items()
        }
        exceptions = []
        for row in self.exceptions:
            item: dict[str, Any] = {"date": row.date}
            if row.end_date:
                item["end_date"] = row.end_date
            if row.closed:
                item["closed"] = True
            else:
                item["hours"] = parse_intervals(row.hours)
            if row.recurring:
                item["recurring"] = True
            if row.label:
                item["label"] = row.label
            exceptions.append(item)
        holidays: dict[str, Any] | None = None
        if self.country:
            names = [n.strip() for n in self.open_on.split(",") if n.strip()]
            holidays = {
                "country": self.country,
                "subdivision": self.subdivision or None,
                "open_on": names or None,
            }
        return {
            "service_hours": {
                "always_open": self.always_open,
                "weekly": weekly,
                "exceptions": exceptions or None,
                "holidays": holidays,
            }
        }

    def fields(self) -> set[str]:
        base = "service_hours"
        out = {base, f"{base}.always_open", f"{base}.weekly", f"{base}.exceptions"}
        for day, rows in self.weekly.items():
            out.add(f"{base}.weekly.{day}")
            for i in range(len(rows)):
                row = f"{base}.weekly.{day}[{i}]"
                out |= {row, f"{row}.start", f"{row}.end"}
        for i in range(len(self.exceptions)):
            row = f"{base}.exceptions[{i}]"
            out.add(row)
            out |= {f"{row}.{leaf}" for leaf in ("date", "end_date", "hours", "label")}
            out |= {f"{row}.closed", f"{row}.recurring"}
        holidays = f"{base}.holidays"
        out |= {holidays, f"{holidays}.country", f"{holidays}.subdivision", f"{holidays}.open_on"}
        return out


# --- after-hours reply --------------------------------------------------------------------


@dataclass
class AfterHoursForm:
    name: str = "after_hours"
    message: str = ""
    notify: bool = False

    @classmethod
    def of(cls, view: NumberView) -> AfterHoursForm:
        return cls(
            message=view.after_hours.message, notify=view.after_hours.notify_next_service_hour
        )

    @classmethod
    def read(cls, form: Form) -> AfterHoursForm:
        return cls(
            message=form.get("after_hours.message", ""),
            notify=_checked(form, "after_hours.notify_next_service_hour"),
        )

    def patch(self) -> dict[str, Any]:
        # A blank message means "the default", in the number's language.
        return {
            "after_hours": {
                "message": self.message if self.message.strip() else None,
                "notify_next_service_hour": self.notify,
            }
        }

    def fields(self) -> set[str]:
        return {"after_hours", "after_hours.message", "after_hours.notify_next_service_hour"}


# --- absence ------------------------------------------------------------------------------


@dataclass
class AbsenceForm:
    name: str = "absence"
    enabled: bool = False
    message: str = ""
    starts_at: str = ""
    ends_at: str = ""
    agent_name: str = ""
    agent_phone: str = ""
    zone: tzinfo | None = None

    @classmethod
    def of(cls, view: NumberView) -> AbsenceForm:
        absence, zone = view.absence, view.zone
        agent = absence.suggested_agent
        return cls(
            enabled=absence.enabled,
            message=absence.message,
            starts_at=local_input(absence.starts_at, zone),
            ends_at=local_input(absence.ends_at, zone),
            agent_name=agent.name if agent else "",
            agent_phone=agent.phone if agent else "",
            zone=zone,
        )

    @classmethod
    def read(cls, form: Form, zone: tzinfo) -> AbsenceForm:
        return cls(
            enabled=_checked(form, "absence.enabled"),
            message=form.get("absence.message", ""),
            starts_at=_text(form, "absence.starts_at"),
            ends_at=_text(form, "absence.ends_at"),
            agent_name=_text(form, "absence.suggested_agent.name"),
            agent_phone=_text(form, "absence.suggested_agent.phone").replace(" ", ""),
            zone=zone,
        )

    def patch(self) -> dict[str, Any]:
        assert self.zone is not None
        agent: dict[str, Any] | None = None
        if self.agent_name or self.agent_phone:
            agent = {"name": self.agent_name or None, "phone": self.agent_phone or None}
        return {
            "absence": {
                "enabled": self.enabled,
                "message": self.message if self.message.strip() else None,
                "starts_at": aware_or_text(self.starts_at, self.zone),
                "ends_at": aware_or_text(self.ends_at, self.zone),
                "suggested_agent": agent,
            }
        }

    def fields(self) -> set[str]:
        agent = "absence.suggested_agent"
        return {
            "absence",
            "absence.enabled",
            "absence.message",
            "absence.starts_at",
            "absence.ends_at",
            agent,
            f"{agent}.name",
            f"{agent}.phone",
        }


# --- cooldown and tickets -----------------------------------------------------------------


@dataclass
class CooldownForm:
    name: str = "cooldown"
    minutes: str = ""

    @classmethod
    def of(cls, view: NumberView) -> CooldownForm:
        return cls(minutes=str(view.auto_reply_cooldown_minutes))

    @classmethod
    def read(cls, form: Form) -> CooldownForm:
        return cls(minutes=_text(form, "auto_reply_cooldown_minutes"))

    def patch(self) -> dict[str, Any]:
        return {"auto_reply_cooldown_minutes": _int_or_text(self.minutes) if self.minutes else None}

    def fields(self) -> set[str]:
        return {"auto_reply_cooldown_minutes"}


@dataclass
class TicketsForm:
    name: str = "tickets"
    welcome: bool = False
    welcome_message: str = ""
    queue_message: str = ""
    reroute: str = ""
    lost: str = ""
    grace: str = ""
    read_receipts: bool = True

    @classmethod
    def of(cls, view: NumberView) -> TicketsForm:
        t = view.tickets
        return cls(
            welcome=t.welcome.enabled,
            welcome_message=t.welcome.message or "",
            queue_message=t.welcome.queue_message or "",
            reroute=str(t.reroute_after_minutes),
            lost=str(t.lost_after_minutes),
            grace=str(t.offline_grace_minutes),
            read_receipts=t.read_receipts,
        )

    @classmethod
    def read(cls, form: Form) -> TicketsForm:
        return cls(
            welcome=_checked(form, "tickets.welcome.enabled"),
            welcome_message=form.get("tickets.welcome.message", ""),
            queue_message=form.get("tickets.welcome.queue_message", ""),
            reroute=_text(form, "tickets.reroute_after_minutes"),
            lost=_text(form, "tickets.lost_after_minutes"),
            grace=_text(form, "tickets.offline_grace_minutes"),
            read_receipts=_checked(form, "tickets.read_receipts"),
        )

    def patch(self) -> dict[str, Any]:
        def number(value: str) -> int | str | None:
            return _int_or_text(value) if value else None

        return {
            "tickets": {
                "welcome": {
                    "enabled": self.welcome,
                    "message": self.welcome_message if self.welcome_message.strip() else None,
                    "queue_message": self.queue_message if self.queue_message.strip() else None,
                },
                "reroute_after_minutes": number(self.reroute),
                "lost_after_minutes": number(self.lost),
                "offline_grace_minutes": number(self.grace),
                "read_receipts": self.read_receipts,
            }
        }

    def fields(self) -> set[str]:
        w = "tickets.welcome"
        return {
            "tickets",
            w,
            f"{w}.enabled",
            f"{w}.message",
            f"{w}.queue_message",
            "tickets.reroute_after_minutes",
            "tickets.lost_after_minutes",
            "tickets.offline_grace_minutes",
            "tickets.read_receipts",
        }


SECTIONS: Final = ("general", "hours", "after_hours", "absence", "cooldown", "tickets")


def minimal_patch(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """The part of merge patch `new` that differs from `old` (the same section as stored).

    Saving a section sends only what the user changed, so that the stored document keeps
    following the defaults they did not touch (the default after-hours message follows the
    number's language; a value set explicitly would not), and a section saved unchanged
    changes nothing at all (no new version, no audit entry). Objects are compared member by
    member, anything else (lists included) as a whole.
    """
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = minimal_patch(value, before)
            if inner:
                out[key] = inner
        elif value != before:
            out[key] = value
    return out


def section_of(view: NumberView, name: str) -> Section:
    """The section `name` filled from the stored settings."""
    if name == "general":
        return GeneralForm.of(view)
    if name == "hours":
        return HoursForm.of(view)
    if name == "after_hours":
        return AfterHoursForm.of(view)
    if name == "absence":
        return AbsenceForm.of(view)
    if name == "cooldown":
        return CooldownForm.of(view)
    if name == "tickets":
        return TicketsForm.of(view)
    raise KeyError(name)


def section_from_form(name: str, form: Form, zone: tzinfo) -> Section:
    """The section `name` as the user submitted it."""
    if name == "general":
        return GeneralForm.read(form)
    if name == "hours":
        return HoursForm.read(form)
    if name == "after_hours":
        return AfterHoursForm.read(form)
    if name == "absence":
        return AbsenceForm.read(form, zone)
    if name == "cooldown":
        return CooldownForm.read(form)
    if name == "tickets":
        return TicketsForm.read(form)
    raise KeyError(name)


# --- the week drawn -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    """An open stretch of one weekday row, in minutes after its midnight."""

    row: int
    start: int
    width: int
    label: str


def _minute(value: str) -> int | None:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        return None
    return hour * 60 + minute


def week_bars(weekly: Mapping[str, Iterable[IntervalRow]]) -> list[Bar]:
    """The weekly intervals as bars of a Monday-first week chart. A past-midnight interval
    draws its tail at the start of the next day (Sunday's on Monday); unreadable or empty
    intervals are left out (the form shows their error)."""
    bars: list[Bar] = []
    for row, day in enumerate(DAYS):
        for interval in weekly.get(day, ()):
            start, end = _minute(interval.start), _minute(interval.end)
            if start is None or end is None or start == end or start == 24 * 60:
                continue
            label = f"{DAY_NAMES[day]} {interval.start}-{interval.end}"
            if end > start:
                bars.append(Bar(row, start, end - start, label))
            else:
                bars.append(Bar(row, start, 24 * 60 - start, label))
                if end:
                    bars.append(Bar((row + 1) % 7, 0, end, label))
    return bars


def dom_id(path: str) -> str:
    """An HTML id for a field path (`service_hours.weekly.mon[0].end` →
    `f-service_hours-weekly-mon-0-end`)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_]+", "-", path).strip("-")


_WORDS: Final = {
    "service_hours": "Service hours",
    "always_open": "open 24 hours",
    "weekly": "",
    "exceptions": "exception",
    "holidays": "public holidays",
    "start": "from",
    "end": "to",
    "date": "date",
    "end_date": "until",
    "hours": "hours",
    "label": "label",
    "recurring": "every year",
    "closed": "closed",
    "country": "country",
    "subdivision": "state",
    "open_on": "open anyway on",
    "after_hours": "After-hours reply",
    "message": "message",
    "notify_next_service_hour": '"notify me" button',
    "absence": "Absence",
    "enabled": "switch",
    "starts_at": "from",
    "ends_at": "until",
    "suggested_agent": "suggested person",
    "name": "name",
    "phone": "WhatsApp number",
    "auto_reply_cooldown_minutes": "Cooldown",
    "display_name": "Name",
    "timezone": "Time zone",
    "language": "Language",
    "tickets": "Tickets",
    "welcome": "welcome reply",
    "queue_message": "queue message",
    "reroute_after_minutes": "route again after",
    "lost_after_minutes": "lost after",
    "offline_grace_minutes": "requeue after",
    "read_receipts": "read receipts",
}


def field_label(path: str) -> str:
    """An API field path as the form labels it: `service_hours.weekly.mon[1].start` →
    "Service hours, Monday, interval 2, from"."""
    words: list[str] = []
    previous = ""
    for part in [p for p in _SEGMENT.split(path) if p]:
        if part.startswith("["):
            index = int(part[1:-1]) + 1 if part[1:-1].isdigit() else part
            noun = "interval" if previous in DAY_NAMES or previous == "hours" else ""
            words.append(f"{noun} {index}".strip())
        elif part in DAY_NAMES:
            words.append(DAY_NAMES[part])
        else:
            word = _WORDS.get(part, part.replace("_", " "))
            if word:
                words.append(word)
        previous = part
    return ", ".join(words).replace("exception, ", "exception ") or path
