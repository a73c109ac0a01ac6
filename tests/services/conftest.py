"""Fixtures of the service tests: the real `Deps` (`open_deps`) on the test Redis and the fake
Graph API, no HTTP; and a desk built through the stores: a number, its agents, customers who
wrote (contact, timeline entry, ticket), as the inbound jobs leave them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from arq.constants import default_queue_name, job_key_prefix

from bot.deps import open_deps
from bot.domain.auth import Caller, Role
from bot.domain.clock import FixedClock
from bot.domain.config import AgentInput, AgentStatus
from bot.domain.models import InboundMessage
from bot.domain.tickets import Ticket, TicketRequest
from bot.runtime.deps import Deps
from bot.settings import Settings

PNID = "1000"
OTHER_PNID = "2000"
ADMIN = Caller(id="admin", role="admin")


@pytest.fixture(name="deps")
async def fixture_deps(settings: Settings, clock: FixedClock) -> AsyncIterator[Deps]:
    async with open_deps(settings, clock=clock) as deps:
        yield deps


async def serve(deps: Deps, number: str = PNID, **tickets: object) -> None:
    """A number open around the clock (ticket settings from `tickets`)."""
    body = {"timezone": "UTC", "service_hours": {"always_open": True}, "tickets": tickets}
    await deps.stores.numbers.put(number, body, actor="test", at=deps.clock.now())


async def agent(
    deps: Deps,
    agent_id: str,
    numbers: tuple[str, ...] = (PNID,),
    *,
    role: Role = "agent",
    status: AgentStatus = "online",
    slots: int = 3,
) -> Caller:
    """An agent stored with `status`; the caller it authenticates as."""
    data = AgentInput(name=agent_id.title(), numbers=numbers, role=role, slots=slots)
    await deps.stores.agents.put(agent_id, data, at=deps.clock.now())
    await deps.stores.agents.set_status(agent_id, status, at=deps.clock.now())
    return Caller(id=agent_id, role=role, numbers=frozenset(numbers))


async def customer_writes(
    deps: Deps, wa_id: str, text: str, *, wamid: str, number: str = PNID, ago_s: int = 60
) -> Ticket:
    """What the inbound jobs leave for a customer's text: the contact (its window open), the
    timeline entry with the text, and the ticket (routed to a free agent, if any)."""
    at = deps.clock.now() - timedelta(seconds=ago_s)
    message = InboundMessage.from_claim(
        {
            "phone_number_id": number,
            "contact": {"wa_id": wa_id, "profile": {"name": "Carla"}},
            "message": {
                "id": wamid,
                "from": wa_id,
                "timestamp": str(int(at.timestamp())),
                "type": "text",
                "text": {"body": text},
            },
        }
    )
    contact = await deps.stores.contacts.upsert_from_inbound(message)
    await deps.stores.timeline.add_inbound(message, key=contact.key)
    opened = await deps.stores.tickets.open_or_attach(
        TicketRequest(
            phone_number_id=number,
            contact=contact.key,
            wa_id=wa_id,
            name="Carla",
            natural_key=wamid,
            wamid=wamid,
            at=at,
        ),
        now=deps.clock.now(),
    )
    ticket = await deps.stores.tickets.get(opened.ticket_id)
    assert ticket is not None
    return ticket


async def queued_jobs(deps: Deps) -> list[str]:
    """The ids of the jobs waiting in arq's queue."""
    members = await deps.redis.zrange(default_queue_name, 0, -1)
    return sorted(m.decode() for m in members)


async def job_exists(deps: Deps, job_id: str) -> bool:
    return bool(await deps.redis.exists(job_key_prefix + job_id))
