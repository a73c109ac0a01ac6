"""The contact-centred view: one contact's 90-day conversation across tickets (messages and
notes), their current ticket, the 24-hour window and how the caller may resume it.

Permissions are the timeline's: whoever is attached to the number (admins: every number)
reads its contacts; 403 outside, 404 for a contact the number has not got.
"""

from __future__ import annotations

from typing import Final

from bot.domain.auth import Caller
from bot.domain.contact_view import (
    ActiveMessageQueued,
    ContactConversation,
    ServiceState,
    TicketState,
    WindowState,
    merge,
    resume,
    resume_case,
)
from bot.domain.contacts import HISTORY, has_history
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.models import WINDOW
from bot.runtime.deps import Deps
from bot.services.after_hours import ActiveMessageInput, queue_template
from bot.services.contacts import require_attached

# Timeline entries read at most: a contact's 90 days rarely hold more (as the timeline API).
SCAN_MAX: Final = 5000


async def conversation(
    deps: Deps, caller: Caller, phone_number_id: str, wa_id: str, *, q: str | None = None
) -> ContactConversation:
    """The contact's conversation view (see `bot.domain.contact_view.ContactConversation`).
    Reads only. `q` filters the items by text (messages and notes; case and accents ignored);
    the resume case never depends on it.

    Raises:
        ForbiddenError: the caller is not attached to the number.
        NotFoundError: the number is not served, or has no such contact.
    """
    require_attached(caller, phone_number_id)
    stores = deps.stores
    config = await stores.numbers.config(phone_number_id)
    if config is None:
        raise NotFoundError(f"number {phone_number_id} not found")
    contact = await stores.contacts.get(phone_number_id, wa_id)
    if contact is None:
        raise NotFoundError(f"no contact {wa_id} on number {phone_number_id}")
    now = deps.clock.now()
    entries = await stores.timeline.list(
        phone_number_id, contact.key, since=now - HISTORY, limit=SCAN_MAX + 1
    )
    truncated = len(entries) > SCAN_MAX
    entries = entries[-SCAN_MAX:]
    notes = await stores.notes.for_contact(phone_number_id, contact.key, now=now)
    held = await stores.tickets.open_for_contacts([(phone_number_id, contact.key)])
    ticket = held.get((phone_number_id, contact.key))
    state: ServiceState = "none"
    agent_id = agent_name = None
    if ticket is not None:
        state = "open" if ticket.status == "open" and ticket.agent_id else "waiting"
        if state == "open" and ticket.agent_id is not None:
            agent_id = ticket.agent_id
            agent = await stores.agents.get(agent_id)
            agent_name = agent.name if agent is not None else None
    ticket_state = TicketState(
        state=state,
        ticket_id=ticket.id if ticket is not None else None,
        agent_id=agent_id,
        agent_name=agent_name,
    )
    window_open = contact.window_open(now)
    window = WindowState(
        open=window_open,
        open_until=None if contact.last_inbound_at is None else contact.last_inbound_at + WINDOW,
    )
    history = bool(entries) or has_history(contact, now)
    case = resume_case(
        has_history=history,
        service=state,
        agent_id=ticket_state.agent_id,
        caller_id=caller.id,
        window_open=window_open,
    )
    return ContactConversation(
        number=phone_number_id,
        timezone=config.timezone,
        contact=contact,
        q=q,
        has_history=history,
        items=merge(entries, notes, q),
        truncated=truncated,
        ticket=ticket_state,
        window=window,
        resume=resume(case, contact, ticket_state),
    )


async def send_active_message(
    deps: Deps, caller: Caller, phone_number_id: str, wa_id: str, body: ActiveMessageInput
) -> ActiveMessageQueued:
    """Queue an approved template to a contact of the number, from the contact's view (the
    seed's "send active message on the same screen").

    The after-hours dialog's rules (bot.services.after_hours.send_active_message) without its
    row: the same template lookup and check, the same 24-hour mark per (contact, template)
    (so a template sent from either screen is not sent again from the other without
    `force`), and one `send_reply` job keyed by a natural key naming this call.

    Raises:
        ForbiddenError: the caller is not attached to the number.
        NotFoundError: the number is not served, or has no such contact.
        InvalidInputError: `template`, `variables` or `variables[i]`, as the after-hours send.
        ConflictError: `already_sent` within 24 hours, unless `body.force`.
    """
    require_attached(caller, phone_number_id)
    stores = deps.stores
    if await stores.numbers.config(phone_number_id) is None:
        raise NotFoundError(f"number {phone_number_id} not found")
    contact = await stores.contacts.get(phone_number_id, wa_id)
    if contact is None:
        raise NotFoundError(f"no contact {wa_id} on number {phone_number_id}")
    if contact.wa_id is None and contact.user_id is None:
        raise InvalidInputError("the contact has no number to send to", "wa_id")
    natural_key, _ = await queue_template(
        deps, caller, phone_number_id, contact.key, contact.wa_id, contact.user_id, body
    )
    return ActiveMessageQueued(id=natural_key, number=phone_number_id, wa_id=contact.wa_id)
