"""The monitoring aggregates the ticket scripts keep, read through MonitoringStore: tags,
requeues, stale reads refused, today's bucket bounds, and the retention of every key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from bot.domain.config import AgentInput
from bot.domain.errors import NotFoundError
from bot.domain.tickets import TicketRequest
from storage import keys
from storage.agents import AgentsStore
from storage.monitoring import MonitoringStore
from storage.tickets import TicketsStore

N1 = "1001"
T0 = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def request(n: int, at: datetime = T0) -> TicketRequest:
    contact = f"55119{n:08d}"
    return TicketRequest(
        phone_number_id=N1,
        contact=contact,
        wa_id=contact,
        natural_key=f"wamid.{n}.{at.timestamp()}",
        wamid=f"wamid.{n}.{at.timestamp()}",
        at=at,
    )


@pytest.fixture(name="tickets")
def fixture_tickets(redis: aioredis.Redis) -> TicketsStore:
    return TicketsStore(redis)


@pytest.fixture(name="monitoring")
def fixture_monitoring(redis: aioredis.Redis) -> MonitoringStore:
    return MonitoringStore(redis)


async def online(redis: aioredis.Redis, agent_id: str, slots: int = 2) -> AgentsStore:
    agents = AgentsStore(redis)
    await agents.put(agent_id, AgentInput(name=agent_id, numbers=(N1,), slots=slots), at=T0)
    await agents.set_status(agent_id, "online", at=T0)
    return agents


async def snapshot(monitoring: MonitoringStore, now: datetime) -> dict[str, int]:
    [snap] = await monitoring.snapshots([(N1, MIDNIGHT)], now=now)
    return {
        **snap.counters,
        "queue": snap.queue_size,
        "in_service": snap.in_service,
        "unanswered": snap.unanswered,
        **{f"tag:{k}": v for k, v in snap.tags.items()},
    }


async def test_tags_count_while_active_and_follow_replacements(
    tickets: TicketsStore, monitoring: MonitoringStore, redis: aioredis.Redis
) -> None:
    a = (await tickets.open_or_attach(request(1), now=T0)).ticket_id
    b = (await tickets.open_or_attach(request(2), now=T0)).ticket_id
    assert await tickets.set_tags(a, ("vip", "troca"), actor="x", now=T0)
    assert await tickets.set_tags(b, ("vip",), actor="x", now=T0)
    assert not await tickets.set_tags(b, ("vip",), actor="x", now=T0)  # same set: no change
    figures = await snapshot(monitoring, T0)
    assert (figures["tag:vip"], figures["tag:troca"], figures["t:vip"]) == (2, 1, 2)

    assert await tickets.set_tags(a, ("troca",), actor="x", now=T0)  # vip removed
    await tickets.close(b, by="agent", actor="x", now=T0)  # no longer active
    figures = await snapshot(monitoring, T0)
    assert "tag:vip" not in figures
    assert (figures["tag:troca"], figures["t:vip"], figures["t:troca"]) == (1, 1, 1)
    assert await redis.zrange(keys.tickets_by_tag(N1, "vip"), 0, -1) == [b.encode()]
    ticket = await tickets.get(a)
    assert ticket is not None
    assert ticket.tags == ("troca",)
    assert [e.type for e in await tickets.history(a)][-2:] == ["tagged", "tagged"]
    with pytest.raises(NotFoundError):
        await tickets.set_tags("T0000000099abcdef", ("vip",), actor="x", now=T0)


async def test_an_agent_going_offline_moves_figures_back_to_the_queue(
    tickets: TicketsStore, monitoring: MonitoringStore, redis: aioredis.Redis
) -> None:
    agents = await online(redis, "ana")
    opened = await tickets.open_or_attach(request(1), now=T0)
    assert opened.agent_id == "ana"
    await tickets.record_reply(opened.ticket_id, "ana", "m1", "oi", now=T0 + timedelta(minutes=2))
    figures = await snapshot(monitoring, T0 + timedelta(minutes=2))
    assert (figures["s:open"], figures["in_service"], figures["queue"]) == (1, 1, 0)

    later = T0 + timedelta(minutes=5)
    await agents.set_status("ana", "invisible", at=later)
    assert await tickets.requeue_held("ana", [opened.ticket_id], now=later) == [opened.ticket_id]
    figures = await snapshot(monitoring, later)
    assert (figures["s:open"], figures["s:waiting"]) == (0, 1)
    assert (figures["in_service"], figures["queue"]) == (0, 1)
    [snap] = await monitoring.snapshots([(N1, MIDNIGHT)], now=later)
    assert snap.oldest_waiting == later  # back in the queue now, not when first written


async def test_a_reply_computed_from_stale_times_is_refused_and_retried(
    tickets: TicketsStore, monitoring: MonitoringStore, redis: aioredis.Redis
) -> None:
    await online(redis, "ana")
    ticket_id = (await tickets.open_or_attach(request(1), now=T0)).ticket_id
    # The script itself refuses times that are not the ticket's (the customer wrote in
    # between, or it was reassigned): it must never count a business time from another start.
    raw = await tickets._reply(  # white box: the check the retry loop relies on
        keys=[keys.ticket_reply("m0")],
        args=[int(T0.timestamp() * 1000), ticket_id, "ana", "m0", "x", 60, "1", "", 0, 0],
    )
    assert raw[0] == b"stale"
    assert await redis.exists(keys.ticket_reply("m0")) == 0  # nothing written
    # Through the store, the fresh times are read and the reply counts once.
    assert await tickets.record_reply(ticket_id, "ana", "m1", "oi", now=T0 + timedelta(minutes=4))
    figures = await snapshot(monitoring, T0 + timedelta(minutes=4))
    four_minutes = 4 * 60_000
    assert (figures["fr"], figures["frms"], figures["rs"], figures["rsms"]) == (
        1,
        four_minutes,
        1,
        four_minutes,
    )
    # No settings stored for the number: its business time is the wall clock.
    assert figures["frbms"] == figures["rsbms"] == four_minutes


async def test_today_sums_only_todays_buckets_and_keeps_maxima(
    monitoring: MonitoringStore, redis: aioredis.Redis
) -> None:
    bucket = keys.MONITOR_BUCKET_MS
    first = int(MIDNIGHT.timestamp() * 1000) // bucket
    now = MIDNIGHT + timedelta(minutes=15 * 10 + 3)  # in bucket first + 10
    yesterday = keys.monitor_day(N1, (first - 1) // (86_400_000 // bucket))
    today = keys.monitor_day(N1, first // (86_400_000 // bucket))
    await redis.hset(yesterday, f"fr:{first - 1}", 5)  # yesterday's last quarter hour
    await redis.hset(
        today,
        mapping={
            f"fr:{first}": 2,
            f"fr:{first + 10}": 3,
            f"frmax:{first}": 7,
            f"frmax:{first + 10}": 4,
            f"s:open:{first + 11}": 1,  # after now
            f"ac:ana:{first + 3}": 2,
        },
    )
    [snap] = await monitoring.snapshots([(N1, MIDNIGHT)], now=now)
    assert snap.counters == {"fr": 5, "frmax": 7, "ac:ana": 2}
    # Read from yesterday's midnight, its last bucket counts too.
    [snap] = await monitoring.snapshots([(N1, MIDNIGHT - timedelta(minutes=15))], now=now)
    assert snap.counters["fr"] == 10


async def test_every_aggregate_key_expires_or_is_trimmed(
    tickets: TicketsStore, redis: aioredis.Redis
) -> None:
    await online(redis, "ana", slots=1)
    first = (await tickets.open_or_attach(request(1), now=T0)).ticket_id
    second = (await tickets.open_or_attach(request(2), now=T0)).ticket_id  # waits
    await tickets.set_tags(first, ("vip",), actor="x", now=T0)
    # An index entry older than the retention goes at the next write of its index.
    stale = int((T0 - timedelta(seconds=keys.TICKET_TTL_S + 60)).timestamp() * 1000)
    await redis.zadd(keys.tickets_by_agent(N1, "ana"), {"T0000000000000000": stale})
    # The close frees ana's slot: the second ticket is hers, written to her index.
    await tickets.close(first, by="agent", actor="ana", now=T0 + timedelta(minutes=1))
    assert await redis.zrange(keys.tickets_by_agent(N1, "ana"), 0, -1) == [
        first.encode(),
        second.encode(),
    ]
    day = int(T0.timestamp() * 1000) // 86_400_000
    for key, ttl in (
        (keys.monitor_day(N1, day), keys.MONITOR_DAY_TTL_S),
        (keys.tickets_by_agent(N1, "ana"), keys.TICKET_TTL_S),
        (keys.tickets_by_tag(N1, "vip"), keys.TICKET_TTL_S),
        (keys.tickets_by_outcome(N1, "closed"), keys.TICKET_TTL_S),
        (keys.tickets_all(N1), keys.TICKET_TTL_S),
        (keys.ticket(first), keys.TICKET_TTL_S),
    ):
        assert ttl - 5 < await redis.ttl(key) <= ttl, key
