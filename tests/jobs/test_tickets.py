"""Ticket jobs with real burst workers: open_ticket (idempotent, many workers at once),
drain_queue (an agent comes online), the welcome reply, and the sweep that leaves nothing
stuck (offline agents, unanswered tickets, lost customers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis
from arq.worker import Worker

from bot.deps import open_deps, open_redis
from bot.domain.clock import FixedClock
from bot.domain.config import AgentInput, AgentStatus
from bot.domain.models import InboundMessage
from bot.domain.tickets import TicketRequest
from bot.runtime import queue
from bot.runtime.deps import Deps
from bot.settings import Settings
from bot.simulate import build_payload
from bot.worker import worker_settings
from jobs import deps_key
from jobs.tickets import open_ticket, sweep_tickets
from storage import Stores
from tests.graph_fake import FakeGraphAPI
from tests.webhooks import post_webhook

PNID = "106540352242922"
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture(name="deps")
async def fixture_deps(settings: Settings, clock: FixedClock) -> AsyncIterator[Deps]:
    async with open_deps(settings, clock=clock) as deps:
        yield deps


@pytest.fixture(name="pool")
async def fixture_pool(settings: Settings) -> AsyncIterator[ArqRedis]:
    pool = open_redis(settings)
    yield pool
    await pool.aclose(close_connection_pool=True)


async def serve(stores: Stores, clock: FixedClock, **tickets: Any) -> None:
    body = {"timezone": "UTC", "service_hours": {"always_open": True}, "tickets": tickets}
    await stores.numbers.put(PNID, body, actor="test", at=clock.now())


async def add_agent(
    stores: Stores,
    clock: FixedClock,
    agent_id: str,
    *,
    slots: int = 3,
    status: AgentStatus = "online",
) -> None:
    data = AgentInput(name=agent_id.title(), numbers=(PNID,), slots=slots)
    await stores.agents.put(agent_id, data, at=clock.now())
    await stores.agents.set_status(agent_id, status, at=clock.now())


async def customer_is_known(stores: Stores, request: TicketRequest) -> None:
    """What the inbound job did before: the contact exists (its 24-hour window is open)."""
    message = InboundMessage.from_claim(
        {
            "phone_number_id": PNID,
            "contact": {"wa_id": request.wa_id},
            "message": {
                "id": request.wamid,
                "from": request.wa_id,
                "timestamp": str(int(request.at.timestamp())),
                "type": "text",
                "text": {"body": "hi"},
            },
        }
    )
    await stores.contacts.upsert_from_inbound(message)


def ticket_request(n: int, clock: FixedClock, *, key: str | None = None) -> TicketRequest:
    wa_id = f"55119{n:08d}"
    return TicketRequest(
        phone_number_id=PNID,
        contact=wa_id,
        wa_id=wa_id,
        name=f"Customer {n}",
        natural_key=key or f"wamid.J{n}",
        wamid=key or f"wamid.J{n}",
        at=clock.now() - timedelta(seconds=300 - n),
    )


async def test_a_retried_job_never_opens_a_second_ticket(
    deps: Deps, clock: FixedClock, pool: ArqRedis, make_worker: Callable[..., Worker]
) -> None:
    await serve(deps.stores, clock)
    request = ticket_request(1, clock)
    assert await queue.enqueue_open_ticket(pool, request)
    assert not await queue.enqueue_open_ticket(pool, request)  # already queued
    await make_worker().run_check()
    # The same job run again (arq retries a job whose worker died): no second ticket.
    outcome = await open_ticket({deps_key: deps}, request.model_dump(mode="json"))
    assert outcome.startswith("duplicate:")
    assert len(await deps.stores.tickets.for_number(PNID)) == 1


async def test_many_workers_at_once_never_exceed_a_slot(
    deps: Deps, clock: FixedClock, pool: ArqRedis, make_worker: Callable[..., Worker]
) -> None:
    await serve(deps.stores, clock)
    for i in range(5):
        await add_agent(deps.stores, clock, f"agent{i}", slots=3)
    requests = [ticket_request(i, clock) for i in range(200)]
    for request in requests:
        await queue.enqueue_open_ticket(pool, request)
    workers = [make_worker(max_jobs=20) for _ in range(4)]
    done = await asyncio.gather(*(w.run_check() for w in workers))
    assert sum(done) == 200
    # A redelivery after everything ran: jobs again, and still 200 tickets.
    for request in requests[:50]:
        await queue.enqueue_open_ticket(pool, request)
    await make_worker().run_check()
    tickets = deps.stores.tickets
    assert len(await tickets.for_number(PNID)) == 200
    held = [h.ticket_id for i in range(5) for h in await tickets.held_by(f"agent{i}")]
    assert len(held) == len(set(held)) == 15
    waiting = await tickets.queue(PNID)
    assert len(waiting) == 185
    places = [t.queued_at for t in await tickets.get_many(waiting)]
    assert places == sorted(places)


async def test_an_agent_coming_online_drains_the_queue(
    client: TestClient[Any, Any],
    deps: Deps,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
) -> None:
    await serve(deps.stores, clock)
    await add_agent(deps.stores, clock, "ana", slots=2, status="break")
    for i in range(3):
        await deps.stores.tickets.open_or_attach(ticket_request(i, clock), now=clock.now())
    assert len(await deps.stores.tickets.queue(PNID)) == 3
    resp = await client.put("/api/v1/agents/ana/status", json={"status": "online"}, headers=ADMIN)
    assert resp.status == 200
    await make_worker().run_check()
    assert await deps.stores.tickets.load("ana") == 2
    assert len(await deps.stores.tickets.queue(PNID)) == 1
    # More slots: the last one comes too.
    body = {"name": "Ana", "numbers": [PNID], "slots": 3}
    assert (await client.put("/api/v1/agents/ana", json=body, headers=ADMIN)).status == 200
    await make_worker().run_check()
    assert await deps.stores.tickets.queue(PNID) == []


async def test_the_welcome_reply_tells_the_queue_position(
    deps: Deps,
    clock: FixedClock,
    pool: ArqRedis,
    graph: FakeGraphAPI,
    make_worker: Callable[..., Worker],
) -> None:
    await serve(
        deps.stores,
        clock,
        welcome={"enabled": True, "queue_message": "You are number {queue_position} in line."},
    )
    for i in range(2):
        await customer_is_known(deps.stores, ticket_request(i, clock))
        await queue.enqueue_open_ticket(pool, ticket_request(i, clock))
        await make_worker().run_check()
    texts = [m["text"]["body"] for m in graph.messages]
    assert texts == ["You are number 1 in line.", "You are number 2 in line."]
    # A second message on the same ticket gets no second welcome.
    await queue.enqueue_open_ticket(pool, ticket_request(0, clock, key="wamid.again"))
    await make_worker().run_check()
    assert len(graph.messages) == 2


async def test_the_welcome_reply_is_off_by_default(
    deps: Deps,
    clock: FixedClock,
    pool: ArqRedis,
    graph: FakeGraphAPI,
    make_worker: Callable[..., Worker],
) -> None:
    await serve(deps.stores, clock)
    await queue.enqueue_open_ticket(pool, ticket_request(1, clock))
    await make_worker().run_check()
    assert graph.messages == []


async def test_an_offline_agents_tickets_go_back_after_the_grace_period(
    deps: Deps, clock: FixedClock
) -> None:
    stores = deps.stores
    await serve(stores, clock, offline_grace_minutes=5)
    await add_agent(stores, clock, "ana", slots=2)
    for i in range(2):
        await stores.tickets.open_or_attach(ticket_request(i, clock), now=clock.now())
    await stores.agents.set_status("ana", "invisible", at=clock.now())
    await add_agent(stores, clock, "bia", slots=1)
    ctx = {deps_key: deps}
    clock.advance(timedelta(minutes=4))
    assert (await sweep_tickets(ctx))["requeued"] == 0
    assert await stores.tickets.load("ana") == 2
    clock.advance(timedelta(minutes=2))
    counts = await sweep_tickets(ctx)
    assert counts["requeued"] == 2
    assert await stores.tickets.load("ana") == 0
    assert await stores.tickets.load("bia") == 1
    assert len(await stores.tickets.queue(PNID)) == 1


async def test_an_agent_on_break_keeps_their_tickets(deps: Deps, clock: FixedClock) -> None:
    await serve(deps.stores, clock, offline_grace_minutes=1)
    await add_agent(deps.stores, clock, "ana")
    opened = await deps.stores.tickets.open_or_attach(ticket_request(1, clock), now=clock.now())
    await deps.stores.tickets.record_reply(opened.ticket_id, "ana", "m1", "hi", now=clock.now())
    await deps.stores.agents.set_status("ana", "break", at=clock.now())
    clock.advance(timedelta(hours=1))
    await sweep_tickets({deps_key: deps})
    assert await deps.stores.tickets.load("ana") == 1


async def test_a_deleted_agents_tickets_go_back_at_once(deps: Deps, clock: FixedClock) -> None:
    await serve(deps.stores, clock)
    await add_agent(deps.stores, clock, "ana")
    opened = await deps.stores.tickets.open_or_attach(ticket_request(1, clock), now=clock.now())
    await deps.stores.agents.delete("ana")
    assert (await sweep_tickets({deps_key: deps}))["requeued"] == 1
    assert await deps.stores.tickets.queue(PNID) == [opened.ticket_id]
    assert await deps.stores.tickets.holders() == []


async def test_unanswered_tickets_are_rerouted_and_waiting_ones_get_lost(
    deps: Deps, clock: FixedClock
) -> None:
    stores = deps.stores
    await serve(stores, clock, reroute_after_minutes=10, lost_after_minutes=30)
    await add_agent(stores, clock, "ana", slots=1)
    unanswered = await stores.tickets.open_or_attach(ticket_request(1, clock), now=clock.now())
    waiting = await stores.tickets.open_or_attach(ticket_request(2, clock), now=clock.now())
    await add_agent(stores, clock, "bia", slots=0)
    ctx = {deps_key: deps}
    clock.advance(timedelta(minutes=11))
    counts = await sweep_tickets(ctx)
    # ana did not answer: the ticket goes back (first in line) and ana, excluded from it,
    # takes the next one.
    assert counts["rerouted"] == 1
    assert await stores.tickets.queue(PNID) == [unanswered.ticket_id]
    held = await stores.tickets.held_by("ana")
    assert [h.ticket_id for h in held] == [waiting.ticket_id]
    await stores.tickets.record_reply(waiting.ticket_id, "ana", "m1", "hi", now=clock.now())
    clock.advance(timedelta(minutes=31))
    counts = await sweep_tickets(ctx)
    assert counts["lost"] == 1
    ticket = await stores.tickets.get(unanswered.ticket_id)
    assert ticket is not None
    assert ticket.status == "abandoned"  # an agent had had it


def test_the_sweep_is_scheduled_by_real_workers_only(settings: Settings, clock: FixedClock) -> None:
    names = [job.name for job in worker_settings(settings)["cron_jobs"]]
    assert names == [queue.SWEEP_TICKETS]
    # A worker on a test clock would fire sweeps on wall-clock time, in the middle of tests.
    assert worker_settings(settings, clock=clock)["cron_jobs"] == []
    assert worker_settings(settings, clock=clock, cron=True)["cron_jobs"] != []


async def test_a_webhook_in_service_hours_reaches_an_agent_once(
    client: TestClient[Any, Any],
    deps: Deps,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
) -> None:
    await serve(deps.stores, clock)
    await add_agent(deps.stores, clock, "ana")
    payload = build_payload(
        phone_number_id=PNID,
        wa_id="5511987654321",
        name="Maria",
        timestamp=int(clock.now().timestamp()),
        message_id="wamid.E2E",
    )
    for _ in range(2):  # Meta redelivers
        assert (await post_webhook(client, payload)).status == 200
        await make_worker().run_check()
    [ticket] = await deps.stores.tickets.for_number(PNID)
    assert (ticket.status, ticket.agent_id, ticket.contact.name) == ("open", "ana", "Maria")
    # Routed once, and its message announced once (issue 19), for all the redelivery.
    events = await deps.stores.events.read("ana", "0-0")
    assert [(e.type, e.data["ticket_id"]) for e in events] == [
        ("ticket.routed", ticket.id),
        ("message.in", ticket.id),
    ]
