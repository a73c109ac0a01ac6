"""`/api/v1/contacts` and a number's contacts: search, listing, CSV import, timeline.

Permissions (bot.domain.auth): a contact belongs to a number; a caller sees the contacts of the
numbers they are attached to (admins: every number). The search spans those numbers and
silently leaves out the others; the per-number endpoints answer 403 for a number the caller
is not attached to, whether or not the contact exists. Anybody attached to a number may
import contacts into it (the desk's agents build their portfolios).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

from aiohttp import web

from bot.appkeys import clock_key, stores_key
from bot.domain import auth
from bot.domain.config import is_valid_id
from bot.domain.contacts import (
    HISTORY,
    ContactFilter,
    ContactHit,
    ContactPage,
    Cursor,
    ImportReport,
    ImportRowError,
    Query,
    SearchPage,
    ServedBy,
    TimelineCursor,
    TimelinePage,
    has_history,
    timeline_page,
)
from bot.domain.contacts_import import COUNTRY_PATTERN, FILE_FIELD, MAX_BYTES, parse_csv
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.models import Contact
from handlers.api import model_response, path_id
from handlers.api.auth import caller_of, forbid_unless

QUERY_MAX: Final = 100
FILTER_MAX: Final = 254
WA_ID_MAX: Final = 128
SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX = 20, 100
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 200
TIMELINE_LIMIT_DEFAULT, TIMELINE_LIMIT_MAX = 100, 500
# Entries read for a text search or an older page: a contact's 90 days rarely hold more.
TIMELINE_SCAN_MAX: Final = 5000
# Rows with errors listed in an import report (all are counted).
IMPORT_ERRORS_LISTED: Final = 200
# Room for the multipart envelope around a file of MAX_BYTES.
_MULTIPART_SLACK: Final = 64 * 1024

_NOT_ATTACHED: Final = "not attached to this number"
# `?from=2026-01-05T10:00:00+00:00` unencoded reaches us with the '+' decoded as a space.
_SPACE_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- query parameters -----------------------------------------------------------------------


def _int(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= high:
        raise InvalidInputError(f"{name} must be an integer from 1 to {high}", name)
    return value


def _text(request: web.Request, name: str, high: int = FILTER_MAX) -> str | None:
    """An optional text parameter; empty means absent."""
    raw = request.query.get(name)
    if raw is None or not raw.strip():
        return None
    if len(raw) > high:
        raise InvalidInputError(f"{name} has at most {high} characters", name)
    return raw.strip()


def _instant(request: web.Request, name: str) -> datetime | None:
    raw = _text(request, name, 64)
    if raw is None:
        return None
    try:
        at = datetime.fromisoformat(_SPACE_OFFSET.sub(r"+\1", raw))
    except ValueError:
        at = None
    if at is None or at.utcoffset() is None:
        raise InvalidInputError(
            f"{name} must be an ISO 8601 instant with an offset, e.g. 2026-01-05T10:00:00-03:00",
            name,
        )
    return at


def _order(request: web.Request) -> Literal["asc", "desc"]:
    raw = request.query.get("order", "desc")
    if raw == "asc":
        return "asc"
    if raw == "desc":
        return "desc"
    raise InvalidInputError("order must be asc or desc", "order")


def _number(request: web.Request) -> str:
    number = path_id(request, "phone_number_id")
    forbid_unless(auth.can_read_number(caller_of(request), number), _NOT_ATTACHED)
    return number


def _wa_id(request: web.Request) -> str:
    value = request.match_info["wa_id"]
    if not value or len(value) > WA_ID_MAX or _CONTROL.search(value):
        raise InvalidInputError(f"wa_id must be 1-{WA_ID_MAX} printable characters", "wa_id")
    return value


# --- answers ------------------------------------------------------------------------------


async def served_by(request: web.Request, contacts: list[Contact]) -> dict[str, ServedBy]:
    """The agent serving each contact right now, by `f"{number}:{key}"`; absent when none
    (no active ticket, or a ticket still waiting in the queue)."""
    stores = request.app[stores_key]
    tickets = await stores.tickets.open_for_contacts([(c.phone_number_id, c.key) for c in contacts])
    held = {pair: t.agent_id for pair, t in tickets.items() if t.agent_id}
    agents = {a.id: a for a in await stores.agents.get_many(sorted(set(held.values())))}
    return {
        f"{pnid}:{key}": ServedBy(agent_id=agent_id, name=agents[agent_id].name)
        for (pnid, key), agent_id in held.items()
        if agent_id in agents
    }


async def _hits(request: web.Request, contacts: list[Contact]) -> list[ContactHit]:
    now = request.app[clock_key].now()
    serving = await served_by(request, contacts)
    return [
        ContactHit(
            number=c.phone_number_id,
            contact=c,
            has_history=has_history(c, now),
            window_open=c.window_open(now),
            served_by=serving.get(f"{c.phone_number_id}:{c.key}"),
        )
        for c in contacts
    ]


# --- handlers -----------------------------------------------------------------------------


async def search_contacts(request: web.Request) -> web.Response:
    """Contacts by name or phone across the caller's numbers (admins: every served number).

    `q` is a phone number when it is digits (spaces, dashes, dots, parentheses and '+'
    allowed; country code, area code and the Brazilian ninth digit optional), otherwise a
    name: every word must start a word of the contact's name, accents and case ignored.
    `number` narrows to one number (403 when the caller is not attached to it). Latest
    interaction first, then by number and contact; at most `limit` (default 20, max 100).
    """
    caller = caller_of(request)
    stores = request.app[stores_key]
    text = _text(request, "q", QUERY_MAX)
    if text is None:
        raise InvalidInputError("q is required: a name or a phone number", "q")
    query = Query.parse(text)
    if query is None:
        raise InvalidInputError("q must hold a letter or a digit", "q")
    limit = _int(request, "limit", SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX)
    number = request.query.get("number")
    if number is not None:
        if not is_valid_id(number):
            raise InvalidInputError("number must be a phone_number_id", "number")
        forbid_unless(auth.can_read_number(caller, number), _NOT_ATTACHED)
        numbers = [number]
    elif caller.is_admin:
        numbers = await stores.numbers.ids()
    else:
        numbers = sorted(caller.numbers)
    result = await stores.contacts.search(numbers, query, limit)
    page = SearchPage(items=await _hits(request, result.contacts), truncated=result.truncated)
    return model_response(page)


async def list_contacts(request: web.Request) -> web.Response:
    """A number's contacts, latest interaction first, with filters: `name` (word prefixes),
    `phone` (any spelling), `email`, `city`, `document` (substrings, accents and case
    ignored), `id` (contact key, wa_id or user id), `from`/`to` (ISO instants bounding the
    last interaction). Pages of `limit` (default 50, max 200) with `cursor`."""
    number = _number(request)
    name = _text(request, "name")
    phone = _text(request, "phone")
    name_query = Query.of_name(name) if name is not None else None
    if name is not None and name_query is None:
        raise InvalidInputError("name must hold a letter or a digit", "name")
    phone_query = Query.of_phone(phone) if phone is not None else None
    if phone is not None and phone_query is None:
        raise InvalidInputError("phone must hold at least 4 digits", "phone")
    since, until = _instant(request, "from"), _instant(request, "to")
    if since is not None and until is not None and since > until:
        raise InvalidInputError("from must not be after to", "from")
    where = ContactFilter(
        name=name_query,
        phone=phone_query,
        email=_text(request, "email"),
        city=_text(request, "city"),
        document=_text(request, "document"),
        id=_text(request, "id", WA_ID_MAX),
        since=since,
        until=until,
    )
    raw_cursor = _text(request, "cursor", 64)
    cursor = Cursor.parse(raw_cursor) if raw_cursor is not None else None
    limit = _int(request, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX)
    contacts, next_cursor = await request.app[stores_key].contacts.page(
        number, where, cursor, limit
    )
    page = ContactPage(
        items=await _hits(request, contacts),
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )
    return model_response(page)


async def get_contact(request: web.Request) -> web.Response:
    """One contact of the number by wa_id (any spelling), user id or contact key."""
    number = _number(request)
    wa_id = _wa_id(request)
    contact = await request.app[stores_key].contacts.get(number, wa_id)
    if contact is None:
        raise NotFoundError(f"no contact {wa_id} on number {number}")
    return model_response((await _hits(request, [contact]))[0])


async def _upload(request: web.Request) -> bytes:
    """The CSV: the body itself (`text/csv`), or the `file` part of a multipart form."""
    multipart = request.content_type.startswith("multipart/")
    room = MAX_BYTES + (_MULTIPART_SLACK if multipart else 0)
    if request.content_length is not None and request.content_length > room:
        raise web.HTTPRequestEntityTooLarge(max_size=room, actual_size=request.content_length)
    if multipart:
        form = await request.post()
        field = form.get(FILE_FIELD)
        if field is None:
            raise InvalidInputError("the form has no `file` part", FILE_FIELD)
        if isinstance(field, str):
            data = field.encode()
        elif isinstance(field, bytes | bytearray):
            data = bytes(field)
        else:
            data = field.file.read()
    else:
        data = await request.read()
    if len(data) > MAX_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BYTES, actual_size=len(data))
    return data


async def _import(request: web.Request, number: str) -> web.Response:
    forbid_unless(auth.can_read_number(caller_of(request), number), _NOT_ATTACHED)
    stores = request.app[stores_key]
    if await stores.numbers.get(number) is None:
        raise NotFoundError(f"number {number} not found")
    country = request.query.get("country")
    if country is not None and not re.fullmatch(COUNTRY_PATTERN, country):
        raise InvalidInputError("country must be a calling code of 1-3 digits, e.g. 55", "country")
    parsed = parse_csv(await _upload(request), country=country)
    counts = await stores.contacts.import_rows(number, parsed.rows, request.app[clock_key].now())
    report = ImportReport(
        imported=counts.imported,
        updated=counts.updated,
        unchanged=counts.unchanged,
        errors=[
            ImportRowError(row=e.row, field=e.field, message=e.message)
            for e in parsed.errors[:IMPORT_ERRORS_LISTED]
        ],
        error_count=len(parsed.errors),
    )
    return model_response(report)


async def import_contacts(request: web.Request) -> web.Response:
    """Import a CSV into the number's contacts (see bot.domain.contacts_import for the format).

    Valid rows are stored, invalid ones reported by row and column; idempotent: the same
    file again reports every row unchanged. Imported contacts do not open the 24-hour
    window. `country` (a calling code, e.g. 55) makes numbers written without '+' national.
    413 above the size limit; 422 (field `file` or `phone`) for an unusable file.
    """
    return await _import(request, path_id(request, "phone_number_id"))


async def import_contacts_to(request: web.Request) -> web.Response:
    """`POST /api/v1/contacts/import?number=`: the same as the per-number import."""
    number = request.query.get("number")
    if number is None or not is_valid_id(number):
        raise InvalidInputError("number is required: the phone_number_id to import into", "number")
    return await _import(request, number)


async def get_timeline(request: web.Request) -> web.Response:
    """A contact's messages in and out of the last 90 days: the newest `limit` (default 100,
    max 500) older than `cursor`, sorted by `order` (`desc`, default, or `asc`), those whose
    text contains `q` when given (accents and case ignored). 404 for an unknown contact."""
    number = _number(request)
    wa_id = _wa_id(request)
    q = _text(request, "q", QUERY_MAX)
    order = _order(request)
    limit = _int(request, "limit", TIMELINE_LIMIT_DEFAULT, TIMELINE_LIMIT_MAX)
    raw_cursor = _text(request, "cursor", 300)
    cursor = TimelineCursor.parse(raw_cursor) if raw_cursor is not None else None
    stores = request.app[stores_key]
    contact = await stores.contacts.get(number, wa_id)
    if contact is None:
        raise NotFoundError(f"no contact {wa_id} on number {number}")
    now = request.app[clock_key].now()
    scan = limit + 1 if q is None and cursor is None else TIMELINE_SCAN_MAX
    entries = await stores.timeline.list(number, contact.key, since=now - HISTORY, limit=scan)
    items, next_cursor = timeline_page(entries, q=q, cursor=cursor, limit=limit, order=order)
    page = TimelinePage(
        number=number,
        contact=contact,
        window_open=contact.window_open(now),
        order=order,
        items=items,
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )
    return model_response(page)
