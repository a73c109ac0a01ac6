"""bot.services.transfer_requests without HTTP: an agent asks for a served ticket, the holder
(or a manager) accepts or declines, and an unanswered request expires after the number's
`tickets.transfer_request_minutes`; each step lands in the ticket's history and on the right
agent's event stream."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.auth import Caller
from bot.domain.errors import ConflictError, ForbiddenError, NotFoundError
from bot.domain.tickets import Ticket
from bot.domain.transfers import TransferAnswer
from bot.runtime.deps import Deps
from bot.services import tickets, transfer_requests
from storage.events import START
from tests.services.conftest import ADMIN, OTHER_PNID, PNID, agent, customer_writes, serve

CUSTOMER = "5511987654321"
ANSWERS: tuple[TransferAnswer, ...] = ("accepted", "declined")


async def _served(deps: Deps, minutes: int | None = None) -> tuple[Ticket, Caller, Caller]:
    """A ticket held by ana, and bob, another online agent of the number, who wants it (a
    request may be answered for `minutes`; None: the default)."""
    if minutes is None:
        await serve(deps)
    else:
        await serve(deps, transfer_request_minutes=minutes)
    ana = await agent(deps, "ana")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.X1")
    assert ticket.agent_id == "ana"
    bob = await agent(deps, "bob")
    return ticket, ana, bob


async def _events(deps: Deps, agent_id: str, type_: str) -> list[dict[str, object]]:
    return [e.data for e in await deps.stores.events.read(agent_id, START) if e.type == type_]


async def _history(deps: Deps, ticket_id: str) -> list[str]:
    return [e.type for e in await deps.stores.tickets.history(ticket_id)]


async def test_accepting_moves_the_ticket_to_the_requester_with_its_history(deps: Deps) -> None:
    ticket, ana, bob = await _served(deps)
    made = await transfer_requests.request(deps, bob, ticket)
    assert (made.status, made.requester, made.holder) == ("pending", "bob", "ana")
    assert made.expires_at == made.created_at + timedelta(minutes=5)  # the default
    [asked] = await _events(deps, "ana", transfer_requests.REQUESTED)
    assert asked["phone_number_id"] == PNID
    assert (asked["request_id"], asked["requester"]) == (made.id, "bob")

    done = await transfer_requests.answer(deps, ana, ticket, made.id, "accepted")
    assert (done.status, done.answered_by) == ("accepted", "ana")
    moved = await deps.stores.tickets.get(ticket.id)
    assert moved is not None
    assert (moved.status, moved.agent_id) == ("open", "bob")
    [answered] = await _events(deps, "bob", transfer_requests.ANSWERED)
    assert answered["phone_number_id"] == PNID
    assert (answered["status"], answered["answered_by"]) == ("accepted", "ana")
    history = await _history(deps, ticket.id)
    assert history[-3:] == ["transfer_requested", "transferred", "transfer_accepted"]
    assert history[0] == "created"  # the ticket's past moved with it
    # Answering again: already answered, nothing moves.
    with pytest.raises(ConflictError) as info:
        await transfer_requests.answer(deps, ADMIN, moved, made.id, "declined")
    assert info.value.code == "already_answered"


async def test_declining_keeps_the_ticket_with_its_holder(deps: Deps) -> None:
    ticket, ana, bob = await _served(deps)
    made = await transfer_requests.request(deps, bob, ticket)
    done = await transfer_requests.answer(deps, ana, ticket, made.id, "declined")
    assert done.status == "declined"
    kept = await deps.stores.tickets.get(ticket.id)
    assert kept is not None
    assert kept.agent_id == "ana"
    [answered] = await _events(deps, "bob", transfer_requests.ANSWERED)
    assert answered["status"] == "declined"
    assert (await _history(deps, ticket.id))[-2:] == ["transfer_requested", "transfer_declined"]
    # Declined is not pending: bob may ask again.
    again = await transfer_requests.request(deps, bob, ticket)
    assert again.id != made.id


async def test_a_request_expires_after_the_number_s_setting(deps: Deps) -> None:
    ticket, ana, bob = await _served(deps, 10)
    made = await transfer_requests.request(deps, bob, ticket)
    assert made.expires_at == made.created_at + timedelta(minutes=10)
    deps.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]  # FixedClock
    with pytest.raises(ConflictError) as info:
        await transfer_requests.answer(deps, ana, ticket, made.id, "accepted")
    assert info.value.code == "request_expired"
    kept = await deps.stores.tickets.get(ticket.id)
    assert kept is not None
    assert kept.agent_id == "ana"
    assert (await _history(deps, ticket.id))[-2:] == ["transfer_requested", "transfer_expired"]
    with pytest.raises(ConflictError) as info:
        await transfer_requests.answer(deps, ana, ticket, made.id, "declined")
    assert info.value.code == "request_expired"
    # Expired is not pending: a new request may be made and accepted in time.
    again = await transfer_requests.request(deps, bob, ticket)
    deps.clock.advance(timedelta(minutes=9))  # type: ignore[attr-defined]
    assert (await transfer_requests.answer(deps, ana, ticket, again.id, "accepted")).status == (
        "accepted"
    )


async def test_an_unanswered_expired_request_does_not_block_a_new_one(deps: Deps) -> None:
    ticket, _, bob = await _served(deps)
    first = await transfer_requests.request(deps, bob, ticket)
    with pytest.raises(ConflictError) as info:
        await transfer_requests.request(deps, bob, ticket)
    assert info.value.code == "request_pending"
    deps.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    second = await transfer_requests.request(deps, bob, ticket)
    assert second.id != first.id
    history = await _history(deps, ticket.id)
    assert history[-3:] == ["transfer_requested", "transfer_expired", "transfer_requested"]


async def test_who_may_request_and_answer(deps: Deps) -> None:
    ticket, ana, bob = await _served(deps)
    with pytest.raises(ConflictError) as info:
        await transfer_requests.request(deps, ana, ticket)
    assert info.value.code == "already_holder"
    # Another number's agent: the ticket does not exist for them.
    carl = await agent(deps, "carl", (OTHER_PNID,))
    with pytest.raises(NotFoundError):
        await tickets.visible_ticket(deps.stores, carl, ticket.id)
    # An admin without an agent record could never hold it.
    with pytest.raises(ForbiddenError):
        await transfer_requests.request(deps, ADMIN, ticket)
    made = await transfer_requests.request(deps, bob, ticket)
    # The requester cannot accept their own request; a third agent cannot either.
    dave = await agent(deps, "dave")
    for who in (bob, dave):
        for answer in ANSWERS:
            with pytest.raises(ForbiddenError):
                await transfer_requests.answer(deps, who, ticket, made.id, answer)
    with pytest.raises(NotFoundError):
        await transfer_requests.answer(deps, ana, ticket, "Xnot-a-request", "accepted")
    # A manager of the number may answer for the holder.
    mara = await agent(deps, "mara", role="manager")
    done = await transfer_requests.answer(deps, mara, ticket, made.id, "accepted")
    assert done.answered_by == "mara"


async def test_a_waiting_ticket_cannot_be_requested(deps: Deps) -> None:
    await serve(deps)
    waiting = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.X2")
    assert waiting.status == "waiting"
    bob = await agent(deps, "bob", status="break")
    with pytest.raises(ConflictError) as info:
        await transfer_requests.request(deps, bob, waiting)
    assert info.value.code == "not_held"


async def test_a_refused_transfer_leaves_the_request_pending(deps: Deps) -> None:
    ticket, ana, bob = await _served(deps)
    made = await transfer_requests.request(deps, bob, ticket)
    await deps.stores.agents.set_status("bob", "break", at=deps.clock.now())
    with pytest.raises(ConflictError) as info:
        await transfer_requests.answer(deps, ana, ticket, made.id, "accepted")
    assert info.value.code == "agent_unavailable"
    stored = await deps.stores.transfer_requests.get(ticket.id)
    assert stored is not None
    assert stored.status == "pending"
    await deps.stores.agents.set_status("bob", "online", at=deps.clock.now())
    assert (await transfer_requests.answer(deps, ana, ticket, made.id, "accepted")).status == (
        "accepted"
    )
