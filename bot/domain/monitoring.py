"""Monitoring: the live desk figures, computed from counters, never from a scan of tickets.

Pure (no I/O, no clock): `storage.monitoring` reads the counters and sorted sets the ticket
scripts maintain and hands them over as a `NumberSnapshot`; `build_monitoring` turns the
snapshots into the answer of `GET /api/v1/monitoring`.

Definitions (the desk's vocabulary, PRODUCT.md "Monitoring"):

* **In queue**: waiting tickets (status waiting or transferred). *Longest time in queue*: since
  the oldest of them last entered the queue.
* **In service**: tickets assigned to an agent that already got their first reply.
* **Time to first response**: from the assignment to the agent's first reply. The average is
  over the first replies given today; the maximum also covers the tickets still assigned
  without one (how long they have waited so far), so a forgotten ticket shows at once.
* **Response time**: for every agent reply that answers a customer message, from the later of
  the customer's oldest unanswered message and the assignment to the reply (an agent cannot
  answer before having the ticket). Averaged over today's replies.
* **Service time**: from the first assignment to the close, over today's closed tickets that
  an agent had (status closed; lost and abandoned ones were not served).
* **Today's tickets**: the tickets created today, by their status now. "Today" is the local
  date in each number's own time zone.
* **Agents**: attached to the number, counted by status; *tickets per agent* is the assigned
  tickets over the agents online or on break (null when there is none).

Every duration comes in seconds and in **business minutes**: the part of it that fell in the
number's service hours (`business_seconds`, through the service-hours engine). The business
part of a reply or a close is computed when it happens and summed like the wall-clock part.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bot.domain.auth import Caller
from bot.domain.config import AgentRecord, AgentStatus, NumberConfig
from bot.domain.hours import compile_schedule
from bot.domain.schedule import DAYS, ServiceHours
from bot.domain.tickets import Ticket, TicketContact

# The counters of the ticket scripts (storage/lua/includes/monitor.lua), per time bucket.
# Summed over today's buckets, except the maxima.
MAX_METRICS: Final = frozenset({"frmax", "frbmax"})
# Ticket statuses as today's counters keep them (`s:<status>`, by creation bucket).
TODAY_STATUSES: Final = ("waiting", "open", "transferred", "closed", "abandoned", "lost")
# Detail lists are capped: a screen, not an export (`details` query parameter).
DETAIL_DEFAULT: Final = 20
DETAIL_MAX: Final = 100

_ONE_DAY: Final = timedelta(days=1)


# --- business time -------------------------------------------------------------------------


def business_seconds(hours: ServiceHours, zone: ZoneInfo, start: datetime, end: datetime) -> float:
    """How much of `[start, end)` falls in the service hours (seconds), exactly.

    Open and closed change only where the local wall clock crosses an interval boundary of
    some rule, or where the zone's offset changes. Those candidate instants split the span
    into pieces of constant state, each asked once of the hours engine (`is_open` at its
    start: intervals are half-open). Cost: a few candidates per local day of the span.

    Raises:
        ValueError: naive datetimes (from the hours engine).
    """
    if end <= start:
        return 0.0
    if hours.always_open:
        return (end - start).total_seconds()
    t0, t1 = start.timestamp(), end.timestamp()
    total = 0.0
    day = start.astimezone(zone).date()
    last = end.astimezone(zone).date()
    while day <= last:
        for a, b in _open_spans(hours, zone, day):
            if a < t1 and b > t0:
                total += min(b, t1) - max(a, t0)
        day += _ONE_DAY
    return total


# Open spans per (schedule, zone, local day), computed once: a monitoring answer asks about
# the same few days for every ticket it lists. Entries hold their schedule, so that an id is
# never reused while cached (the hours engine's memo does the same).
_SPANS_MAX: Final = 20_000
_spans: dict[tuple[int, str, int], tuple[ServiceHours, tuple[tuple[float, float], ...]]] = {}


def _open_spans(
    hours: ServiceHours, zone: ZoneInfo, day: dt.date
) -> tuple[tuple[float, float], ...]:
    """The open stretches of local date `day` as UTC timestamps [a, b), in order."""
    key = (id(hours), zone.key, day.toordinal())
    hit = _spans.get(key)
    if hit is not None and hit[0] is hours:
        return hit[1]
    compiled = compile_schedule(hours, zone)
    start, end = _midnight(day, zone), _midnight(day + _ONE_DAY, zone)
    t0, t1 = start.timestamp(), end.timestamp()
    out: list[tuple[float, float]] = []
    previous = t0
    for cut in [*_candidates(hours, zone, start, end), t1]:
        if compiled.is_open(datetime.fromtimestamp(previous, UTC)):
            if out and out[-1][1] == previous:
                out[-1] = (out[-1][0], cut)
            else:
                out.append((previous, cut))
        previous = cut
    if len(_spans) >= _SPANS_MAX:
        _spans.clear()
    spans = tuple(out)
    _spans[key] = (hours, spans)
    return spans


def _midnight(day: dt.date, zone: ZoneInfo) -> datetime:
    """00:00 of local date `day` as an instant (the end of a daylight-saving gap that
    swallowed it)."""
    return datetime.fromtimestamp(
        datetime(day.year, day.month, day.day, tzinfo=zone).timestamp(), UTC
    )


def business_ms(config: NumberConfig | None, start: datetime | None, end: datetime) -> int:
    """`business_seconds` in whole milliseconds for a number's settings; 0 without a start.

    A number without settings has no service hours to measure against: its business time is
    its wall-clock time (so that the two figures stay comparable).
    """
    if start is None or end <= start:
        return 0
    if config is None:
        return round((end - start).total_seconds() * 1000)
    return round(business_seconds(config.service_hours, config.zone, start, end) * 1000)


def _candidates(hours: ServiceHours, zone: ZoneInfo, start: datetime, end: datetime) -> list[float]:
    t0, t1 = start.timestamp(), end.timestamp()
    extra = {0}
    for exception in hours.exceptions:
        for interval in exception.hours or ():
            extra.update((interval.start_minute, interval.end_minute))
    weekly = [
        extra.union(m for i in hours.weekly.get(day, ()) for m in (i.start_minute, i.end_minute))
        for day in DAYS
    ]
    # From two days before: a past-midnight interval of the day before reaches into the span.
    day = start.astimezone(zone).date() - 2 * _ONE_DAY
    last = end.astimezone(zone).date() + _ONE_DAY
    points: set[float] = set()
    while day <= last:
        midnight = datetime(day.year, day.month, day.day)  # wall clock: zoned below
        for minute in weekly[day.weekday()]:
            wall = midnight + timedelta(minutes=minute)
            for fold in (0, 1):
                ts = wall.replace(tzinfo=zone, fold=fold).timestamp()
                if t0 < ts < t1:
                    points.add(ts)
        day += _ONE_DAY
    ordered = sorted(points)
    # Offset changes (daylight saving) move the wall clock without crossing a boundary.
    edges = [t0, *ordered, t1]
    for a, b in itertools.pairwise(edges):
        if _offset(zone, a) != _offset(zone, b):
            jump = _transition(zone, a, b)
            if t0 < jump < t1:
                bisect.insort(ordered, jump)
    return ordered


def _offset(zone: ZoneInfo, ts: float) -> timedelta | None:
    return datetime.fromtimestamp(ts, zone).utcoffset()


def _transition(zone: ZoneInfo, a: float, b: float) -> float:
    """The first whole second in (a, b] with b's offset (zones change offset on whole seconds)."""
    lo, hi = int(a), int(b) + 1
    before = _offset(zone, a)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(zone, mid) == before:
            lo = mid
        else:
            hi = mid
    return float(hi)


def day_start(zone: ZoneInfo, now: datetime) -> datetime:
    """The instant today began in `zone` (UTC): local midnight, or the end of a
    daylight-saving gap that swallowed it."""
    return _midnight(now.astimezone(zone).date(), zone)


# --- what storage hands over ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Waiting:
    """A waiting ticket and when it last entered the queue."""

    ticket: Ticket
    since: datetime


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """An agent of the number, with its slots in use (all numbers) and its tickets here."""

    agent: AgentRecord
    load: int
    here: int


@dataclass(frozen=True, slots=True)
class NumberSnapshot:
    """One number's monitoring inputs, as read in one go by `storage.monitoring`.

    `counters` are today's per-bucket counters summed (maxima: the largest), `queue`,
    `serving` the first tickets waiting (queue order) and in service (oldest
    reply first); `oldest_waiting` / `oldest_unanswered` are the heads of the waiting and the
    assigned-without-reply sets with their times.
    """

    phone_number_id: str
    counters: Mapping[str, int]
    queue_size: int
    oldest_waiting: datetime | None
    in_service: int
    unanswered: int
    oldest_unanswered: datetime | None
    queue: Sequence[Waiting] = ()
    serving: Sequence[Ticket] = ()
    agents: Sequence[AgentLoad] = ()
    tags: Mapping[str, int] = field(default_factory=dict)


# --- the answer ------------------------------------------------------------------------------


class Duration(BaseModel):
    """A span of time, in wall-clock seconds and in business minutes (within service hours)."""

    model_config = ConfigDict(frozen=True)

    seconds: float
    business_minutes: float


class QueueFigures(BaseModel):
    tickets: int = Field(description="Waiting tickets (status waiting or transferred).")
    longest: Duration | None = Field(
        description="Since the longest-waiting ticket entered the queue; null when empty."
    )


class FirstResponseFigures(BaseModel):
    count: int = Field(description="First replies given today.")
    average: Duration | None = Field(description="From assignment to first reply, today.")
    maximum: Duration | None = Field(
        description="The longest of today's first replies and of the current waits of "
        "assigned tickets still without one (wall-clock and business maxima are each the "
        "largest of their kind)."
    )
    awaiting: int = Field(description="Assigned tickets without a first reply now.")


class AverageFigures(BaseModel):
    count: int
    average: Duration | None


class TodayFigures(BaseModel):
    """The tickets created today (local date of each number), by their status now."""

    total: int
    waiting: int
    open: int = Field(description="Assigned to an agent.")
    transferred: int = Field(description="Transferred back to the queue, waiting there.")
    closed: int
    abandoned: int
    lost: int


class AgentFigures(BaseModel):
    attached: int
    online: int
    on_break: int
    invisible: int
    assigned_tickets: int = Field(description="Tickets of these numbers held by an agent.")
    tickets_per_agent: float | None = Field(
        description="assigned_tickets over the agents online or on break; null without any."
    )


class Figures(BaseModel):
    queue: QueueFigures
    in_service: int = Field(description="Assigned tickets that got their first reply.")
    first_response: FirstResponseFigures
    response_time: AverageFigures = Field(description="Agent replies to customer messages today.")
    service_time: AverageFigures = Field(
        description="From first assignment to close, tickets closed today (status closed)."
    )
    today: TodayFigures
    agents: AgentFigures


class QueueItem(BaseModel):
    ticket_id: str
    position: int = Field(description="1 = next to be assigned.")
    contact: TicketContact
    status: str
    waiting_since: AwareDatetime
    waiting: Duration
    tags: tuple[str, ...] = ()


class ServiceItem(BaseModel):
    ticket_id: str
    agent_id: str | None
    contact: TicketContact
    assigned_at: AwareDatetime | None
    first_response_at: AwareDatetime | None
    in_service: Duration = Field(description="Since the first reply.")
    tags: tuple[str, ...] = ()


class AgentItem(BaseModel):
    id: str
    name: str
    status: AgentStatus
    status_since: AwareDatetime | None
    slots: int
    load: int = Field(description="Slots in use, on all the agent's numbers.")
    tickets: int = Field(description="Tickets of this number the agent holds.")
    closed_today: int = Field(description="Tickets of this number closed today in its hands.")


class TagItem(BaseModel):
    tag: str
    active: int = Field(description="Tickets not closed carrying the tag.")
    today: int = Field(description="Tickets created today carrying the tag.")


class Details(BaseModel):
    in_service: list[ServiceItem]
    queue: list[QueueItem]
    agents: list[AgentItem]
    tags: list[TagItem]


class NumberMonitoring(BaseModel):
    phone_number_id: str
    display_name: str | None
    timezone: str
    date: dt.date = Field(description="Today in the number's time zone.")
    figures: Figures
    details: Details


class Monitoring(BaseModel):
    """`GET /api/v1/monitoring`: per number, and `total` over them (today's figures of each
    number in its own zone; each agent counted once)."""

    generated_at: AwareDatetime
    total: Figures
    numbers: list[NumberMonitoring]


# --- building it -----------------------------------------------------------------------------


def can_monitor(caller: Caller, phone_number_id: str) -> bool:
    """Monitoring shows every agent's load and status: admins, and managers of the number.
    Agents get 403 (they see their own tickets through the tickets API)."""
    return caller.is_admin or (caller.role == "manager" and phone_number_id in caller.numbers)


def _duration(wall_ms: float, business_ms_: float) -> Duration:
    # model_construct: computed floats need no validation (a monitoring answer makes hundreds).
    return Duration.model_construct(
        seconds=round(wall_ms / 1000, 3), business_minutes=round(business_ms_ / 60_000, 3)
    )


def _average(count: int, wall_ms: int, business: int) -> Duration | None:
    if count <= 0:
        return None
    return _duration(wall_ms / count, business / count)


def _live(config: NumberConfig | None, since: datetime | None, now: datetime) -> Duration | None:
    if since is None:
        return None
    wall = max(0.0, (now - since).total_seconds() * 1000)
    return _duration(wall, business_ms(config, since, now))


@dataclass
class _Totals:
    """Sums across numbers, for the `total` figures."""

    counters: dict[str, int] = field(default_factory=dict)
    queue: int = 0
    longest: list[Duration] = field(default_factory=list)
    in_service: int = 0
    unanswered: int = 0
    waits: list[Duration] = field(default_factory=list)
    agents: dict[str, AgentLoad] = field(default_factory=dict)
    assigned: int = 0

    def add_counters(self, counters: Mapping[str, int]) -> None:
        for name, value in counters.items():
            if name in MAX_METRICS:
                self.counters[name] = max(self.counters.get(name, value), value)
            else:
                self.counters[name] = self.counters.get(name, 0) + value


def _max_duration(items: Iterable[Duration | None]) -> Duration | None:
    found = [d for d in items if d is not None]
    if not found:
        return None
    return Duration(
        seconds=max(d.seconds for d in found),
        business_minutes=max(d.business_minutes for d in found),
    )


def _figures(
    counters: Mapping[str, int],
    *,
    queue: int,
    longest: Duration | None,
    in_service: int,
    unanswered: int,
    longest_unanswered: Duration | None,
    agents: Iterable[AgentLoad],
    assigned: int,
) -> Figures:
    c = counters
    first_count = c.get("fr", 0)
    recorded = _duration(c.get("frmax", 0), c.get("frbmax", 0)) if first_count > 0 else None
    statuses = {s: c.get(f"s:{s}", 0) for s in TODAY_STATUSES}
    agent_list = list(agents)
    by_status = {
        s: sum(1 for a in agent_list if a.agent.status == s)
        for s in ("online", "break", "invisible")
    }
    working = by_status["online"] + by_status["break"]
    return Figures(
        queue=QueueFigures(tickets=queue, longest=longest),
        in_service=in_service,
        first_response=FirstResponseFigures(
            count=first_count,
            average=_average(first_count, c.get("frms", 0), c.get("frbms", 0)),
            maximum=_max_duration([recorded, longest_unanswered]),
            awaiting=unanswered,
        ),
        response_time=AverageFigures(
            count=c.get("rs", 0),
            average=_average(c.get("rs", 0), c.get("rsms", 0), c.get("rsbms", 0)),
        ),
        service_time=AverageFigures(
            count=c.get("sv", 0),
            average=_average(c.get("sv", 0), c.get("svms", 0), c.get("svbms", 0)),
        ),
        today=TodayFigures(total=sum(statuses.values()), **statuses),
        agents=AgentFigures(
            attached=len(agent_list),
            online=by_status["online"],
            on_break=by_status["break"],
            invisible=by_status["invisible"],
            assigned_tickets=assigned,
            tickets_per_agent=round(assigned / working, 3) if working else None,
        ),
    )


def _details(snapshot: NumberSnapshot, config: NumberConfig | None, now: datetime) -> Details:
    counters = snapshot.counters
    # model_construct: the items are built from stored, typed records; validating hundreds
    # of them again would be most of the answer's cost.
    queue = [
        QueueItem.model_construct(
            ticket_id=w.ticket.id,
            position=i,
            contact=w.ticket.contact,
            status=w.ticket.status,
            waiting_since=w.since,
            waiting=_live(config, w.since, now) or _duration(0, 0),
            tags=w.ticket.tags,
        )
        for i, w in enumerate(snapshot.queue, start=1)
    ]
    serving = [
        ServiceItem.model_construct(
            ticket_id=t.id,
            agent_id=t.agent_id,
            contact=t.contact,
            assigned_at=t.assigned_at,
            first_response_at=t.first_response_at,
            in_service=_live(config, t.first_response_at, now) or _duration(0, 0),
            tags=t.tags,
        )
        for t in snapshot.serving
    ]
    agents = [
        AgentItem.model_construct(
            id=a.agent.id,
            name=a.agent.name,
            status=a.agent.status,
            status_since=a.agent.status_changed_at,
            slots=a.agent.slots,
            load=a.load,
            tickets=a.here,
            closed_today=counters.get(f"ac:{a.agent.id}", 0),
        )
        for a in snapshot.agents
    ]
    names = set(snapshot.tags) | {k[2:] for k in counters if k.startswith("t:")}
    tags = [
        TagItem(tag=name, active=snapshot.tags.get(name, 0), today=counters.get(f"t:{name}", 0))
        for name in sorted(names)
    ]
    tags = [t for t in tags if t.active > 0 or t.today > 0]
    return Details(in_service=serving, queue=queue, agents=agents, tags=tags)


def build_monitoring(
    snapshots: Sequence[NumberSnapshot],
    configs: Mapping[str, NumberConfig | None],
    now: datetime,
) -> Monitoring:
    """The monitoring answer for these numbers' snapshots, at `now`."""
    totals = _Totals()
    numbers = []
    for snap in snapshots:
        config = configs.get(snap.phone_number_id)
        longest = _live(config, snap.oldest_waiting, now)
        longest_unanswered = _live(config, snap.oldest_unanswered, now)
        assigned = snap.in_service + snap.unanswered
        figures = _figures(
            snap.counters,
            queue=snap.queue_size,
            longest=longest,
            in_service=snap.in_service,
            unanswered=snap.unanswered,
            longest_unanswered=longest_unanswered,
            agents=snap.agents,
            assigned=assigned,
        )
        zone = config.zone if config is not None else ZoneInfo("UTC")
        numbers.append(
            NumberMonitoring(
                phone_number_id=snap.phone_number_id,
                display_name=config.display_name if config is not None else None,
                timezone=zone.key,
                date=now.astimezone(zone).date(),
                figures=figures,
                details=_details(snap, config, now),
            )
        )
        totals.add_counters(snap.counters)
        totals.queue += snap.queue_size
        totals.in_service += snap.in_service
        totals.unanswered += snap.unanswered
        totals.assigned += assigned
        totals.longest.extend(d for d in (longest,) if d is not None)
        totals.waits.extend(d for d in (longest_unanswered,) if d is not None)
        for load in snap.agents:
            totals.agents.setdefault(load.agent.id, load)
    total = _figures(
        totals.counters,
        queue=totals.queue,
        longest=_max_duration(totals.longest),
        in_service=totals.in_service,
        unanswered=totals.unanswered,
        longest_unanswered=_max_duration(totals.waits),
        agents=totals.agents.values(),
        assigned=totals.assigned,
    )
    return Monitoring(generated_at=now, total=total, numbers=numbers)
