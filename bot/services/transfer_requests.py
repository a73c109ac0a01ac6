"""Transfer requests: an agent who finds a customer served by another agent asks to take the
ticket over; the holder, a manager of the number or an admin accepts or declines.

* Request: whoever may read the ticket (`tickets.visible_ticket`: 404 for another number's)
  and is an agent of its number (403 otherwise: only they can hold it). 409 `not_held` when
  nobody holds the ticket, `already_holder` when the caller does, `request_pending` while an
  earlier request waits. The holder's event stream gets `transfer.requested`.
* Answer: those who may transfer the ticket (`tickets.require_transfer`, else 403). Accepting
  moves the ticket with its history through `tickets.transfer` (the requester must be online
  with a free slot: 409 `agent_unavailable` otherwise, and the request stays pending). After
  the number's `tickets.transfer_request_minutes` a request can no longer be answered (409
  `request_expired`). The requester's event stream gets `transfer.answered`.

Request and answer are recorded in the ticket's history (storage/transfer_requests.py). Every
event carries `phone_number_id`, `ticket_id`, `wa_id` and `request_id`.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from bot.domain.auth import Caller
from bot.domain.config import Tickets
from bot.domain.errors import ConflictError, ForbiddenError, NotFoundError
from bot.domain.tickets import Ticket, TicketTransferInput
from bot.domain.transfers import TransferAnswer, TransferRequest
from bot.runtime.deps import Deps
from bot.services import tickets
from storage import Stores

REQUESTED = "transfer.requested"
ANSWERED = "transfer.answered"


def _event(ticket: Ticket, request: TransferRequest) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "phone_number_id": ticket.phone_number_id,
        "wa_id": ticket.contact.wa_id,
        "request_id": request.id,
        "requester": request.requester,
        "holder": request.holder,
        "status": request.status,
        "expires_at": request.expires_at.isoformat(),
        "answered_by": request.answered_by,
    }


async def _settings(stores: Stores, phone_number_id: str) -> Tickets:
    config = await stores.numbers.config(phone_number_id)
    # A number without settings any more has the default ticket settings.
    return config.tickets if config is not None else Tickets()


async def request(deps: Deps, caller: Caller, ticket: Ticket) -> TransferRequest:
    """Ask to take over `ticket` (one the caller may read) from the agent holding it.

    Raises:
        ForbiddenError: the caller is not an agent of the ticket's number.
        ConflictError: `not_held`, `already_holder`, `request_pending`, `ticket_changed`.
    """
    stores = deps.stores
    agent = await stores.agents.get(caller.id)
    if agent is None or ticket.phone_number_id not in agent.numbers:
        raise ForbiddenError("only an agent of this number may ask to serve its tickets")
    if ticket.status != "open" or ticket.agent_id is None:
        raise ConflictError("not_held", "nobody serves this ticket: it waits in the queue")
    if ticket.agent_id == caller.id:
        raise ConflictError("already_holder", "you already serve this ticket")
    now = deps.clock.now()
    settings = await _settings(stores, ticket.phone_number_id)
    made = await stores.transfer_requests.open(
        ticket.id,
        ticket.phone_number_id,
        "X" + secrets.token_hex(8),
        requester=caller.id,
        holder=ticket.agent_id,
        now=now,
        expires_at=now + timedelta(minutes=settings.transfer_request_minutes),
    )
    # After the change succeeded, and only on this first (non-idempotent) success.
    await stores.events.publish(made.holder, REQUESTED, _event(ticket, made))
    return made


async def answer(
    deps: Deps, caller: Caller, ticket: Ticket, request_id: str, answer: TransferAnswer
) -> TransferRequest:
    """Accept or decline the ticket's pending request `request_id`.

    Accepting transfers the ticket to the requester first (`tickets.transfer`, which keeps its
    messages and history) and records the answer only once that worked, so a refused
    transfer leaves the request pending for another try.

    Raises:
        NotFoundError: no such request on this ticket.
        ForbiddenError: see `tickets.require_transfer`.
        ConflictError: `request_expired`, `already_answered`; on accept also those of
            `tickets.transfer` (`agent_unavailable`, `not_attached`, `same_agent`, `closed`).
    """
    tickets.require_transfer(caller, ticket)
    # One instant for the whole answer: a request judged alive here is recorded as answered
    # below, even if its time runs out while the ticket moves.
    now = deps.clock.now()
    found = await deps.stores.transfer_requests.get(ticket.id)
    if found is None or found.id != request_id:
        raise NotFoundError(f"transfer request {request_id} not found")
    pending = found.at(now)
    if pending.status == "expired":
        # Records the expiry (history) if nobody did yet; raises request_expired.
        await deps.stores.transfer_requests.answer(
            ticket.id, request_id, answer, by=caller.id, now=now
        )
    if pending.status != "pending":
        raise ConflictError(
            "already_answered", f"transfer request {request_id} was {pending.status}"
        )
    if answer == "accepted":
        await tickets.transfer(
            deps, caller, ticket, TicketTransferInput(agent_id=pending.requester)
        )
    done = await deps.stores.transfer_requests.answer(
        ticket.id, request_id, answer, by=caller.id, now=now
    )
    await deps.stores.events.publish(done.requester, ANSWERED, _event(ticket, done))
    return done
