"""TicketsStore against a real Redis: opening, routing, slots, queue order, portfolios,
transfers, replies, timeouts, and the routing script checked against bot.domain.routing."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.config import AgentInput, AgentStatus
from bot.domain.errors import ConflictError, NotFoundError
from bot.domain.routing import AgentLoad, choose_agent
from bot.domain.tickets import TicketRequest
from storage import keys
from storage.agents import AgentsStore
from storage.events import START, EventsStore
from storage.tickets import TicketsStore

N1 = "1001"
N2 = "1002"
T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


def request(
    n: int, *, number: str = N1, key: str | None = None, at: datetime = T0
) -> TicketRequest:
    contact = f"55119{n:08d}"
    return TicketRequest(
        phone_number_id=number,
        contact=contact,
        wa_id=contact,
        name=f"Customer {n}",
        natural_key=key or f"wamid.{number}.{n}",
        wamid=key or f"wamid.{number}.{n}",
        at=at,
    )


async def agent(
    agents: AgentsStore,
    agent_id: str,
    *,
    numbers: tuple[str, ...] = (N1,),
    slots: int = 3,
    status: AgentStatus = "online",
    at: datetime = T0,
) -> None:
    await agents.put(
        agent_id, AgentInput(name=agent_id.title(), numbers=numbers, slots=slots), at=at
    )
    if status != "invisible":
        await agents.set_status(agent_id, status, at=at)


@pytest.fixture(name="tickets")
def fixture_tickets(redis: aioredis.Redis) -> TicketsStore:
    return TicketsStore(redis)


@pytest.fixture(name="agents")
def fixture_agents(redis: aioredis.Redis) -> AgentsStore:
    return AgentsStore(redis)


async def test_a_message_opens_a_waiting_ticket_when_nobody_is_online(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", status="break")
    opened = await tickets.open_or_attach(request(1), now=T0)
    assert (opened.outcome, opened.agent_id, opened.position) == ("created", None, 1)
    ticket = await tickets.get(opened.ticket_id)
    assert ticket is not None
    assert ticket.status == "waiting"
    assert ticket.contact.phone == "+5511900000001"
    assert ticket.contact.name == "Customer 1"
    assert ticket.created_at == T0


async def test_a_redelivered_message_never_opens_a_second_ticket(tickets: TicketsStore) -> None:
    first = await tickets.open_or_attach(request(1), now=T0)
    again = await tickets.open_or_attach(request(1), now=T0 + timedelta(seconds=5))
    assert again.ticket_id == first.ticket_id
    assert again.outcome == "duplicate"
    assert again.opened_by_request
    assert len(await tickets.messages(first.ticket_id)) == 1
    assert await tickets.for_number(N1) == [await tickets.get(first.ticket_id)]


async def test_concurrent_redeliveries_open_one_ticket(tickets: TicketsStore) -> None:
    outcomes = await asyncio.gather(
        *(tickets.open_or_attach(request(1), now=T0) for _ in range(20))
    )
    assert len({o.ticket_id for o in outcomes}) == 1
    assert sorted(o.outcome for o in outcomes) == ["created"] + ["duplicate"] * 19


async def test_a_second_message_continues_the_open_ticket(tickets: TicketsStore) -> None:
    first = await tickets.open_or_attach(request(1), now=T0)
    second = await tickets.open_or_attach(
        request(1, key="wamid.second", at=T0 + timedelta(minutes=1)), now=T0 + timedelta(minutes=1)
    )
    assert (second.ticket_id, second.outcome, second.opened_by_request) == (
        first.ticket_id,
        "attached",
        False,
    )
    assert [m.id for m in await tickets.messages(first.ticket_id)] == [
        "wamid.1001.1",
        "wamid.second",
    ]


async def test_after_close_the_next_message_opens_a_new_ticket(tickets: TicketsStore) -> None:
    first = await tickets.open_or_attach(request(1), now=T0)
    await tickets.close(first.ticket_id, by="customer", actor="system", now=T0)
    second = await tickets.open_or_attach(request(1, key="wamid.later"), now=T0)
    assert second.outcome == "created"
    assert second.ticket_id != first.ticket_id


async def test_the_same_contact_on_two_numbers_has_two_tickets(tickets: TicketsStore) -> None:
    a = await tickets.open_or_attach(request(1, number=N1), now=T0)
    b = await tickets.open_or_attach(request(1, number=N2), now=T0)
    assert a.ticket_id != b.ticket_id


async def test_routing_prefers_the_least_loaded_then_the_longest_idle(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    for name in ("ana", "bia", "caio"):
        await agent(agents, name)
    got = [(await tickets.open_or_attach(request(i), now=T0)).agent_id for i in range(6)]
    # Equal loads: the one never assigned (then by id), then whoever waited longest.
    assert got == ["ana", "bia", "caio", "ana", "bia", "caio"]


async def test_agents_on_break_or_invisible_receive_nothing(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", status="break")
    await agent(agents, "bia", status="invisible")
    await agent(agents, "caio", slots=1)
    first = await tickets.open_or_attach(request(1), now=T0)
    second = await tickets.open_or_attach(request(2), now=T0)
    assert first.agent_id == "caio"
    assert (second.agent_id, second.position) == (None, 1)


async def test_the_portfolio_owner_gets_their_customer_when_available(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana")
    await agent(agents, "bia")
    contact = request(7).contact
    await tickets.set_owner(N1, contact, "bia")
    # bia is busier than ana, but she owns the customer.
    await tickets.open_or_attach(request(1), now=T0)  # -> ana
    await tickets.open_or_attach(request(2), now=T0)  # -> bia
    await tickets.open_or_attach(request(3), now=T0)  # -> ana
    opened = await tickets.open_or_attach(request(7), now=T0)
    assert opened.agent_id == "bia"
    history = await tickets.history(opened.ticket_id)
    assert [h.detail for h in history if h.type == "routed"] == ["portfolio"]


async def test_an_unavailable_owner_does_not_hold_the_customer_back(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana")
    await agent(agents, "bia", status="break")
    await tickets.set_owner(N1, request(7).contact, "bia")
    assert (await tickets.open_or_attach(request(7), now=T0)).agent_id == "ana"


async def test_serving_a_customer_makes_the_agent_their_owner(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana")
    opened = await tickets.open_or_attach(request(1), now=T0)
    assert await tickets.record_reply(opened.ticket_id, "ana", "m1", "hi", now=T0)
    assert not await tickets.record_reply(opened.ticket_id, "ana", "m2", "again", now=T0)
    assert await tickets.owner(N1, request(1).contact) == "ana"
    ticket = await tickets.get(opened.ticket_id)
    assert ticket is not None
    assert ticket.first_response_at == T0


async def test_a_reply_from_another_agent_names_the_holder(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana")
    opened = await tickets.open_or_attach(request(1), now=T0)
    with pytest.raises(ConflictError) as info:
        await tickets.record_reply(opened.ticket_id, "bia", "m1", "hi", now=T0)
    assert (info.value.code, info.value.message) == ("served_by_another", "ana")
    await tickets.record_reply(opened.ticket_id, "ana", "m2", "hi", now=T0)
    with pytest.raises(ConflictError) as dup:
        await tickets.record_reply(opened.ticket_id, "ana", "m2", "hi", now=T0)
    assert dup.value.code == "duplicate"
    assert [m.id for m in await tickets.messages(opened.ticket_id)] == ["wamid.1001.1", "m2"]


async def test_closing_pulls_the_oldest_waiting_ticket_to_that_agent(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", slots=1)
    await agent(agents, "bia", slots=1)
    held = [await tickets.open_or_attach(request(i), now=T0) for i in range(2)]
    waiting = [
        await tickets.open_or_attach(request(10 + i, at=T0 - timedelta(seconds=3 - i)), now=T0)
        for i in range(3)
    ]
    assert [w.position for w in waiting] == [1, 2, 3]
    routed = await tickets.close(held[1].ticket_id, by="agent", actor="bia", now=T0)
    assert [(r.ticket_id, r.agent_id) for r in routed] == [(waiting[0].ticket_id, "bia")]
    assert await tickets.queue(N1) == [waiting[1].ticket_id, waiting[2].ticket_id]
    closed = await tickets.get(held[1].ticket_id)
    assert closed is not None
    assert (closed.status, closed.closed_by, closed.closed_at) == ("closed", "agent", T0)
    # Idempotent: closing again neither fails nor pulls another ticket.
    assert await tickets.close(held[1].ticket_id, by="agent", actor="bia", now=T0) == []
    with pytest.raises(NotFoundError):
        await tickets.close("T-none", by="agent", actor="bia", now=T0)


async def test_the_queue_is_ordered_by_when_customers_wrote(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    now = T0 + timedelta(minutes=1)
    late = await tickets.open_or_attach(request(1, at=T0 + timedelta(seconds=30)), now=now)
    early = await tickets.open_or_attach(request(2, at=T0), now=now)
    assert await tickets.queue(N1) == [early.ticket_id, late.ticket_id]
    await agent(agents, "ana", slots=1)
    routed = await tickets.drain([N1], now=now)
    assert [r.ticket_id for r in routed] == [early.ticket_id]


async def test_a_ticket_transferred_to_the_queue_keeps_its_place(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", slots=1)
    first = await tickets.open_or_attach(request(1, at=T0), now=T0)
    later = await tickets.open_or_attach(request(2, at=T0 + timedelta(minutes=1)), now=T0)
    assert first.agent_id == "ana"
    # ana gives it back: it is first in line again but not offered to ana, who gets the next.
    routed = await tickets.transfer_to_queue(
        first.ticket_id, actor="ana", now=T0, exclude_for=timedelta(minutes=10)
    )
    assert [(r.ticket_id, r.agent_id) for r in routed] == [(later.ticket_id, "ana")]
    assert await tickets.queue(N1) == [first.ticket_id]
    ticket = await tickets.get(first.ticket_id)
    assert ticket is not None
    assert ticket.status == "transferred"
    await agent(agents, "bia", slots=1)
    routed = await tickets.drain([N1], now=T0)
    assert [(r.ticket_id, r.agent_id) for r in routed] == [(first.ticket_id, "bia")]
    history = await tickets.history(first.ticket_id)
    assert [h.type for h in history] == ["created", "routed", "transferred", "routed"]


async def test_transfer_to_an_agent_moves_the_slot(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", slots=1)
    await agent(agents, "bia", slots=1, status="break")
    opened = await tickets.open_or_attach(request(1), now=T0)
    waiting = await tickets.open_or_attach(request(2), now=T0)
    with pytest.raises(ConflictError) as info:
        await tickets.transfer_to_agent(opened.ticket_id, "bia", actor="ana", now=T0)
    assert info.value.code == "agent_unavailable"
    with pytest.raises(ConflictError) as same:
        await tickets.transfer_to_agent(opened.ticket_id, "ana", actor="ana", now=T0)
    assert same.value.code == "same_agent"
    await agents.set_status("bia", "online", at=T0)
    routed = await tickets.transfer_to_agent(opened.ticket_id, "bia", actor="ana", now=T0)
    # ana's freed slot pulls the waiting ticket.
    assert [(r.ticket_id, r.agent_id) for r in routed] == [(waiting.ticket_id, "ana")]
    moved = await tickets.get(opened.ticket_id)
    assert moved is not None
    assert (moved.agent_id, moved.status) == ("bia", "open")
    assert (await tickets.load("ana"), await tickets.load("bia")) == (1, 1)
    history = await tickets.history(opened.ticket_id)
    assert (history[-1].type, history[-1].from_agent, history[-1].to_agent) == (
        "transferred",
        "ana",
        "bia",
    )


async def test_transfer_to_an_agent_of_another_number_is_refused(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana")
    await agent(agents, "bob", numbers=(N2,))
    opened = await tickets.open_or_attach(request(1), now=T0)
    with pytest.raises(ConflictError) as info:
        await tickets.transfer_to_agent(opened.ticket_id, "bob", actor="ana", now=T0)
    assert info.value.code == "not_attached"


async def test_an_offline_agents_tickets_are_requeued_and_routed_on(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", slots=2)
    mine = [await tickets.open_or_attach(request(i), now=T0) for i in range(2)]
    await agent(agents, "bia", slots=1)
    ids = [m.ticket_id for m in mine]
    # Online again before the sweep: nothing moves.
    assert await tickets.requeue_held("ana", ids, now=T0) == []
    await agents.set_status("ana", "invisible", at=T0)
    assert sorted(await tickets.requeue_held("ana", ids, now=T0)) == sorted(ids)
    assert await tickets.load("ana") == 0
    assert await tickets.load("bia") == 1
    assert await tickets.queue(N1) == [ids[1]]
    assert await tickets.holders() == ["bia"]


async def test_unanswered_tickets_are_routed_to_someone_else(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana", slots=1)
    opened = await tickets.open_or_attach(request(1), now=T0)
    await agent(agents, "bia", slots=1)
    later = T0 + timedelta(minutes=11)
    moved = await tickets.reroute_unanswered(
        N1,
        assigned_before=later - timedelta(minutes=10),
        now=later,
        exclude_for=timedelta(minutes=10),
    )
    assert moved == [opened.ticket_id]
    ticket = await tickets.get(opened.ticket_id)
    assert ticket is not None
    assert ticket.agent_id == "bia"
    # Answered tickets are left alone.
    await tickets.record_reply(opened.ticket_id, "bia", "m1", "hi", now=later)
    much_later = later + timedelta(hours=1)
    assert (
        await tickets.reroute_unanswered(
            N1, assigned_before=much_later, now=much_later, exclude_for=timedelta(minutes=10)
        )
        == []
    )


async def test_waiting_tickets_past_the_limit_become_lost(tickets: TicketsStore) -> None:
    old = await tickets.open_or_attach(request(1), now=T0)
    fresh = await tickets.open_or_attach(request(2), now=T0 + timedelta(minutes=50))
    # The customer of `old` wrote again: that keeps it alive.
    now = T0 + timedelta(minutes=61)
    closed = await tickets.expire_waiting(N1, idle_before=now - timedelta(minutes=60), now=now)
    assert closed == [old.ticket_id]
    lost = await tickets.get(old.ticket_id)
    assert lost is not None
    assert lost.status == "lost"
    assert [t.id for t in await tickets.for_number(N1, "lost")] == [old.ticket_id]
    assert [t.id for t in await tickets.for_number(N1, "waiting")] == [fresh.ticket_id]


async def test_a_ticket_left_after_assignment_is_abandoned(
    tickets: TicketsStore, agents: AgentsStore
) -> None:
    await agent(agents, "ana")
    opened = await tickets.open_or_attach(request(1), now=T0)
    await tickets.close(opened.ticket_id, by="customer", actor="customer", now=T0)
    ticket = await tickets.get(opened.ticket_id)
    assert ticket is not None
    assert ticket.status == "abandoned"


async def test_routing_events_reach_the_agents_stream(
    tickets: TicketsStore, agents: AgentsStore, redis: aioredis.Redis
) -> None:
    events = EventsStore(redis)
    await agent(agents, "ana")
    opened = await tickets.open_or_attach(request(1), now=T0)
    await tickets.close(opened.ticket_id, by="agent", actor="ana", now=T0)
    got = await events.read("ana", START)
    assert [e.type for e in got] == ["ticket.routed", "ticket.closed"]
    assert got[0].data["ticket_id"] == opened.ticket_id
    assert got[0].data["phone_number_id"] == N1
    assert got[0].data["wa_id"] == request(1).wa_id


async def test_closed_tickets_expire(tickets: TicketsStore, redis: aioredis.Redis) -> None:
    opened = await tickets.open_or_attach(request(1), now=T0)
    assert await redis.ttl(keys.ticket(opened.ticket_id)) == -1
    await tickets.close(opened.ticket_id, by="customer", actor="system", now=T0)
    assert 0 < await redis.ttl(keys.ticket(opened.ticket_id)) <= keys.TICKET_TTL_S


# --- the script against its specification ----------------------------------------------

agent_states = st.lists(
    st.tuples(
        st.sampled_from(["online", "break", "invisible"]),
        st.integers(min_value=0, max_value=3),  # slots
        st.integers(min_value=0, max_value=3),  # tickets already held
        st.integers(min_value=0, max_value=5),  # last assignment order (0 = never)
    ),
    min_size=0,
    max_size=5,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    states=agent_states,
    owner_index=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
    excluded_index=st.one_of(st.none(), st.integers(min_value=0, max_value=4)),
)
async def test_the_routing_script_follows_the_routing_rule(
    redis: aioredis.Redis,
    states: list[tuple[str, int, int, int]],
    owner_index: int | None,
    excluded_index: int | None,
) -> None:
    await redis.flushdb()
    agents = AgentsStore(redis)
    tickets = TicketsStore(redis)
    loads = []
    for i, (status, slots, held, last) in enumerate(states):
        agent_id = f"a{i}"
        await agent(agents, agent_id, slots=slots, status=status)  # type: ignore[arg-type]
        for j in range(held):
            await redis.sadd(keys.agent_tickets(agent_id), f"X{i}.{j}")
        if last:
            await redis.hset(keys.LAST_ASSIGNED, agent_id, last)
        loads.append(AgentLoad(agent_id, status, slots, held, last))
    owner = f"a{owner_index}" if owner_index is not None else None
    excluded = f"a{excluded_index}" if excluded_index is not None else None
    req = request(1)
    if owner is not None:
        await tickets.set_owner(N1, req.contact, owner)
    # Open the ticket with nobody able to take it, mark the exclusion, then drain.
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(len(states)):
            pipe.hset(keys.agent(f"a{i}"), "status", "invisible")
        await pipe.execute()
    opened = await tickets.open_or_attach(req, now=T0)
    if excluded is not None:
        await redis.hset(
            keys.ticket(opened.ticket_id),
            mapping={"excluded": excluded, "excluded_until": str(int(T0.timestamp() * 1000) + 1)},
        )
    async with redis.pipeline(transaction=False) as pipe:
        for i, (status, *_rest) in enumerate(states):
            pipe.hset(keys.agent(f"a{i}"), "status", status)
        await pipe.execute()
    routed = await tickets.drain([N1], now=T0)
    expected = choose_agent(loads, owner=owner, excluded=excluded)
    assert [r.agent_id for r in routed] == ([expected[0]] if expected else [])


# --- many workers at once ----------------------------------------------------------------


async def test_200_tickets_across_5_agents_never_exceed_a_slot(
    redis_url: str, agents: AgentsStore
) -> None:
    for i in range(5):
        await agent(agents, f"agent{i}", slots=3)
    # Five connections, as five workers would have, opening tickets concurrently.
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(5)]
    try:
        stores = [TicketsStore(c) for c in clients]
        reqs = [request(i, at=T0 + timedelta(seconds=i)) for i in range(200)]
        rng = random.Random(7)
        order = list(range(200))
        rng.shuffle(order)
        now = T0 + timedelta(minutes=5)
        opened = await asyncio.gather(
            *(stores[k % 5].open_or_attach(reqs[i], now=now) for k, i in enumerate(order))
        )
        # Redelivered, also concurrently: no second ticket.
        again = await asyncio.gather(
            *(stores[k % 5].open_or_attach(reqs[i], now=now) for k, i in enumerate(order))
        )
        assert {o.ticket_id for o in again} == {o.ticket_id for o in opened}
        assert all(o.outcome == "duplicate" for o in again)
        assigned = [o for o in opened if o.agent_id is not None]
        tickets = stores[0]
        loads = {f"agent{i}": await tickets.load(f"agent{i}") for i in range(5)}
        assert loads == dict.fromkeys(loads, 3)
        held = [h.ticket_id for i in range(5) for h in await tickets.held_by(f"agent{i}")]
        assert len(held) == len(set(held)) == 15
        assert len(assigned) == 15
        # The overflow waits, in the order the customers wrote.
        waiting = await tickets.queue(N1)
        assert len(waiting) == 185
        at_of = {o.ticket_id: reqs[i].at for o, i in zip(opened, order, strict=True)}
        assert [at_of[t] for t in waiting] == sorted(at_of[t] for t in waiting)
        # Closing everything, concurrently, drains the queue in order, never over a slot.
        served: list[str] = []
        while True:
            holding = [
                (h.ticket_id, f"agent{i}")
                for i in range(5)
                for h in await tickets.held_by(f"agent{i}")
            ]
            if not holding:
                break
            served.extend(t for t, _ in holding)
            await asyncio.gather(
                *(
                    stores[k % 5].close(t, by="agent", actor=a, now=T0)
                    for k, (t, a) in enumerate(holding)
                )
            )
            for i in range(5):
                assert await tickets.load(f"agent{i}") <= 3
        assert len(served) == len(set(served)) == 200
        assert await tickets.queue(N1) == []
        # Each ticket was routed exactly once.
        for ticket_id in {o.ticket_id for o in opened}:
            history = await tickets.history(ticket_id)
            assert [h.type for h in history].count("routed") == 1
    finally:
        for c in clients:
            await c.aclose()


@given(states=agent_states, owner=st.one_of(st.none(), st.sampled_from(["a0", "a1", "zz"])))
def test_the_rule_never_picks_an_agent_without_room(
    states: list[tuple[str, int, int, int]], owner: str | None
) -> None:
    loads = [
        AgentLoad(f"a{i}", s, slots, held, last) for i, (s, slots, held, last) in enumerate(states)
    ]
    chosen = choose_agent(loads, owner=owner, excluded="a2")
    with_room = [a for a in loads if a.has_room and a.id != "a2"]
    if chosen is None:
        assert with_room == []
        return
    agent_id, reason = chosen
    picked = next(a for a in loads if a.id == agent_id)
    assert picked.has_room
    assert agent_id != "a2"
    if reason == "balance":
        assert owner not in {a.id for a in with_room}
        assert picked.load == min(a.load for a in with_room)
    else:
        assert agent_id == owner
