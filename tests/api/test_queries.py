"""Query strings read through the query models (handlers/api/queries.py): the values and the
422s (field, message) the hand-written parsing gave, kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from pydantic import BaseModel

from bot.domain.errors import InvalidInputError
from handlers.api.queries import (
    AfterHoursQuery,
    EventsQuery,
    HistoryQuery,
    HoursQuery,
    ListContactsQuery,
    MonitoringQuery,
    SearchContactsQuery,
    TicketsQuery,
    TimelineQuery,
    read_query,
)


def _read(model: type[BaseModel], query: str) -> Any:
    return read_query(make_mocked_request("GET", f"/x?{query}"), model)


@pytest.mark.parametrize(
    ("model", "query", "field", "value"),
    [
        (TicketsQuery, "", "limit", 500),
        (TicketsQuery, "status=&limit=7", "status", None),  # empty is absent
        (TicketsQuery, "limit=5&limit=x", "limit", 5),  # a repeated parameter: its first value
        (TicketsQuery, "status=open&other=1", "status", "open"),  # unknown ones are ignored
        (SearchContactsQuery, "q=%20Ana%20", "q", "Ana"),
        (ListContactsQuery, "name=" + "%20" * 300, "name", None),  # blank is absent, any length
        (ListContactsQuery, "from=2026-01-05T10:00:00 03:00", "from_", datetime(
            2026, 1, 5, 10, tzinfo=timezone(timedelta(hours=3))
        )),  # '+' decoded as a space
        (TimelineQuery, "", "order", "desc"),
        (HoursQuery, "at=2026-01-05T13:00:00Z", "at", datetime(2026, 1, 5, 13, tzinfo=UTC)),
        (AfterHoursQuery, "message_sent=TRUE", "message_sent", True),
        (HistoryQuery, "tag=%20VIP%20", "tag", "vip"),
        (MonitoringQuery, "details=0", "details", 0),
    ],
)  # fmt: skip
def test_query_values(model: type[BaseModel], query: str, field: str, value: Any) -> None:
    assert getattr(_read(model, query), field) == value


@pytest.mark.parametrize(
    ("model", "query", "field", "message"),
    [
        (TicketsQuery, "status=pending", "status",
         "status must be one of waiting, open, closed, transferred, lost, abandoned"),
        (TicketsQuery, "limit=0", "limit", "limit must be an integer from 1 to 500"),
        (TicketsQuery, "limit=²", "limit", "limit must be an integer from 1 to 500"),
        (SearchContactsQuery, "", "q", "q is required: a name or a phone number"),
        (SearchContactsQuery, "q=%20", "q", "q is required: a name or a phone number"),
        (SearchContactsQuery, "q=" + "a" * 101, "q", "q has at most 100 characters"),
        (SearchContactsQuery, "q=ana&number=a%20b", "number", "number must be a phone_number_id"),
        (ListContactsQuery, "to=2026-01-05T10:00:00", "to",
         "to must be an ISO 8601 instant with an offset, e.g. 2026-01-05T10:00:00-03:00"),
        (TimelineQuery, "order=up", "order", "order must be asc or desc"),
        (HoursQuery, "at=2026-01-05T13:00:00", "at",
         "at must carry an offset or Z (a naive time is ambiguous)"),
        (HoursQuery, "at=3000-01-01T00:00:00Z", "at", "at must be between 1970 and 2200"),
        (HoursQuery, "at=soon", "at",
         "at must be an ISO 8601 instant, e.g. 2026-01-05T10:00:00-03:00; got 'soon'"),
        (AfterHoursQuery, "message_sent=1", "message_sent", "message_sent must be true or false"),
        (AfterHoursQuery, "requested_return=maybe", "requested_return",
         "requested_return must be yes, no or N/D"),
        (HistoryQuery, "tag=a:b", "tag",
         "tag must be 1-40 letters, digits, spaces, '.', '-' or '_'"),
        (HistoryQuery, "cursor=xyz", "cursor", "cursor must be the next_cursor of a previous page"),
        (MonitoringQuery, "details=101", "details", "details must be an integer from 0 to 100"),
        # A header's name: the same value may come as the Last-Event-ID header.
        (EventsQuery, "last_event_id=yesterday", "Last-Event-ID",
         "Last-Event-ID must be an event id such as 1700000000000-0"),
    ],
)  # fmt: skip
def test_query_errors_name_the_parameter(
    model: type[BaseModel], query: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        _read(model, query)
    assert (caught.value.field, caught.value.message, caught.value.code) == (
        field,
        message,
        "invalid",
    )
