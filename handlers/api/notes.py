"""`/api/v1` internal notes on a ticket and on a contact: never sent to the customer.

Permissions (bot.services.notes): whoever reads the ticket reads and writes its notes (404 for
another number's ticket, as for a missing one); whoever is attached to the number reads and
writes its contacts' notes (403 outside the caller's numbers, 404 for an unknown contact).
A POST with an `Idempotency-Key` header is safe to retry: the same key from the same caller
answers the note it made the first time (200 instead of 201).
"""

from __future__ import annotations

import re
from typing import Final

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain.config import parse_body
from bot.domain.errors import InvalidInputError
from bot.domain.notes import NoteInput, NotePage
from bot.services import notes, tickets
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of
from handlers.api.queries import CONTACT_ID_MAX

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and tickets.REPLY_KEY.fullmatch(key) is None:
        raise InvalidInputError(
            f"{IDEMPOTENCY_HEADER} must be 1-64 characters of A-Z a-z 0-9 _ . -",
            IDEMPOTENCY_HEADER,
        )
    return key


def _wa_id(request: web.Request) -> str:
    value = request.match_info["wa_id"]
    if not value or len(value) > CONTACT_ID_MAX or _CONTROL.search(value):
        raise InvalidInputError(f"wa_id must be 1-{CONTACT_ID_MAX} printable characters", "wa_id")
    return value


async def add_ticket_note(request: web.Request) -> web.Response:
    """Add the caller's note to the ticket: 201 with the note (200 for a repeated key)."""
    caller = caller_of(request)
    ticket = await tickets.visible_ticket(
        request.app[stores_key], caller, path_id(request, "ticket_id")
    )
    key = _key(request)
    data = parse_body(NoteInput, await read_json(request))
    note, new = await notes.add_ticket_note(request.app[deps_key], caller, ticket, data, key=key)
    return model_response(note, status=201 if new else 200)


async def list_ticket_notes(request: web.Request) -> web.Response:
    """The ticket's notes, oldest first."""
    stores = request.app[stores_key]
    ticket = await tickets.visible_ticket(stores, caller_of(request), path_id(request, "ticket_id"))
    return model_response(NotePage(items=await notes.ticket_notes(stores, ticket)))


async def add_contact_note(request: web.Request) -> web.Response:
    """Add the caller's note to the number's contact: 201 with the note (200 for a repeated
    key)."""
    caller = caller_of(request)
    number = path_id(request, "phone_number_id")
    wa_id = _wa_id(request)
    key = _key(request)
    data = parse_body(NoteInput, await read_json(request))
    note, new = await notes.add_contact_note(
        request.app[deps_key], caller, number, wa_id, data, key=key
    )
    return model_response(note, status=201 if new else 200)


async def list_contact_notes(request: web.Request) -> web.Response:
    """The contact's notes of the last 90 days, oldest first."""
    items = await notes.contact_notes(
        request.app[deps_key],
        caller_of(request),
        path_id(request, "phone_number_id"),
        _wa_id(request),
    )
    return model_response(NotePage(items=items))
