"""Ticket use cases: find a ticket the caller may read, reply to it, close it, transfer it,
tag it; a contact's portfolio owner.

Permissions are `bot.domain.tickets`': everybody attached to a number reads its tickets; only
the agent holding a ticket replies (the store refuses anybody else with a ConflictError that
names the holder); the holder, a manager of the number or an admin closes, transfers and tags.
A ticket of a number the caller is not attached to does not exist for them (NotFoundError,
the same as a missing one); a ForbiddenError means "you can see it, but may not do that".

The `require_*` checks are public so that a handler can refuse (403) before it parses a body,
as the API always did; each write re-checks them, so no caller can skip one.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Final

from bot.domain import bodies, phones
from bot.domain.auth import Caller
from bot.domain.config import Tickets
from bot.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.domain.tickets import (
    AGENT_QUIET_S,
    ClosedBy,
    OwnerView,
    SentReply,
    Ticket,
    TicketTagsInput,
    TicketTransferInput,
    can_manage_ticket,
    can_read_tickets,
    can_set_owner,
)
from bot.runtime.deps import Deps
from bot.runtime.queue import enqueue_reply
from storage import Stores

# A reply's idempotency key (the API's Idempotency-Key header, the console form's hidden key).
REPLY_KEY: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MANAGERS: Final = "only the agent serving this ticket, a manager of its number or an admin"


async def visible_ticket(stores: Stores, caller: Caller, ticket_id: str) -> Ticket:
    """The ticket, if `caller` may read it (`bot.domain.tickets.can_read_tickets`).

    Raises:
        NotFoundError: there is no such ticket, or it belongs to a number the caller is not
            attached to; both alike, so that its existence is not revealed.
    """
    ticket = await stores.tickets.get(ticket_id)
    if ticket is None or not can_read_tickets(caller, ticket.phone_number_id):
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket


def require_close(caller: Caller, ticket: Ticket) -> None:
    """Raise ForbiddenError unless `caller` may close `ticket`. A closed ticket keeps the agent
    who held it: closing it again is theirs to do too."""
    if not can_manage_ticket(caller, ticket.phone_number_id, ticket.agent_id):
        raise ForbiddenError(_MANAGERS)


def require_transfer(caller: Caller, ticket: Ticket) -> None:
    """Raise ForbiddenError unless `caller` may transfer `ticket`: only an open ticket has a
    holder."""
    holder = ticket.agent_id if ticket.status == "open" else None
    if not can_manage_ticket(caller, ticket.phone_number_id, holder):
        raise ForbiddenError(_MANAGERS)


async def reply(
    deps: Deps, caller: Caller, ticket: Ticket, text: str, *, key: str | None = None
) -> SentReply:
    """Record `caller`'s text reply on the ticket, queue it to the outbox, and hold the
    chatbot's auto-replies back meanwhile (`AGENT_QUIET_S`).

    Idempotent on `key` (message id `agent:<ticket>:<key>`; a fresh one without a key): a
    reply already recorded is queued again (a no-op once queued or sent, the outbox being
    idempotent on it) and answers as the first time did.

    Raises:
        InvalidInputError: `key` is not 1-64 characters of A-Z a-z 0-9 _ . -
        ConflictError: `window_closed` (24 hours since the customer's last message),
            `served_by_another` (naming the agent who holds the ticket), `not_assigned`,
            `closed`.
    """
    if key is not None and REPLY_KEY.fullmatch(key) is None:
        raise InvalidInputError("key must be 1-64 characters of A-Z a-z 0-9 _ . -", "key")
    message_id = f"agent:{ticket.id}:{key or uuid.uuid4().hex}"
    stores = deps.stores
    now = deps.clock.now()
    if not await stores.contacts.window_open(ticket.phone_number_id, ticket.contact_key, now):
        raise ConflictError(
            "window_closed",
            "the 24-hour window since the customer's last message is closed: "
            "only an approved template may go out",
        )
    first = False
    try:
        first = await stores.tickets.record_reply(ticket.id, caller.id, message_id, text, now=now)
    except ConflictError as exc:
        if exc.code == "served_by_another":
            holder = await stores.agents.get(exc.message)
            name = holder.name if holder is not None else exc.message
            raise ConflictError(
                "served_by_another", f"this customer is being served by {name}"
            ) from None
        if exc.code != "duplicate":
            raise
    await enqueue_reply(
        deps.redis,
        ReplyRequest(
            natural_key=message_id,
            phone_number_id=ticket.phone_number_id,
            wa_id=ticket.contact.wa_id,
            user_id=ticket.user_id,
            contact=ticket.contact_key,
            kind=ReplyKind.AGENT,
            body=bodies.text(bodies.recipient(ticket.contact.wa_id, ticket.user_id), text),
            free_form=True,
            ticket_id=ticket.id,
            author=caller.id,
        ),
    )
    await stores.throttle.mark_agent_active(
        ticket.phone_number_id, ticket.contact_key, AGENT_QUIET_S
    )
    return SentReply(id=message_id, ticket_id=ticket.id, first_response=first)


async def close(deps: Deps, caller: Caller, ticket: Ticket, closed_by: ClosedBy) -> Ticket:
    """Close the ticket (`require_close`): its agent's slot frees and pulls the oldest waiting
    ticket. Idempotent: closing a closed ticket changes nothing. Returns the ticket as stored.

    Raises:
        ForbiddenError: see `require_close`.
        NotFoundError: the ticket is gone (expired meanwhile).
    """
    require_close(caller, ticket)
    await deps.stores.tickets.close(ticket.id, by=closed_by, actor=caller.id, now=deps.clock.now())
    return await _reread(deps.stores, ticket.id)


async def transfer(deps: Deps, caller: Caller, ticket: Ticket, to: TicketTransferInput) -> Ticket:
    """Move the ticket (`require_transfer`) to another agent of its number (online, with a
    free slot), or back to its queue at its place there; the agent who held it is then not
    offered it again for the number's `reroute_after_minutes`. Returns the ticket as stored.

    Raises:
        ForbiddenError: see `require_transfer`.
        InvalidInputError: `agent_id` unknown (an agent of other numbers is unknown to all but
            admins), or `queue` not the ticket's own number.
        ConflictError: `agent_unavailable`, `not_attached`, `same_agent` or `closed`.
    """
    require_transfer(caller, ticket)
    stores = deps.stores
    now = deps.clock.now()
    if to.agent_id is not None:
        target = await stores.agents.get(to.agent_id)
        # Only admins may learn that an agent of other numbers exists (409 not_attached): for
        # anybody else such an agent is as unknown as one that does not exist.
        if target is None or not (caller.is_admin or ticket.phone_number_id in target.numbers):
            raise InvalidInputError(f"agent {to.agent_id} not found", "agent_id")
        await stores.tickets.transfer_to_agent(ticket.id, to.agent_id, actor=caller.id, now=now)
    else:
        if to.queue != ticket.phone_number_id:
            raise InvalidInputError(
                f"queue must be this ticket's number, {ticket.phone_number_id}", "queue"
            )
        config = await stores.numbers.config(ticket.phone_number_id)
        # A number without settings any more has the default ticket settings.
        settings = config.tickets if config is not None else Tickets()
        await stores.tickets.transfer_to_queue(
            ticket.id,
            actor=caller.id,
            now=now,
            exclude_for=timedelta(minutes=settings.reroute_after_minutes),
        )
    return await _reread(stores, ticket.id)


async def set_tags(deps: Deps, caller: Caller, ticket: Ticket, tags: TicketTagsInput) -> Ticket:
    """Replace the ticket's tags (as `TicketTagsInput` normalised them); whoever may close it
    (`require_close`). Idempotent: the same set changes nothing. Returns the ticket as stored.

    Raises:
        ForbiddenError: see `require_close`.
        NotFoundError: the ticket is gone.
    """
    require_close(caller, ticket)
    await deps.stores.tickets.set_tags(ticket.id, tags.tags, actor=caller.id, now=deps.clock.now())
    return await _reread(deps.stores, ticket.id)


def require_set_owner(caller: Caller, phone_number_id: str) -> None:
    """Raise ForbiddenError unless `caller` sets portfolios on the number (admins, its
    managers)."""
    if not can_set_owner(caller, phone_number_id):
        raise ForbiddenError("admins and managers of the number")


async def set_owner(
    deps: Deps, caller: Caller, phone_number_id: str, wa_id: str, agent_id: str | None
) -> OwnerView:
    """Set (or with None, clear) a contact's portfolio owner: an agent of the number, whom
    routing offers the contact's tickets first. Idempotent. A contact not seen yet is keyed
    by its wa_id, so the owner holds from its first message.

    Raises:
        ForbiddenError: see `require_set_owner`.
        InvalidInputError: `agent_id` does not serve the number.
    """
    require_set_owner(caller, phone_number_id)
    stores = deps.stores
    if agent_id is not None:
        agent = await stores.agents.get(agent_id)
        if agent is None or phone_number_id not in agent.numbers:
            raise InvalidInputError(
                f"agent {agent_id} does not serve {phone_number_id}", "agent_id"
            )
    contact = await stores.contacts.get(phone_number_id, wa_id)
    key = contact.key if contact is not None else phones.contact_key(wa_id)
    await stores.tickets.set_owner(phone_number_id, key, agent_id)
    return OwnerView(phone_number_id=phone_number_id, wa_id=wa_id, agent_id=agent_id)


async def _reread(stores: Stores, ticket_id: str) -> Ticket:
    ticket = await stores.tickets.get(ticket_id)
    if ticket is None:  # expired between the change and this read
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket
