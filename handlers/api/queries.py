"""The query strings of `/api/v1`: one pydantic model per operation that reads one, the limits
they enforce, and `read_query()`, the one way a handler reads its query.

Each limit is defined once, here or in the domain module that owns it, and used by both the
model (validation) and, through the model's JSON schema, the OpenAPI document: what the
document says is what the handler accepts. A bad value is a 422 naming the parameter
(`{"error": {"code": "invalid", "field": "limit", "message": "limit must be ..."}}`).

Conventions:
- unknown parameters are ignored, and a repeated one counts with its first value;
- an `Invalid` marker on a field gives the message of any error of that field (a validator's
  own `ValueError` text wins, for fields with several distinct messages; a bare `ValueError`
  leaves it to the marker);
- where a field says "blank is absent", an empty (or, for text, all-space) value means the
  parameter was not given; elsewhere an empty value is refused like any other bad one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Literal, TypeVar

from aiohttp import web
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from bot.domain.config import ID_PATTERN
from bot.domain.contacts_import import COUNTRY_PATTERN
from bot.domain.errors import InvalidInputError
from bot.domain.history import PAGE_DEFAULT as HISTORY_LIMIT_DEFAULT
from bot.domain.history import PAGE_MAX as HISTORY_LIMIT_MAX
from bot.domain.history import valid_cursor
from bot.domain.monitoring import DETAIL_DEFAULT, DETAIL_MAX
from bot.domain.tickets import TAG_MAX_LENGTH, TICKET_STATUSES, TicketStatus, TicketTagsInput
from bot.services.after_hours import REQUESTED_RETURNS, RequestedReturn

# --- limits ---------------------------------------------------------------------------------

QUERY_MAX: Final = 100  # a contact search, a timeline search
FILTER_MAX: Final = 254  # a contact filter: name, phone, email, city, document
CONTACT_ID_MAX: Final = 128  # a contact key, wa_id or user id
INSTANT_MAX: Final = 64  # an ISO 8601 instant, with room for fractions and an offset
CONTACTS_CURSOR_MAX: Final = 64
TIMELINE_CURSOR_MAX: Final = 300
HISTORY_CURSOR_MAX: Final = 40
SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX = 20, 100
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 200
TIMELINE_LIMIT_DEFAULT, TIMELINE_LIMIT_MAX = 100, 500
# Without `limit`, the tickets listing answers all it may, which is also its maximum.
TICKETS_LIMIT_MAX: Final = 500
# storage/audit.py clamps to the same 500.
AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_MAX = 100, 500
# Years an `at` may name: the engine looks a year ahead; the holiday tables and zone rules
# are meaningful well inside.
AT_YEARS: Final = range(1970, 2201)
# A Redis stream id, "<ms>-<seq>" (handlers/api/events.py also checks each part's range).
EVENT_ID_PATTERN: Final = r"^[0-9]{1,20}-[0-9]{1,20}$"

_Q = TypeVar("_Q", bound=BaseModel)

# `?at=2026-01-05T10:00:00+00:00` unencoded reaches us with the '+' decoded as a space.
_SPACE_OFFSET: Final = re.compile(r" (\d{2}(?::?\d{2})?)$")
_BOOLS: Final = {"true": True, "false": False}


@dataclass(frozen=True, slots=True)
class Invalid:
    """Field metadata: every error of the field answers `f"{field} {text}"`, naming `field`
    (the parameter itself unless given: `Last-Event-ID` is also a header)."""

    text: str
    field: str | None = None


def _range(low: int, high: int) -> Invalid:
    return Invalid(f"must be an integer from {low} to {high}")


# --- value parsers (BeforeValidator / AfterValidator functions) ----------------------------


def _empty_is_absent(value: object) -> object:
    return None if value == "" else value


def _text_within(high: int) -> Callable[[object], object]:
    """A text parameter: blank is absent; otherwise at most `high` characters as sent, and
    stripped."""

    def parse(value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        if len(value) > high:
            raise ValueError(f"has at most {high} characters")
        return value.strip()

    return parse


def _instant_within(high: int) -> Callable[[object], object]:
    """An ISO 8601 instant that must carry an offset; blank is absent."""
    text = _text_within(high)

    def parse(value: object) -> object:
        raw = text(value)
        if not isinstance(raw, str):
            return raw
        try:
            at = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", raw))
        except ValueError:
            at = None
        if at is None or at.utcoffset() is None:
            raise ValueError(
                "must be an ISO 8601 instant with an offset, e.g. 2026-01-05T10:00:00-03:00"
            )
        return at

    return parse


def _at(value: object) -> object:
    """`at` of GET hours: an aware instant in years `AT_YEARS`, one message per way to be
    wrong."""
    if not isinstance(value, str):
        return value
    try:
        at = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", value.strip()))
    except ValueError:
        raise ValueError(
            f"must be an ISO 8601 instant, e.g. 2026-01-05T10:00:00-03:00; got {value!r}"
        ) from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("must carry an offset or Z (a naive time is ambiguous)")
    if at.year not in AT_YEARS:
        raise ValueError(f"must be between {AT_YEARS.start} and {AT_YEARS.stop - 1}")
    return at


def _bool(value: object) -> object:
    """`true` or `false`, any case; nothing else (pydantic would also take 1, yes, on...)."""
    if isinstance(value, str) and value.lower() in _BOOLS:
        return _BOOLS[value.lower()]
    raise ValueError("must be true or false")


_TAG_TEXT: Final = f"must be 1-{TAG_MAX_LENGTH} letters, digits, spaces, '.', '-' or '_'"


def _tag(value: str) -> str:
    # A tag is filtered on as stored: normalised as TicketTagsInput normalises tags.
    try:
        return TicketTagsInput(tags=(value,)).tags[0]
    except ValueError:
        raise ValueError(_TAG_TEXT) from None


def _check(valid: Callable[[str], bool]) -> Callable[[str], str]:
    """An AfterValidator refusing what `valid` refuses (the field's `Invalid` says why)."""

    def check(value: str) -> str:
        if not valid(value):
            raise ValueError
        return value

    return check


# --- field types ------------------------------------------------------------------------------

_Id = Annotated[str, Field(pattern=ID_PATTERN)]
_Instant = Annotated[datetime | None, BeforeValidator(_instant_within(INSTANT_MAX))]
_FilterText = Annotated[
    Annotated[str, Field(min_length=1, max_length=FILTER_MAX)] | None,
    BeforeValidator(_text_within(FILTER_MAX)),
]


class _Query(BaseModel):
    # Unknown parameters are ignored, as every handler always did (`?token=` among them).
    model_config = ConfigDict(frozen=True, extra="ignore")


# --- one model per operation ------------------------------------------------------------------


class SearchContactsQuery(_Query):
    """`GET /contacts`."""

    q: Annotated[
        str,
        BeforeValidator(_text_within(QUERY_MAX)),
        Field(
            min_length=1,
            max_length=QUERY_MAX,
            description="a name (word prefixes, accents and case ignored) or a phone number "
            "(any spelling, country code and ninth digit optional)",
        ),
        Invalid("is required: a name or a phone number"),
    ]
    number: Annotated[
        _Id | None, Field(description="a phone_number_id"), Invalid("must be a phone_number_id")
    ] = None
    limit: Annotated[int, Field(ge=1, le=SEARCH_LIMIT_MAX), _range(1, SEARCH_LIMIT_MAX)] = (
        SEARCH_LIMIT_DEFAULT
    )


_Country = Annotated[
    Annotated[str, Field(pattern=COUNTRY_PATTERN)] | None,
    Field(description="calling code for numbers written without '+' (55: Brazil)"),
    Invalid("must be a calling code of 1-3 digits, e.g. 55"),
]


class ImportQuery(_Query):
    """`POST /numbers/{phone_number_id}/contacts/import`."""

    country: _Country = None


class ImportToQuery(_Query):
    """`POST /contacts/import`: the number to import into, in the query (checked first)."""

    number: Annotated[
        _Id,
        Field(description="the phone_number_id to import into"),
        Invalid("is required: the phone_number_id to import into"),
    ]
    country: _Country = None


class ListContactsQuery(_Query):
    """`GET /numbers/{phone_number_id}/contacts`."""

    name: Annotated[_FilterText, Field(description="word prefixes of the name")] = None
    phone: Annotated[_FilterText, Field(description="any spelling of the number")] = None
    email: Annotated[_FilterText, Field(description="substring")] = None
    city: Annotated[_FilterText, Field(description="substring")] = None
    document: Annotated[_FilterText, Field(description="substring")] = None
    id: Annotated[
        Annotated[str, Field(min_length=1, max_length=CONTACT_ID_MAX)] | None,
        BeforeValidator(_text_within(CONTACT_ID_MAX)),
        Field(description="contact key, wa_id or user id"),
    ] = None
    from_: Annotated[_Instant, Field(alias="from", description="last interaction at or after")] = (
        None
    )
    to: Annotated[_Instant, Field(description="last interaction at or before")] = None
    cursor: Annotated[
        Annotated[str, Field(max_length=CONTACTS_CURSOR_MAX)] | None,
        BeforeValidator(_text_within(CONTACTS_CURSOR_MAX)),
        Field(description="next_cursor of the previous page"),
    ] = None
    limit: Annotated[int, Field(ge=1, le=LIST_LIMIT_MAX), _range(1, LIST_LIMIT_MAX)] = (
        LIST_LIMIT_DEFAULT
    )


class ConversationQuery(_Query):
    """`GET /numbers/{phone_number_id}/contacts/{wa_id}/conversation`."""

    q: Annotated[
        Annotated[str, Field(max_length=QUERY_MAX)] | None,
        BeforeValidator(_text_within(QUERY_MAX)),
        Field(description="text to find in messages and notes (accents and case ignored)"),
    ] = None


class TimelineQuery(_Query):
    """`GET /numbers/{phone_number_id}/contacts/{wa_id}/timeline`."""

    q: Annotated[
        Annotated[str, Field(max_length=QUERY_MAX)] | None,
        BeforeValidator(_text_within(QUERY_MAX)),
        Field(description="text to find (accents and case ignored)"),
    ] = None
    order: Annotated[
        Literal["desc", "asc"],
        Field(description="desc (default): newest first"),
        Invalid("must be asc or desc"),
    ] = "desc"
    cursor: Annotated[
        Annotated[str, Field(max_length=TIMELINE_CURSOR_MAX)] | None,
        BeforeValidator(_text_within(TIMELINE_CURSOR_MAX)),
        Field(description="next_cursor of the previous page (older entries)"),
    ] = None
    limit: Annotated[int, Field(ge=1, le=TIMELINE_LIMIT_MAX), _range(1, TIMELINE_LIMIT_MAX)] = (
        TIMELINE_LIMIT_DEFAULT
    )


class QuickRepliesQuery(_Query):
    """`GET /quick-replies`."""

    number: Annotated[
        _Id | None,
        Field(description="a phone_number_id"),
        Invalid("must be a phone_number_id"),
    ] = None


class MonitoringQuery(_Query):
    """`GET /monitoring`."""

    number: Annotated[
        _Id | None,
        Field(description="a phone_number_id"),
        Invalid("must be 1-64 characters of A-Z a-z 0-9 _ . -"),
    ] = None
    details: Annotated[
        int,
        Field(
            ge=0, le=DETAIL_MAX, description=f"tickets per detail list (default {DETAIL_DEFAULT})"
        ),
        _range(0, DETAIL_MAX),
    ] = DETAIL_DEFAULT


_TICKET_STATUS_TEXT: Final = f"must be one of {', '.join(TICKET_STATUSES)}"


class HistoryQuery(_Query):
    """`GET /numbers/{phone_number_id}/history`. `from` and `to` are read against the number's
    zone by `bot.domain.history.parse_bound`, so they stay text here."""

    from_: Annotated[
        Annotated[str, Field(min_length=1, max_length=INSTANT_MAX)] | None,
        BeforeValidator(_empty_is_absent),
        Field(
            alias="from",
            description="a date (the number's zone) or an instant with an offset; "
            "at most 3 months back",
        ),
        Invalid("must be a date (2026-03-02) or an ISO 8601 instant with an offset"),
    ] = None
    to: Annotated[
        Annotated[str, Field(min_length=1, max_length=INSTANT_MAX)] | None,
        BeforeValidator(_empty_is_absent),
        Field(description="a date (included) or an instant (excluded)"),
        Invalid("must be a date (2026-03-02) or an ISO 8601 instant with an offset"),
    ] = None
    agent: Annotated[
        _Id | None,
        BeforeValidator(_empty_is_absent),
        Field(description="an agent who held the ticket at some time"),
        Invalid("must be an agent id"),
    ] = None
    status: Annotated[
        TicketStatus | None, BeforeValidator(_empty_is_absent), Invalid(_TICKET_STATUS_TEXT)
    ] = None
    tag: Annotated[
        Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH), AfterValidator(_tag)] | None,
        BeforeValidator(_empty_is_absent),
        Invalid(_TAG_TEXT),
    ] = None
    cursor: Annotated[
        Annotated[str, Field(max_length=HISTORY_CURSOR_MAX), AfterValidator(_check(valid_cursor))]
        | None,
        BeforeValidator(_empty_is_absent),
        Field(description="next_cursor of the previous page"),
        Invalid("must be the next_cursor of a previous page"),
    ] = None
    limit: Annotated[int, Field(ge=1, le=HISTORY_LIMIT_MAX), _range(1, HISTORY_LIMIT_MAX)] = (
        HISTORY_LIMIT_DEFAULT
    )


class HoursQuery(_Query):
    """`GET /numbers/{phone_number_id}/hours`."""

    at: Annotated[
        datetime | None,
        BeforeValidator(_at),
        Field(
            description="ISO 8601 instant with an offset or Z (a naive time is a 422); default now"
        ),
    ] = None


class AuditQuery(_Query):
    """`GET /numbers/{phone_number_id}/audit`."""

    limit: Annotated[int, Field(ge=1, le=AUDIT_LIMIT_MAX), _range(1, AUDIT_LIMIT_MAX)] = (
        AUDIT_LIMIT_DEFAULT
    )


class AfterHoursQuery(_Query):
    """`GET /numbers/{phone_number_id}/after-hours-contacts`."""

    requested_return: Annotated[
        RequestedReturn | None,
        Invalid(f"must be {', '.join(REQUESTED_RETURNS[:-1])} or {REQUESTED_RETURNS[-1]}"),
    ] = None
    message_sent: Annotated[bool | None, BeforeValidator(_bool)] = None


class TicketsQuery(_Query):
    """`GET /numbers/{phone_number_id}/tickets`."""

    status: Annotated[
        TicketStatus | None, BeforeValidator(_empty_is_absent), Invalid(_TICKET_STATUS_TEXT)
    ] = None
    limit: Annotated[int, Field(ge=1, le=TICKETS_LIMIT_MAX), _range(1, TICKETS_LIMIT_MAX)] = (
        TICKETS_LIMIT_MAX
    )


class EventsQuery(_Query):
    """`GET /agents/{agent_id}/events` (its `token` is the operation's `query_token`)."""

    last_event_id: Annotated[
        Annotated[str, Field(pattern=EVENT_ID_PATTERN)] | None,
        Field(description="resume after this event (the Last-Event-ID header does the same)"),
        Invalid("must be an event id such as 1700000000000-0", field="Last-Event-ID"),
    ] = None


# --- reading ----------------------------------------------------------------------------------


def read_query(request: web.Request, model: type[_Q]) -> _Q:
    """The request's query string validated into `model`.

    Raises:
        InvalidInputError: 422 naming the first offending parameter (in the model's field
            order), with the field's `Invalid` message when it has one.
    """
    # A MultiDict: indexing answers a repeated parameter's first value.
    raw = {name: request.query[name] for name in request.query}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(model, exc.errors(include_url=False)[0]) from None


def _invalid(model: type[BaseModel], error: ErrorDetails) -> InvalidInputError:
    name = str(error["loc"][0]) if error["loc"] else ""
    marker = None
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            marker = next((m for m in info.metadata if isinstance(m, Invalid)), None)
    field = (marker.field if marker is not None else None) or name
    # A validator's own words first, then the field's; pydantic's only for a field without.
    text = str(error.get("ctx", {}).get("error", "")) if error["type"] == "value_error" else ""
    if not text and marker is not None:
        text = marker.text
    if not text:
        return InvalidInputError(f"{name}: {error['msg']}", name or None)
    return InvalidInputError(f"{field} {text}", field)
