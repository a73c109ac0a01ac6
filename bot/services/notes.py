"""Internal notes on a ticket or a contact: the desk's own remarks, never sent to the customer.

Permissions are those of reading: whoever may read the ticket (`tickets.visible_ticket`: a
ticket of another number is a 404, as a missing one) or the number's contacts (403 outside
the caller's numbers, 404 for a contact the number has not got) reads and writes its notes.
Nothing here calls the outbox or enqueues a job: a note cannot reach WhatsApp.

Retention: a ticket's notes are kept as long as the ticket (storage/notes.py); a contact's
90 days after the last one, as its timeline.
"""

from __future__ import annotations

import hashlib
import secrets

from bot.domain.auth import Caller
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.notes import Note, NoteInput
from bot.domain.tickets import Ticket
from bot.runtime.deps import Deps
from bot.services.contacts import require_attached
from bot.services.tickets import REPLY_KEY
from storage import Stores


def note_id(caller: Caller, key: str | None) -> str:
    """The note's id: derived from the caller and their idempotency key (the same key from
    another caller is another note), random without one.

    Raises:
        InvalidInputError: `key` is not 1-64 characters of A-Z a-z 0-9 _ . -
    """
    if key is None:
        return "N" + secrets.token_hex(10)
    if REPLY_KEY.fullmatch(key) is None:
        raise InvalidInputError("key must be 1-64 characters of A-Z a-z 0-9 _ . -", "key")
    return "N" + hashlib.sha256(f"{caller.id}\n{key}".encode()).hexdigest()[:20]


async def add_ticket_note(
    deps: Deps, caller: Caller, ticket: Ticket, note: NoteInput, *, key: str | None = None
) -> tuple[Note, bool]:
    """Add `caller`'s note to a ticket they may read (`tickets.visible_ticket`); the note and
    whether it is new. Idempotent on (`caller`, `key`): the same key answers the first note.

    Raises:
        InvalidInputError: a malformed `key`.
        NotFoundError: the ticket is gone.
        ConflictError: `too_many_notes`.
    """
    return await deps.stores.notes.add_to_ticket(
        ticket.id, note_id(caller, key), caller.id, note.text, now=deps.clock.now()
    )


async def ticket_notes(stores: Stores, ticket: Ticket) -> list[Note]:
    """The notes of a ticket the caller may read, oldest first."""
    return await stores.notes.for_ticket(ticket.id)


async def _contact_key(stores: Stores, caller: Caller, phone_number_id: str, wa_id: str) -> str:
    require_attached(caller, phone_number_id)
    contact = await stores.contacts.get(phone_number_id, wa_id)
    if contact is None:
        raise NotFoundError(f"no contact {wa_id} on number {phone_number_id}")
    return contact.key


async def add_contact_note(
    deps: Deps,
    caller: Caller,
    phone_number_id: str,
    wa_id: str,
    note: NoteInput,
    *,
    key: str | None = None,
) -> tuple[Note, bool]:
    """Add `caller`'s note to a contact of the number; the note and whether it is new.
    Idempotent on (`caller`, `key`), as `add_ticket_note`.

    Raises:
        ForbiddenError: the caller is not attached to the number.
        NotFoundError: the number has no such contact.
        InvalidInputError: a malformed `key`.
        ConflictError: `too_many_notes`.
    """
    note_key = note_id(caller, key)
    contact = await _contact_key(deps.stores, caller, phone_number_id, wa_id)
    return await deps.stores.notes.add_to_contact(
        phone_number_id, contact, note_key, caller.id, note.text, now=deps.clock.now()
    )


async def contact_notes(deps: Deps, caller: Caller, phone_number_id: str, wa_id: str) -> list[Note]:
    """A contact's notes of the last 90 days, oldest first.

    Raises:
        ForbiddenError: the caller is not attached to the number.
        NotFoundError: the number has no such contact.
    """
    contact = await _contact_key(deps.stores, caller, phone_number_id, wa_id)
    return await deps.stores.notes.for_contact(phone_number_id, contact, now=deps.clock.now())
