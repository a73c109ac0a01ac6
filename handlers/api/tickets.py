"""`/api/v1` tickets: list a number's tickets, read one, reply, close, transfer; portfolios.

Permissions (bot.domain.tickets): everybody attached to a number reads its tickets; only the agent
holding a ticket replies to it (anyone else gets 409 `served_by_another` naming the holder);
the holder, a manager of the number or an admin closes and transfers; managers and admins set
a contact's portfolio owner.

A ticket of a number the caller is not attached to does not exist for them: 404 with the body
of a missing ticket's, on every `/tickets/{id}` path (`visible_ticket`), so that no answer
tells whether another number's ticket exists. A 403 means "you can see this ticket, but may
not do that". Number paths (`/numbers/{id}/tickets`) keep their 403 outside the caller's
numbers: a caller names a number they may know (numbers are listed to their members, and the
phone_number_id is Meta's, not ours to hide), whereas a ticket id can only be learnt by seeing
the ticket.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Final

from aiohttp import web

from bot.appkeys import clock_key, queue_key, stores_key
from bot.domain import bodies, phones
from bot.domain.config import parse_body
from bot.domain.errors import ConflictError, InvalidInputError, NotFoundError
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.domain.tickets import (
    AGENT_QUIET_S,
    TICKET_STATUSES,
    OwnerInput,
    OwnerView,
    SentReply,
    Ticket,
    TicketCloseInput,
    TicketDetail,
    TicketMessage,
    TicketPage,
    TicketReplyInput,
    TicketTransferInput,
    can_manage_ticket,
    can_read_tickets,
    can_set_owner,
)
from bot.runtime.queue import enqueue_reply
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless

# Clients may retry a reply safely by sending the same Idempotency-Key.
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_IDEMPOTENCY_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
LIMIT_MAX: Final = 500
# Inbound messages of a ticket get their text from the contact's timeline, read this far back
# before the ticket was created (a ticket's first message may predate it by a retry or two).
TIMELINE_SLACK: Final = timedelta(days=1)
TIMELINE_READ_MAX: Final = 1000


async def visible_ticket(request: web.Request, ticket_id: str) -> Ticket:
    """The ticket, if the caller may read it (`bot.domain.tickets.can_read_tickets`): every handler
    of a `/tickets/{ticket_id}...` path starts here, whichever module it lives in.

    Raises:
        NotFoundError: there is no such ticket, or it belongs to a number the caller is not
            attached to; both answer the same 404, so that its existence is not revealed.
    """
    ticket = await request.app[stores_key].tickets.get(ticket_id)
    if ticket is None or not can_read_tickets(caller_of(request), ticket.phone_number_id):
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket


async def _ticket(request: web.Request) -> Ticket:
    """The ticket of the path (`visible_ticket`); 422 when the path holds no ticket id."""
    return await visible_ticket(request, path_id(request, "ticket_id"))


async def _body_or_empty(request: web.Request) -> object:
    return await read_json(request) if request.can_read_body else {}


async def list_tickets(request: web.Request) -> web.Response:
    """The number's tickets, newest first (waiting ones in queue order); `status` filters."""
    pnid = path_id(request, "phone_number_id")
    forbid_unless(can_read_tickets(caller_of(request), pnid), "not one of your numbers")
    status = request.query.get("status") or None
    if status is not None and status not in TICKET_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(TICKET_STATUSES)}", "status")
    raw_limit = request.query.get("limit", str(LIMIT_MAX))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIMIT_MAX:
        raise InvalidInputError(f"limit must be an integer from 1 to {LIMIT_MAX}", "limit")
    items = await request.app[stores_key].tickets.for_number(pnid, status, int(raw_limit))
    return model_response(TicketPage(items=items))


async def get_ticket(request: web.Request) -> web.Response:
    """One ticket with its messages (inbound text from the contact's timeline) and history."""
    ticket = await _ticket(request)
    stores = request.app[stores_key]
    messages = await stores.tickets.messages(ticket.id)
    inbound = {m.id for m in messages if m.direction == "in"}
    if inbound and ticket.contact_key:
        since = min(m.at for m in messages) - TIMELINE_SLACK
        entries = await stores.timeline.list(
            ticket.phone_number_id, ticket.contact_key, since=since, limit=TIMELINE_READ_MAX
        )
        found = {e.id: e for e in entries if e.id in inbound}
        messages = [
            TicketMessage(
                id=m.id,
                direction=m.direction,
                at=m.at,
                text=found[m.id].text,
                type=found[m.id].type,
            )
            if m.id in found
            else m
            for m in messages
        ]
    detail = TicketDetail(
        **ticket.model_dump(),
        messages=messages,
        history=await stores.tickets.history(ticket.id),
    )
    return model_response(detail)


async def reply(request: web.Request) -> web.Response:
    """The holding agent's text reply: recorded on the ticket, then queued to the outbox (202).

    409 `window_closed` outside the 24 hours after the contact's last message; 409
    `served_by_another` naming the agent who holds the ticket; 409 `not_assigned` while it
    waits in the queue. Idempotent with an `Idempotency-Key` header: the same key again
    answers the same message id and sends nothing twice.
    """
    ticket = await _ticket(request)
    caller = caller_of(request)
    data = parse_body(TicketReplyInput, await read_json(request))
    now = request.app[clock_key].now()
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and _IDEMPOTENCY_RE.fullmatch(key) is None:
        raise InvalidInputError(
            f"{IDEMPOTENCY_HEADER} must be 1-64 characters of A-Z a-z 0-9 _ . -",
            IDEMPOTENCY_HEADER,
        )
    message_id = f"agent:{ticket.id}:{key or uuid.uuid4().hex}"
    first = await send_agent_reply(request.app, ticket, caller.id, message_id, data.text, now)
    return model_response(
        SentReply(id=message_id, ticket_id=ticket.id, first_response=first), status=202
    )


async def send_agent_reply(
    app: web.Application, ticket: Ticket, author: str, message_id: str, text: str, now: datetime
) -> bool:
    """Record an agent's text reply on the ticket, queue it to the outbox, and hold the
    chatbot's auto-replies back meanwhile: the API's and the console's one path.

    Idempotent on `message_id`: a reply already recorded is queued again (a no-op once queued
    or sent, the outbox being idempotent on it) and answers as the first time did.

    Returns:
        Whether it was the ticket's first response.

    Raises:
        ConflictError: `window_closed` (24 hours since the customer's last message),
            `served_by_another` (naming the agent who holds the ticket), `not_assigned`,
            `closed`.
    """
    stores = app[stores_key]
    if not await stores.contacts.window_open(ticket.phone_number_id, ticket.contact_key, now):
        raise ConflictError(
            "window_closed",
            "the 24-hour window since the customer's last message is closed: "
            "only an approved template may go out",
        )
    first = False
    try:
        first = await stores.tickets.record_reply(ticket.id, author, message_id, text, now=now)
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
        app[queue_key],
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
            author=author,
        ),
    )
    await stores.throttle.mark_agent_active(
        ticket.phone_number_id, ticket.contact_key, AGENT_QUIET_S
    )
    return first


async def close_ticket(request: web.Request) -> web.Response:
    """Close a ticket (the holder, a manager of its number, an admin): the agent's slot frees
    and pulls the oldest waiting ticket. Idempotent: closing a closed ticket answers it as is.
    """
    ticket = await _ticket(request)
    # A closed ticket keeps the agent who held it: closing it again is theirs to do too.
    forbid_unless(
        can_manage_ticket(caller_of(request), ticket.phone_number_id, ticket.agent_id),
        "only the agent serving this ticket, a manager of its number or an admin",
    )
    data = parse_body(TicketCloseInput, await _body_or_empty(request))
    stores = request.app[stores_key]
    await stores.tickets.close(
        ticket.id,
        by=data.closed_by,
        actor=caller_of(request).id,
        now=request.app[clock_key].now(),
    )
    return model_response(await _reread(request, ticket.id))


async def transfer_ticket(request: web.Request) -> web.Response:
    """Move a ticket to another agent of its number (online, with a free slot) or back to its
    queue, keeping its place there (the holder, a manager of its number, an admin).

    409 `agent_unavailable`, `not_attached`, `same_agent` or `closed` when it cannot move.
    """
    ticket = await _ticket(request)
    caller = caller_of(request)
    holder = ticket.agent_id if ticket.status == "open" else None
    forbid_unless(
        can_manage_ticket(caller, ticket.phone_number_id, holder),
        "only the agent serving this ticket, a manager of its number or an admin",
    )
    body = await read_json(request)
    data = parse_body(TicketTransferInput, body)
    stores = request.app[stores_key]
    now = request.app[clock_key].now()
    if data.agent_id is not None:
        target = await stores.agents.get(data.agent_id)
        # Only admins may learn that an agent of other numbers exists (409 not_attached):
        # for anybody else such an agent is as unknown as one that does not exist.
        if target is None or not (caller.is_admin or ticket.phone_number_id in target.numbers):
            raise InvalidInputError(f"agent {data.agent_id} not found", "agent_id")
        await stores.tickets.transfer_to_agent(ticket.id, data.agent_id, actor=caller.id, now=now)
    else:
        if data.queue != ticket.phone_number_id:
            raise InvalidInputError(
                f"queue must be this ticket's number, {ticket.phone_number_id}", "queue"
            )
        config = await stores.numbers.config(ticket.phone_number_id)
        minutes = config.tickets.reroute_after_minutes if config is not None else 10
        await stores.tickets.transfer_to_queue(
            ticket.id, actor=caller.id, now=now, exclude_for=timedelta(minutes=minutes)
        )
    return model_response(await _reread(request, ticket.id))


async def _reread(request: web.Request, ticket_id: str) -> Ticket:
    ticket = await request.app[stores_key].tickets.get(ticket_id)
    if ticket is None:  # expired between the change and this read
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket


async def put_owner(request: web.Request) -> web.Response:
    """Set (or with null, clear) a contact's portfolio owner: an agent of the number, whom
    routing offers the contact's tickets first (managers of the number, admins). Idempotent.
    """
    pnid = path_id(request, "phone_number_id")
    forbid_unless(can_set_owner(caller_of(request), pnid), "admins and managers of the number")
    wa_id = request.match_info["wa_id"]
    if not 1 <= len(wa_id) <= 64:
        raise InvalidInputError("wa_id must be 1-64 characters", "wa_id")
    data = parse_body(OwnerInput, await read_json(request))
    stores = request.app[stores_key]
    if data.agent_id is not None:
        agent = await stores.agents.get(data.agent_id)
        if agent is None or pnid not in agent.numbers:
            raise InvalidInputError(f"agent {data.agent_id} does not serve {pnid}", "agent_id")
    contact = await stores.contacts.get(pnid, wa_id)
    key = contact.key if contact is not None else phones.contact_key(wa_id)
    await stores.tickets.set_owner(pnid, key, data.agent_id)
    return model_response(OwnerView(phone_number_id=pnid, wa_id=wa_id, agent_id=data.agent_id))
