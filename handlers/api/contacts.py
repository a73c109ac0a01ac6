"""`/api/v1/contacts` and a number's contacts: search, listing, CSV import, timeline.

Permissions (bot.domain.auth): a contact belongs to a number; a caller sees the contacts of the
numbers they are attached to (admins: every number). The search spans those numbers and
silently leaves out the others; the per-number endpoints answer 403 for a number the caller
is not attached to, whether or not the contact exists. Anybody attached to a number may
import contacts into it (the desk's agents build their portfolios).
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from bot.appkeys import clock_key, deps_key, stores_key
from bot.domain import auth
from bot.domain.contacts import (
    HISTORY,
    ContactFilter,
    ContactHit,
    ContactPage,
    Cursor,
    Query,
    SearchPage,
    TimelineCursor,
    TimelinePage,
    timeline_page,
)
from bot.domain.contacts_import import FILE_FIELD, MAX_BYTES
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.models import Contact
from bot.services import contacts as contacts_service
from handlers.api import model_response, path_id
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.queries import CONTACT_ID_MAX as WA_ID_MAX
from handlers.api.queries import (
    ImportQuery,
    ImportToQuery,
    ListContactsQuery,
    SearchContactsQuery,
    TimelineQuery,
    read_query,
)

# Entries read for a text search or an older page: a contact's 90 days rarely hold more.
TIMELINE_SCAN_MAX: Final = 5000
# Room for the multipart envelope around a file of MAX_BYTES.
_MULTIPART_SLACK: Final = 64 * 1024

_NOT_ATTACHED: Final = "not attached to this number"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- path parameters (the query's: handlers.api.queries) ----------------------------------


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


async def _hits(request: web.Request, found: list[Contact]) -> list[ContactHit]:
    return await contacts_service.hits(request.app[deps_key], found)


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
    params = read_query(request, SearchContactsQuery)
    query = Query.parse(params.q)
    if query is None:
        raise InvalidInputError("q must hold a letter or a digit", "q")
    limit, number = params.limit, params.number
    if number is not None:
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
    params = read_query(request, ListContactsQuery)
    name, phone = params.name, params.phone
    name_query = Query.of_name(name) if name is not None else None
    if name is not None and name_query is None:
        raise InvalidInputError("name must hold a letter or a digit", "name")
    phone_query = Query.of_phone(phone) if phone is not None else None
    if phone is not None and phone_query is None:
        raise InvalidInputError("phone must hold at least 4 digits", "phone")
    since, until = params.from_, params.to
    if since is not None and until is not None and since > until:
        raise InvalidInputError("from must not be after to", "from")
    where = ContactFilter(
        name=name_query,
        phone=phone_query,
        email=params.email,
        city=params.city,
        document=params.document,
        id=params.id,
        since=since,
        until=until,
    )
    cursor = Cursor.parse(params.cursor) if params.cursor is not None else None
    limit = params.limit
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
    caller = caller_of(request)
    contacts_service.require_attached(caller, number)
    # 404 before the upload is read (the service checks again).
    if await request.app[stores_key].numbers.get(number) is None:
        raise NotFoundError(f"number {number} not found")
    country = read_query(request, ImportQuery).country
    data = await _upload(request)
    report = await contacts_service.import_contacts(
        request.app[deps_key], caller, number, data, country=country
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
    return await _import(request, read_query(request, ImportToQuery).number)


async def get_timeline(request: web.Request) -> web.Response:
    """A contact's messages in and out of the last 90 days: the newest `limit` (default 100,
    max 500) older than `cursor`, sorted by `order` (`desc`, default, or `asc`), those whose
    text contains `q` when given (accents and case ignored). 404 for an unknown contact."""
    number = _number(request)
    wa_id = _wa_id(request)
    params = read_query(request, TimelineQuery)
    q, order, limit = params.q, params.order, params.limit
    cursor = TimelineCursor.parse(params.cursor) if params.cursor is not None else None
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
