"""bot.services.tickets and bot.services.conversation without HTTP: reply, close, transfer,
who may do what, and the one join of a ticket's messages with their text."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from bot.domain.tickets import TicketTagsInput, TicketTransferInput
from bot.runtime.deps import Deps
from bot.runtime.queue import reply_job_id
from bot.services import conversation, tickets
from tests.services.conftest import (
    ADMIN,
    OTHER_PNID,
    PNID,
    agent,
    customer_writes,
    job_exists,
    serve,
)

CUSTOMER = "5511987654321"


async def test_reply_is_recorded_queued_once_and_idempotent_on_its_key(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.R1")
    assert ticket.agent_id == "ana"
    first = await tickets.reply(deps, ana, ticket, "Olá, Carla!", key="k1")
    again = await tickets.reply(deps, ana, ticket, "Olá, Carla!", key="k1")
    assert first.id == again.id == f"agent:{ticket.id}:k1"
    assert first.first_response is True
    assert await job_exists(deps, reply_job_id(first.id))
    messages = await conversation.conversation(deps.stores, ticket)
    assert [(m.direction, m.text) for m in messages] == [("in", "Oi"), ("out", "Olá, Carla!")]
    # The chatbot keeps quiet while an agent talks to the customer.
    assert await deps.stores.throttle.agent_active(PNID, ticket.contact_key)


async def test_only_the_holder_replies_and_the_refusal_names_them(deps: Deps) -> None:
    await serve(deps)
    await agent(deps, "ana", slots=1)
    bob = await agent(deps, "bob", status="break")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.R2")
    with pytest.raises(ConflictError) as refused:
        await tickets.reply(deps, bob, ticket, "Eu atendo!")
    assert refused.value.code == "served_by_another"
    assert "Ana" in refused.value.message


async def test_a_reply_after_the_24_hour_window_is_refused(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.R3", ago_s=25 * 3600)
    with pytest.raises(ConflictError) as refused:
        await tickets.reply(deps, ana, ticket, "Desculpe a demora")
    assert refused.value.code == "window_closed"


async def test_a_malformed_reply_key_is_refused(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.R4")
    with pytest.raises(InvalidInputError) as refused:
        await tickets.reply(deps, ana, ticket, "Olá", key="not a key!")
    assert refused.value.field == "key"


async def test_another_numbers_ticket_does_not_exist_for_the_caller(deps: Deps) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    await agent(deps, "ana")
    zed = await agent(deps, "zed", (OTHER_PNID,))
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.V1")
    with pytest.raises(NotFoundError):
        await tickets.visible_ticket(deps.stores, zed, ticket.id)
    with pytest.raises(NotFoundError):
        await tickets.visible_ticket(deps.stores, ADMIN, "T-missing")
    assert (await tickets.visible_ticket(deps.stores, ADMIN, ticket.id)).id == ticket.id


async def test_close_is_for_the_holder_a_manager_or_an_admin(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana")
    bob = await agent(deps, "bob", status="break")
    mara = await agent(deps, "mara", role="manager", status="invisible")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.C1")
    assert ticket.agent_id == "ana"
    with pytest.raises(ForbiddenError):
        await tickets.close(deps, bob, ticket, "agent")
    await tickets.reply(deps, ana, ticket, "Resolvido?")
    closed = await tickets.close(deps, mara, ticket, "customer")
    assert (closed.status, closed.closed_by) == ("closed", "customer")
    # Idempotent: closing it again answers it as it is; a closed ticket stays its agent's.
    assert (await tickets.close(deps, ana, closed, "agent")).closed_by == "customer"


async def test_transfer_to_the_queue_and_to_an_agent(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana", slots=1)
    await agent(deps, "bob", status="break")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.T1")
    assert ticket.agent_id == "ana"
    back = await tickets.transfer(deps, ana, ticket, TicketTransferInput(queue=PNID))
    assert (back.status, back.agent_id) == ("transferred", None)
    with pytest.raises(InvalidInputError) as wrong_queue:
        await tickets.transfer(deps, ADMIN, back, TicketTransferInput(queue=OTHER_PNID))
    assert wrong_queue.value.field == "queue"
    with pytest.raises(InvalidInputError) as unknown:
        await tickets.transfer(deps, ADMIN, back, TicketTransferInput(agent_id="nobody"))
    assert unknown.value.field == "agent_id"
    with pytest.raises(ConflictError) as unavailable:  # bob is on a break
        await tickets.transfer(deps, ADMIN, back, TicketTransferInput(agent_id="bob"))
    assert unavailable.value.code == "agent_unavailable"


async def test_a_number_without_settings_reroutes_after_the_default_period(
    deps: Deps,
) -> None:
    """The queue transfer of a ticket whose number lost its settings keeps the holder out for
    the default `reroute_after_minutes` (no magic number in the API or the console)."""
    await serve(deps)
    ana = await agent(deps, "ana", slots=1)
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.T2")
    await deps.stores.numbers.delete(PNID, actor="test", at=deps.clock.now())
    await tickets.transfer(deps, ana, ticket, TicketTransferInput(queue=PNID))
    # Ana has a free slot again, yet the ticket is not offered back to her at once...
    assert (await deps.stores.tickets.drain([PNID], now=deps.clock.now())) == []
    # ...only once the default period (10 minutes) has passed.
    later = deps.clock.now() + timedelta(minutes=10, seconds=1)
    routed = await deps.stores.tickets.drain([PNID], now=later)
    assert [r.agent_id for r in routed] == ["ana"]


async def test_set_owner_is_for_managers_and_names_a_foreign_agent(deps: Deps) -> None:
    await serve(deps)
    await serve(deps, OTHER_PNID)
    ana = await agent(deps, "ana")
    await agent(deps, "zed", (OTHER_PNID,))
    mara = await agent(deps, "mara", role="manager")
    with pytest.raises(ForbiddenError):
        await tickets.set_owner(deps, ana, PNID, CUSTOMER, "ana")
    with pytest.raises(InvalidInputError) as foreign:
        await tickets.set_owner(deps, mara, PNID, CUSTOMER, "zed")
    assert foreign.value.field == "agent_id"
    view = await tickets.set_owner(deps, mara, PNID, CUSTOMER, "ana")
    assert view.agent_id == "ana"


async def test_tags_are_set_by_whoever_may_close_the_ticket(deps: Deps) -> None:
    await serve(deps)
    ana = await agent(deps, "ana", slots=1)
    bob = await agent(deps, "bob")
    ticket = await customer_writes(deps, CUSTOMER, "Oi", wamid="wamid.G1")
    assert ticket.agent_id == "ana"
    with pytest.raises(ForbiddenError):
        await tickets.set_tags(deps, bob, ticket, TicketTagsInput(tags=("urgente",)))
    tagged = await tickets.set_tags(deps, ana, ticket, TicketTagsInput(tags=("Urgente", "vip")))
    assert tagged.tags == ("urgente", "vip")


async def test_the_conversation_finds_a_text_behind_1500_later_timeline_entries(
    deps: Deps,
) -> None:
    """One cap for the ticket page, the API detail and the transcript: the first message's
    text is found behind 1500 later entries of the contact's timeline (the pages read only
    the latest 1000 before, and showed it without its text while the PDF had it)."""
    await serve(deps)
    await agent(deps, "ana")
    ticket = await customer_writes(deps, CUSTOMER, "A primeira", wamid="wamid.CAP0", ago_s=4000)
    for i in range(1500):
        await customer_writes(deps, CUSTOMER, f"m{i}", wamid=f"wamid.CAP{i + 1}", ago_s=3000 - i)
    messages = await conversation.conversation(deps.stores, ticket)
    assert messages[0].text == "A primeira"
    assert len(messages) == 1501
    assert all(m.text is not None for m in messages)
    detail = await conversation.ticket_detail(deps.stores, ticket)
    assert detail.messages == messages
    assert [e.type for e in detail.history][:1] == ["created"]
