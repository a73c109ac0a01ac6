"""Conversation history: the 3-month window, its query bounds and its page (pure, no I/O).

A number's history lists the tickets created in the last 3 months: from 00:00 of the same day
three months ago (in the number's zone; the 31st becomes the month's last day) until now.
Older tickets are never returned; their records expire (keys.TICKET_TTL_S, 100 days) and the
history indexes are trimmed to the same age.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bot.domain.errors import InvalidInputError
from bot.domain.tickets import Ticket

HISTORY_MONTHS: Final = 3
PAGE_DEFAULT: Final = 50
PAGE_MAX: Final = 200
# A '+' of an offset arrives as a space when the client did not percent-encode the query.
_SPACE_OFFSET: Final = re.compile(r" (\d{2}:?\d{2})$")
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A page's `next_cursor`: the creation time (epoch ms) and id of the last ticket examined.
CURSOR_RE: Final = re.compile(r"^(\d{1,16}):(T[0-9a-f]{10,20})$")


def valid_cursor(cursor: str) -> bool:
    """Whether `cursor` has the shape of a `next_cursor`."""
    return CURSOR_RE.fullmatch(cursor) is not None


class HistoryPage(BaseModel):
    """`GET /api/v1/numbers/{id}/history`: tickets newest first."""

    items: list[Ticket]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end. A page may hold "
        "fewer than `limit` items (the search examines a bounded number of tickets per call)."
    )
    from_: AwareDatetime = Field(
        alias="from", description="The window searched: from (inclusive), in the number's zone"
    )
    to: AwareDatetime = Field(description="... to (exclusive)")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    # A midnight inside a daylight-saving gap resolves to the gap's end (fold=0).
    local = datetime(day.year, day.month, day.day, tzinfo=zone)
    return datetime.fromtimestamp(local.timestamp(), UTC).astimezone(zone)


def months_before(day: date, months: int) -> date:
    """The same day `months` earlier, clamped to the month's last day (31 May -> 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def window_start(zone: ZoneInfo, now: datetime) -> datetime:
    """The first instant of the history window: 00:00 of today's date 3 months ago."""
    today = now.astimezone(zone).date()
    return _midnight(months_before(today, HISTORY_MONTHS), zone)


def parse_bound(raw: str | None, name: str, zone: ZoneInfo, *, end: bool) -> datetime | None:
    """A `from` / `to` query value: a date (`2026-03-02`, a whole day in the number's zone:
    `to` includes it) or an instant with an offset. None when absent.

    Raises:
        InvalidInputError: naming `name`, for anything else or a naive instant.
    """
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if _DATE_RE.fullmatch(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInputError(f"{name} is not a valid date: {raw!r}", name) from None
        return _midnight(day + timedelta(days=1) if end else day, zone)
    try:
        at = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", text))
    except ValueError:
        raise InvalidInputError(
            f"{name} must be a date (2026-03-02) or an ISO 8601 instant with an offset; "
            f"got {raw!r}",
            name,
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInputError(
            f"{name} must carry an offset or Z (a naive time is ambiguous)", name
        )
    if not 2000 <= at.year <= 9000:
        raise InvalidInputError(f"{name} must be between 2000 and 9000", name)
    return at
