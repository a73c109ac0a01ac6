"""`/api/v1` tickets: list a number's tickets, read one, reply, close, transfer; portfolios.

Permissions (bot.domain.tickets): everybody attached to a number reads its tickets; only the agent
holding a ticket replies to it (anyone else gets 409 `served_by_another` naming the holder);
the holder, a manager of the number or an admin closes and transfers; managers and admins set
a contact's portfolio owner.

A ticket of a number the caller is not attached to does not exist for them: 404 with the body
of a missing ticket's, on every `/tickets/{id}` path (`bot.services.tickets.visible_ticket`),
so that no answer tells whether another number's ticket exists. A 403 means "you can see this
ticket, but may not do that". Number paths (`/numbers/{id}/tickets`) keep their 403 outside
the caller's numbers: a caller names a number they may know (numbers are listed to their
members, and the phone_number_id is Meta's, not ours to hide), whereas a ticket id can only be
learnt by seeing the ticket.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain.config import parse_body
from bot.domain.errors import InvalidInputError
from bot.domain.receipts import TypingView
from bot.domain.tickets import (
    OwnerInput,
    Ticket,
    TicketCloseInput,
    TicketPage,
    TicketReplyInput,
    TicketTransferInput,
    can_read_tickets,
)
from bot.services import conversation, receipts, tickets
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.queries import TicketsQuery, read_query

# Clients may retry a reply safely by sending the same Idempotency-Key.
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"


async def _ticket(request: web.Request) -> Ticket:
    """The ticket of the path, if the caller may read it (`tickets.visible_ticket`: 404 alike
    for a missing one and another number's); 422 when the path holds no ticket id."""
    return await tickets.visible_ticket(
        request.app[stores_key], caller_of(request), path_id(request, "ticket_id")
    )


async def _body_or_empty(request: web.Request) -> object:
    return await read_json(request) if request.can_read_body else {}


async def list_tickets(request: web.Request) -> web.Response:
    """The number's tickets, newest first (waiting ones in queue order); `status` filters."""
    pnid = path_id(request, "phone_number_id")
    forbid_unless(can_read_tickets(caller_of(request), pnid), "not one of your numbers")
    q = read_query(request, TicketsQuery)
    items = await request.app[stores_key].tickets.for_number(pnid, q.status, q.limit)
    return model_response(TicketPage(items=items))


async def get_ticket(request: web.Request) -> web.Response:
    """One ticket with its messages (inbound text from the contact's timeline) and history.

    Read by the agent holding it, it marks the customer's last message read on WhatsApp (once
    per message, when the number's `tickets.read_receipts` is on); anybody else reading it
    (a manager, an admin, a colleague) marks nothing (`bot.services.receipts`).
    """
    ticket = await _ticket(request)
    detail = await conversation.ticket_detail(request.app[stores_key], ticket)
    await receipts.conversation_opened(
        request.app[deps_key], caller_of(request), ticket, detail.messages
    )
    return model_response(detail)


async def typing(request: web.Request) -> web.Response:
    """The holding agent is typing: WhatsApp shows the customer "typing…" (202).

    Throttled to one indicator per 20 seconds per ticket; `typing` says what happened:
    "sent", "throttled" or "off" (not the holder, the number's `tickets.read_receipts` off,
    the 24-hour window closed). Never an error for those: the desk calls it on keystrokes.
    """
    ticket = await _ticket(request)
    result = await receipts.agent_typing(request.app[deps_key], caller_of(request), ticket)
    return model_response(TypingView(typing=result), status=202)


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
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and tickets.REPLY_KEY.fullmatch(key) is None:
        raise InvalidInputError(
            f"{IDEMPOTENCY_HEADER} must be 1-64 characters of A-Z a-z 0-9 _ . -",
            IDEMPOTENCY_HEADER,
        )
    sent = await tickets.reply(request.app[deps_key], caller, ticket, data.text, key=key)
    return model_response(sent, status=202)


async def close_ticket(request: web.Request) -> web.Response:
    """Close a ticket (the holder, a manager of its number, an admin): the agent's slot frees
    and pulls the oldest waiting ticket. Idempotent: closing a closed ticket answers it as is.
    """
    ticket = await _ticket(request)
    caller = caller_of(request)
    tickets.require_close(caller, ticket)  # 403 before the body is read
    data = parse_body(TicketCloseInput, await _body_or_empty(request))
    closed = await tickets.close(request.app[deps_key], caller, ticket, data.closed_by)
    return model_response(closed)


async def transfer_ticket(request: web.Request) -> web.Response:
    """Move a ticket to another agent of its number (online, with a free slot) or back to its
    queue, keeping its place there (the holder, a manager of its number, an admin).

    409 `agent_unavailable`, `not_attached`, `same_agent` or `closed` when it cannot move.
    """
    ticket = await _ticket(request)
    caller = caller_of(request)
    tickets.require_transfer(caller, ticket)  # 403 before the body is read
    data = parse_body(TicketTransferInput, await read_json(request))
    moved = await tickets.transfer(request.app[deps_key], caller, ticket, data)
    return model_response(moved)


async def put_owner(request: web.Request) -> web.Response:
    """Set (or with null, clear) a contact's portfolio owner: an agent of the number, whom
    routing offers the contact's tickets first (managers of the number, admins). Idempotent.
    """
    pnid = path_id(request, "phone_number_id")
    caller = caller_of(request)
    tickets.require_set_owner(caller, pnid)  # 403 before the path and body are read
    wa_id = request.match_info["wa_id"]
    if not 1 <= len(wa_id) <= 64:
        raise InvalidInputError("wa_id must be 1-64 characters", "wa_id")
    data = parse_body(OwnerInput, await read_json(request))
    view = await tickets.set_owner(request.app[deps_key], caller, pnid, wa_id, data.agent_id)
    return model_response(view)
