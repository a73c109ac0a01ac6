"""Monitoring aggregates: their reads. The Lua that keeps them runs inside every ticket script.

Nothing here scans tickets. The ticket scripts (storage/tickets.py) call the helpers of
storage/lua/includes/monitor.lua (pulled in by their prelude, includes/tickets.lua) in the same
atomic step as each change, so the figures can never disagree with the tickets they count:

* per number and UTC day, a HASH of counters per quarter-hour bucket (`keys.monitor_day`):
  tickets by status now and tagged tickets (by creation bucket), first replies, replies to
  customer messages, served tickets closed, closes per agent (by the bucket they happened in);
* per number, sorted sets of the tickets waiting (by when they entered the queue) and in
  service (by first reply), next to the queue and the unanswered set the routing keeps;
* per number, the count of active tickets per tag; and the history indexes (per agent, per tag,
  per final status) that `TicketsStore.search` reads.

`MonitoringStore.snapshots` reads one number's figures in a handful of round trips whatever the
number of tickets stored: O(today's buckets + detail lists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from redis.asyncio import Redis

from bot.domain.monitoring import DETAIL_DEFAULT, MAX_METRICS, AgentLoad, NumberSnapshot, Waiting
from storage import keys, lua
from storage.agents import AgentsStore
from storage.tickets import TicketsStore

_BUCKETS_PER_DAY: Final = 86_400_000 // keys.MONITOR_BUCKET_MS


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _time(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Commands queued per number in the first round trip.
_PER_NUMBER: Final = 10


@dataclass(frozen=True, slots=True)
class _Heads:
    """What the first round trip read of one number."""

    pnid: str
    counters: dict[str, int]
    queue_size: int
    oldest_waiting: datetime | None
    unanswered: int
    oldest_unanswered: datetime | None
    in_service: int
    queued: list[str]
    serving: list[str]
    tags: dict[str, int]
    members: list[str]


class MonitoringStore:
    """Reads the monitoring aggregates (their writes are the ticket scripts')."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._agents = AgentsStore(redis)
        self._tickets = TicketsStore(redis)
        self._sum = lua.register(redis, "monitoring_sum")
        self._sets = lua.register(redis, "monitoring_sets")

    async def snapshots(
        self,
        numbers: Sequence[tuple[str, datetime]],
        *,
        now: datetime,
        detail: int = DETAIL_DEFAULT,
    ) -> list[NumberSnapshot]:
        """One snapshot per (phone_number_id, start of its today) at `now`, in that order.

        A few round trips whatever the number of numbers and tickets: the aggregates (today's
        counters summed in Redis), the detail tickets, the agents and their slots, and where
        the held tickets belong.
        """
        now_ms = _ms(now)
        last = now_ms // keys.MONITOR_BUCKET_MS
        top = 0 if detail > 0 else 1  # ZRANGE 1 0 is empty, where 0 -1 would be everything
        async with self._redis.pipeline(transaction=False) as pipe:
            for pnid, start in numbers:
                first = min(_ms(start), now_ms) // keys.MONITOR_BUCKET_MS
                days = range(first // _BUCKETS_PER_DAY, last // _BUCKETS_PER_DAY + 1)
                pipe.zcard(keys.ticket_queue(pnid))
                pipe.zrange(keys.monitor_waiting(pnid), 0, 0, withscores=True)
                pipe.zcard(keys.tickets_unanswered(pnid))
                pipe.zrange(keys.tickets_unanswered(pnid), 0, 0, withscores=True)
                pipe.zcard(keys.monitor_in_service(pnid))
                pipe.zrange(keys.ticket_queue(pnid), top, detail - 1)
                pipe.zrange(keys.monitor_in_service(pnid), top, detail - 1)
                pipe.hgetall(keys.monitor_tags(pnid))
                pipe.smembers(keys.number_agents(pnid))
                await self._sum(
                    keys=[keys.monitor_day(pnid, day) for day in days],
                    args=[first, last, *sorted(MAX_METRICS)],
                    client=pipe,
                )
            raw = await pipe.execute()

        heads: list[_Heads] = []
        i = 0
        for pnid, _ in numbers:
            q_size, q_head, un_size, un_head, svc_size, q_ids, svc_ids, tags, members, sums = raw[
                i : i + _PER_NUMBER
            ]
            i += _PER_NUMBER
            heads.append(
                _Heads(
                    pnid=pnid,
                    counters={_text(m): int(v) for m, v in zip(sums[::2], sums[1::2], strict=True)},
                    queue_size=int(q_size),
                    oldest_waiting=_time(q_head[0][1]) if q_head else None,
                    unanswered=int(un_size),
                    oldest_unanswered=_time(un_head[0][1]) if un_head else None,
                    in_service=int(svc_size),
                    queued=[_text(t) for t in q_ids],
                    serving=[_text(t) for t in svc_ids],
                    tags={_text(k): int(v) for k, v in tags.items() if int(v) > 0},
                    members=sorted(_text(m) for m in members),
                )
            )

        wanted = dict.fromkeys(t for h in heads for t in (*h.queued, *h.serving))
        found = {t.id: t for t in await self._tickets.get_many(list(wanted))}
        agent_ids = sorted({a for h in heads for a in h.members})
        async with self._redis.pipeline(transaction=False) as pipe:
            for h in heads:
                if h.queued:
                    pipe.zmscore(keys.monitor_waiting(h.pnid), h.queued)
            if agent_ids:
                await self._sets(keys=[keys.agent_tickets(a) for a in agent_ids], client=pipe)
            raw = await pipe.execute()
        n_queued = sum(1 for h in heads if h.queued)
        entered = {
            (h.pnid, t): score
            for h, scores in zip((h for h in heads if h.queued), raw[:n_queued], strict=True)
            for t, score in zip(h.queued, scores, strict=True)
        }
        sets = raw[n_queued] if agent_ids else []
        held = {a: sorted(_text(t) for t in ids) for a, ids in zip(agent_ids, sets, strict=True)}
        agents = {a.id: a for a in await self._agents.get_many(agent_ids)}
        anyone_holds = any(held.values())
        # A held ticket is assigned: answered (in service) or not (unanswered) on its number;
        # both sets are bounded by the agents' slots.
        number_of: dict[str, str] = {}
        if anyone_holds:
            async with self._redis.pipeline(transaction=False) as pipe:
                for h in heads:
                    pipe.zrange(keys.monitor_in_service(h.pnid), 0, -1)
                    pipe.zrange(keys.tickets_unanswered(h.pnid), 0, -1)
                raw = await pipe.execute()
            for h, answered, waiting in zip(heads, raw[::2], raw[1::2], strict=True):
                number_of.update((_text(t), h.pnid) for t in (*answered, *waiting))

        out = []
        for h in heads:
            queue = []
            for ticket_id in h.queued:
                score = entered.get((h.pnid, ticket_id))
                ticket = found.get(ticket_id)
                if ticket is None:
                    continue  # closed between the reads
                since = _time(score) if score is not None else ticket.queued_at or ticket.created_at
                queue.append(Waiting(ticket=ticket, since=since))
            loads = [
                AgentLoad(
                    agent=agents[a],
                    load=len(held[a]),
                    here=sum(1 for t in held[a] if number_of.get(t) == h.pnid),
                )
                for a in h.members
                if a in agents
            ]
            out.append(
                NumberSnapshot(
                    phone_number_id=h.pnid,
                    counters=h.counters,
                    queue_size=h.queue_size,
                    oldest_waiting=h.oldest_waiting,
                    in_service=h.in_service,
                    unanswered=h.unanswered,
                    oldest_unanswered=h.oldest_unanswered,
                    queue=queue,
                    serving=[found[t] for t in h.serving if t in found],
                    agents=loads,
                    tags=h.tags,
                )
            )
        return out
