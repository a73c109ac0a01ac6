"""Console page of a number's monitoring: the figures of `GET /api/v1/monitoring`, live, and
a chart of the queue over the day.

The figures are the API's own (`MonitoringStore.snapshots` → `build_monitoring`, with the
same rule of who may see them, `bot.domain.monitoring.can_monitor`: admins and the number's
managers). The page refreshes them every few seconds and on every desk event.

The chart: how many tickets waited in the queue, at most, in each quarter-hour of today (the
number's local day). The monitoring counters keep no queue history, so it is rebuilt from the
histories of the day's tickets (created, routed, transferred, requeued, closed: each says
whether the ticket entered or left the queue), at most `CHART_TICKETS` of them, newest first.
It is read once a minute, apart from the figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from aiohttp import web

from bot.appkeys import clock_key, stores_key
from bot.domain.monitoring import build_monitoring, can_monitor, day_start
from bot.domain.tickets import TicketEvent
from handlers.console.context import is_htmx, user_of
from handlers.console.numbers import readable_number
from handlers.console.render import render_fragment, render_page

BUCKET: Final = timedelta(minutes=15)
# Tickets whose histories the chart reads at most (newest first), and how many at once.
CHART_TICKETS: Final = 300
_CONCURRENCY: Final = 25


@dataclass(frozen=True, slots=True)
class QueueChart:
    """Max queue size per bucket from `start`; `now_index` is the bucket holding now."""

    start: datetime
    values: list[int]
    now_index: int

    @property
    def peak(self) -> int:
        return max(self.values, default=0)


def queue_changes(events: Sequence[TicketEvent]) -> list[tuple[datetime, int]]:
    """When one ticket entered (+1) and left (-1) the queue, from its history (oldest first).

    A stay of no time (a ticket routed the instant it was created) is no stay.
    """
    out: list[tuple[datetime, int]] = []
    inside = False
    for event in events:
        enters = event.type in ("created", "requeued") or (
            event.type == "transferred" and event.to_agent is None
        )
        leaves = event.type in ("routed", "closed") or (
            event.type == "transferred" and event.to_agent is not None
        )
        if enters and not inside:
            out.append((event.at, 1))
            inside = True
        elif leaves and inside:
            if out and out[-1] == (event.at, 1):
                out.pop()
            else:
                out.append((event.at, -1))
            inside = False
    return out


def queue_series(
    histories: Iterable[Sequence[TicketEvent]], start: datetime, end: datetime
) -> list[int]:
    """The largest queue size within each `BUCKET` of [start, end) (the last one partial).

    The level at an instant counts the tickets that entered at or before it and had not left
    by then (a stay is half-open, [entered, left)).
    """
    # At one instant a ticket leaving sorts before one entering: never an overstated peak.
    changes = sorted(c for events in histories for c in queue_changes(events))
    count = max(1, -(-int((end - start) / timedelta(seconds=1)) // int(BUCKET.total_seconds())))
    values = [0] * count
    level = 0
    i = 0
    for b in range(count):
        bucket_start = start + BUCKET * b
        while i < len(changes) and changes[i][0] <= bucket_start:
            level += changes[i][1]
            i += 1
        peak = level
        while i < len(changes) and changes[i][0] < bucket_start + BUCKET:
            level += changes[i][1]
            peak = max(peak, level)
            i += 1
        values[b] = max(peak, 0)
    return values


async def _chart(request: web.Request, number: str, start: datetime, now: datetime) -> QueueChart:
    store = request.app[stores_key].tickets
    tickets = await store.for_number(number, None, CHART_TICKETS)
    # Tickets created up to a day before today may have waited into it.
    relevant = [t.id for t in tickets if t.created_at >= start - timedelta(days=1)]
    histories: list[list[TicketEvent]] = []
    for i in range(0, len(relevant), _CONCURRENCY):
        chunk = relevant[i : i + _CONCURRENCY]
        histories += await asyncio.gather(*(store.history(t) for t in chunk))
    end = start + timedelta(days=1)
    values = queue_series(histories, start, end)
    now_index = min(len(values) - 1, int((now - start) / BUCKET))
    return QueueChart(start=start, values=values[: now_index + 1], now_index=now_index)


async def _figures(request: web.Request) -> dict[str, Any]:
    stored = await readable_number(request)
    caller = user_of(request).caller
    if not can_monitor(caller, stored.phone_number_id):
        raise web.HTTPForbidden(
            reason="Monitoring shows every agent's status and load: administrators and"
            " managers of this number."
        )
    stores = request.app[stores_key]
    now = request.app[clock_key].now()
    zone = stored.config.zone
    start = day_start(zone, now)
    snapshots = await stores.monitoring.snapshots([(stored.phone_number_id, start)], now=now)
    answer = build_monitoring(snapshots, {stored.phone_number_id: stored.config}, now)
    return {
        "number": stored,
        "zone": zone,
        "now": now,
        "start": start,
        "m": answer.numbers[0] if answer.numbers else None,
        "section": "monitoring",
        "bucket": BUCKET,
    }


async def page(request: web.Request) -> web.Response:
    """The figures, the queue chart and the detail lists; refreshed live."""
    context = await _figures(request)
    context["chart"] = await _chart(
        request, context["number"].phone_number_id, context["start"], context["now"]
    )
    return await render_page(request, "monitoring/page.html", context)


async def figures(request: web.Request) -> web.Response:
    """The figures and lists alone (htmx refresh)."""
    context = await _figures(request)
    if not is_htmx(request):
        raise web.HTTPSeeOther(f"/console/numbers/{context['number'].phone_number_id}/monitoring")
    return render_fragment(request, "monitoring/_figures.html", context)


async def chart(request: web.Request) -> web.Response:
    """The queue chart alone (htmx refresh, once a minute)."""
    context = await _figures(request)
    context["chart"] = await _chart(
        request, context["number"].phone_number_id, context["start"], context["now"]
    )
    return render_fragment(request, "monitoring/_chart.html", context)
