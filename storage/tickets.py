"""Tickets and routing: one Lua script per decision, so any number of workers stay consistent.

A ticket is a HASH (`keys.ticket`) with the fields

    id, phone_number_id, contact (the contact key), wa_id, user_id, name (empty: absent),
    natural_key       the request that opened it
    source            absent for a message, "callback" for a callback
    status            waiting | open | transferred | closed
    agent_id          the agent holding it (kept on close: who served it)
    created_at, queued_at (its place in the queue: when the customer wrote),
    assigned_at, first_assigned_at, first_response_at, closed_at   (epoch ms)
    closed_by         agent | customer
    excluded, excluded_until   an agent the ticket is not offered to until then (the one
                      who transferred it away or did not answer it)

Every change that touches slots or the queue is one script,
`storage/lua/tickets_<change>.lua`, which starts with the prelude
`storage/lua/includes/tickets.lua` (and that with the monitoring helpers,
`includes/monitor.lua`): it reads the agents' status and slots, chooses, writes the ticket,
the agent's slot set, the queue, the history and the agent's event stream, all atomically.
Two workers can therefore never give the same ticket twice nor fill a slot twice, and an
event is never lost between a change and its announcement. The scripts reach per-agent and
per-ticket keys they cannot declare up front (which agents serve a number is only known
inside), so this store needs one Redis, not a cluster.

Routing (`pick` in the prelude): the contact's portfolio owner when attached, online and with
a free slot; else the attached online agent with a free slot holding the fewest tickets, ties
to the one whose last assignment is oldest (then by id); else the ticket waits, oldest first.
Agents on break or invisible get nothing. `bot.domain.routing.choose_agent` is the same rule in
Python, the specification the property tests check the script against.

Ticket ids are `T`, the ticket's place in its number's own sequence (10 digits,
`keys.ticket_seq`), then ID_RANDOM_HEX random hex digits: `T0000000042` + `9f3a0c51d2`. The
sequence is per number, so an id says nothing about other numbers' volume (ids before this
change used one sequence for all numbers, `keys.TICKET_SEQ`, and 6 random digits: they stay
valid, every reader takes any `[A-Za-z0-9_.-]{1,64}` id and history cursors any
`T[0-9a-f]{10,20}`). It keeps what the global counter gave: within a number, ids sort in
creation order, which breaks the ties of equal scores in the number's indexes (the queue
scores a ticket by its customer's message time, whole seconds from Meta, so two customers of
one second are served in the order their tickets were opened). The random part makes ids
unguessable; what a guess would hit is a 404 anyway outside the caller's numbers.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from redis.asyncio import Redis

from bot.domain import phones
from bot.domain.config import NumberConfig
from bot.domain.errors import ConflictError, NotFoundError
from bot.domain.history import CURSOR_RE
from bot.domain.monitoring import business_ms
from bot.domain.tickets import (
    Ticket,
    TicketContact,
    TicketEvent,
    TicketMessage,
    TicketRequest,
    TicketStatus,
    derive_status,
)
from storage import keys, lua
from storage.numbers import NumbersStore

# Waiting tickets one drain looks at per number, and the most one sweep call moves or closes
# (keys.DRAIN_BATCH: the scripts read it as a token, so it is defined with the keys).
DRAIN_BATCH: Final = keys.DRAIN_BATCH
# Tickets listed per page.
LIST_MAX: Final = 500
# History pages examine at most this many tickets of an index per call (then hand a cursor).
SEARCH_SCAN_MAX: Final = 2000
# Hex digits of randomness in a ticket id (see "Ticket ids" in the module docstring).
ID_RANDOM_HEX: Final = 10
# A reply or a close computes its business time from times read just before its script; the
# script refuses ('stale') when they changed meanwhile, and it is tried again this often.
STALE_TRIES: Final = 5


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _text(value: bytes | str | int) -> str:
    # Lua numbers come back as integers, strings as bytes.
    return value.decode() if isinstance(value, bytes) else str(value)


def _opt(value: bytes | str | None) -> str | None:
    """A hash field as text, None when absent or empty."""
    return _text(value) if value else None


def _busy(ticket_id: str) -> ConflictError:
    return ConflictError("busy", f"ticket {ticket_id} is changing too fast; retry")


def _pairs(flat: list[Any]) -> list[tuple[str, str]]:
    items = [_text(v) for v in flat]
    return list(zip(items[::2], items[1::2], strict=True))


OpenOutcome = Literal["created", "attached", "duplicate"]


@dataclass(frozen=True, slots=True)
class Opened:
    """What `open_or_attach` did: the ticket, and where it stands now.

    `position` is the ticket's place in its queue (1 = next) while it waits, else 0.
    `opened_by_request` is True when this request's natural key opened the ticket (also on a
    "duplicate": a retried job can finish what the first run started).
    """

    ticket_id: str
    outcome: OpenOutcome
    agent_id: str | None
    position: int
    opened_by_request: bool


@dataclass(frozen=True, slots=True)
class Routed:
    """One assignment a script made: ticket -> agent."""

    ticket_id: str
    agent_id: str


def _routed(flat: list[Any]) -> list[Routed]:
    return [Routed(t, a) for t, a in _pairs(flat)]


@dataclass(frozen=True, slots=True)
class SearchResult:
    """A page of `TicketsStore.search`: `next_cursor` continues it (None: nothing more)."""

    items: list[Ticket]
    next_cursor: str | None


_FINAL: Final = ("closed", "abandoned", "lost")


@dataclass(frozen=True, slots=True)
class Held:
    """A ticket held by an agent (for the offline sweep)."""

    ticket_id: str
    phone_number_id: str


def _ticket(raw: dict[str, str]) -> Ticket:
    first_assigned = _time(raw.get("first_assigned_at"))
    first_response = _time(raw.get("first_response_at"))
    closed_by = raw.get("closed_by") or None
    status = derive_status(
        raw.get("status", "waiting"),
        closed_by=closed_by,
        ever_assigned=first_assigned is not None,
        answered=first_response is not None,
    )
    return Ticket(
        id=raw["id"],
        phone_number_id=raw["phone_number_id"],
        status=status,
        agent_id=raw.get("agent_id") or None,
        contact=TicketContact(
            wa_id=raw.get("wa_id") or None,
            name=raw.get("name") or None,
            phone=phones.e164(raw["wa_id"]) if raw.get("wa_id") else None,
        ),
        contact_key=raw.get("contact", ""),
        user_id=raw.get("user_id") or None,
        created_at=_time(raw.get("created_at")) or datetime.fromtimestamp(0, tz=UTC),
        assigned_at=_time(raw.get("assigned_at")),
        first_response_at=first_response,
        closed_at=_time(raw.get("closed_at")),
        closed_by=closed_by,
        source=raw.get("source") or "message",
        queued_at=_time(raw.get("queued_at")),
        tags=tuple(json.loads(raw["tags"])) if raw.get("tags") else (),
    )


class TicketsStore:
    """Tickets per number, agents' slots, queues and portfolios (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        # EVALSHA, loading the script again after a Redis restart.
        self._open = lua.register(redis, "tickets_open")
        self._drain = lua.register(redis, "tickets_drain")
        self._close = lua.register(redis, "tickets_close")
        self._to_agent = lua.register(redis, "tickets_transfer_agent")
        self._to_queue = lua.register(redis, "tickets_transfer_queue")
        self._requeue_held = lua.register(redis, "tickets_requeue_held")
        self._reroute = lua.register(redis, "tickets_reroute")
        self._expire = lua.register(redis, "tickets_expire")
        self._reply = lua.register(redis, "tickets_reply")
        self._tags = lua.register(redis, "tickets_tags")
        self._hashes = lua.register(redis, "tickets_hashes")
        # Service hours, for the business time of replies and closes (monitoring).
        self._numbers = NumbersStore(redis)

    # --- changes --------------------------------------------------------------------------

    async def open_or_attach(self, request: TicketRequest, *, now: datetime) -> Opened:
        """Open a ticket for the contact, or attach the message to the contact's active one,
        then route the number's queue (the new ticket waits behind older ones).

        Idempotent on (`phone_number_id`, `natural_key`): a redelivered message or a retried
        job gets the same ticket back with outcome "duplicate", and nothing is written.
        """
        pnid = request.phone_number_id
        raw = await self._open(
            keys=[
                keys.ticket_request(pnid, request.natural_key),
                keys.open_ticket(pnid, request.contact),
                keys.ticket_seq(pnid),
            ],
            args=[
                _ms(now),
                pnid,
                request.contact,
                request.wa_id or "",
                request.user_id or "",
                request.name or "",
                "",
                request.source,
                request.wamid or "",
                _ms(request.at),
                secrets.token_hex(ID_RANDOM_HEX // 2),
                keys.CLAIM_TTL_S,
                request.natural_key,
            ],
        )
        ticket_id, outcome, agent_id, position, mine = (_text(v) for v in raw)
        return Opened(
            ticket_id=ticket_id,
            outcome=outcome,  # type: ignore[arg-type]  # the script answers one of the three
            agent_id=agent_id or None,
            position=int(position),
            opened_by_request=mine == "1",
        )

    async def drain(self, phone_number_ids: list[str], *, now: datetime) -> list[Routed]:
        """Route the waiting tickets of these numbers to agents with free slots, oldest first
        across the numbers; the assignments made. Idempotent: with no free slot or no waiting
        ticket it changes nothing."""
        if not phone_number_ids:
            return []
        return _routed(await self._drain(args=[_ms(now), *phone_number_ids]))

    async def close(
        self,
        ticket_id: str,
        *,
        by: Literal["agent", "customer"],
        actor: str,
        now: datetime,
        detail: str | None = None,
    ) -> list[Routed]:
        """Close a ticket, free its agent's slot and let that agent pull the oldest waiting
        ticket of their numbers; the assignments that made.

        Idempotent: closing a closed ticket changes nothing (and returns []).

        Raises:
            NotFoundError: no such ticket.
        """
        for _ in range(STALE_TRIES):
            pnid, assigned = await self._redis.hmget(
                keys.ticket(ticket_id), ["phone_number_id", "first_assigned_at"]
            )
            config = await self._config(pnid)
            biz = business_ms(config, _time(_opt(assigned)), now)
            raw = await self._close(
                args=[_ms(now), ticket_id, by, actor, detail or "", _opt(assigned) or "", biz]
            )
            outcome = _text(raw[0])
            if outcome == "missing":
                raise NotFoundError(f"ticket {ticket_id} not found")
            if outcome != "stale":
                return _routed(raw[1:])
        raise _busy(ticket_id)

    async def transfer_to_agent(
        self, ticket_id: str, agent_id: str, *, actor: str, now: datetime
    ) -> list[Routed]:
        """Move a ticket to `agent_id`, who must be attached to its number, online and have a
        free slot. The previous holder's slot is freed (and may pull a waiting ticket).

        Raises:
            NotFoundError: no such ticket.
            ConflictError: `closed`, `same_agent`, `not_attached` or `agent_unavailable`.
        """
        raw = await self._to_agent(args=[_ms(now), ticket_id, agent_id, actor])
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        if outcome == "closed":
            raise ConflictError("closed", f"ticket {ticket_id} is closed")
        if outcome == "same":
            raise ConflictError("same_agent", f"{agent_id} already holds ticket {ticket_id}")
        if outcome == "not_attached":
            raise ConflictError(
                "not_attached", f"agent {agent_id} does not serve this ticket's number"
            )
        if outcome == "unavailable":
            status, load, slots = (_text(v) for v in raw[1:4])
            raise ConflictError(
                "agent_unavailable",
                f"agent {agent_id} cannot take it now (status {status or 'unknown'}, "
                f"{load} of {slots} slots in use)",
            )
        return _routed(raw[1:])

    async def transfer_to_queue(
        self, ticket_id: str, *, actor: str, now: datetime, exclude_for: timedelta
    ) -> list[Routed]:
        """Put an assigned ticket back in its number's queue at its original place, with
        status `transferred`; the agent who held it is not offered it again for `exclude_for`.
        Idempotent: a ticket already waiting stays as it is.

        Raises:
            NotFoundError: no such ticket.
            ConflictError: `closed`.
        """
        until = _ms(now + exclude_for)
        raw = await self._to_queue(args=[_ms(now), ticket_id, actor, until])
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        if outcome == "closed":
            raise ConflictError("closed", f"ticket {ticket_id} is closed")
        return _routed(raw[1:])

    async def record_reply(
        self, ticket_id: str, agent_id: str, message_id: str, text: str, *, now: datetime
    ) -> bool:
        """Record an agent's reply on the ticket they hold; True when it is the first reply
        (it sets `first_response_at`). The contact's portfolio owner becomes `agent_id`.

        Idempotent on `message_id`: recording it again raises `ConflictError("duplicate")`.

        Raises:
            NotFoundError: no such ticket.
            ConflictError: `closed`, `not_assigned` (the ticket waits in the queue),
                `served_by_another` (its message names the holder's id: the API replaces it
                with their name), `duplicate`.
        """
        marker = keys.ticket_reply(message_id)
        for _ in range(STALE_TRIES):
            pnid, assigned, awaiting = (
                _opt(v)
                for v in await self._redis.hmget(
                    keys.ticket(ticket_id), ["phone_number_id", "assigned_at", "awaiting_since"]
                )
            )
            config = await self._config(pnid)
            assigned_at, awaiting_at = _time(assigned), _time(awaiting)
            start = max(awaiting_at, assigned_at or awaiting_at) if awaiting_at else None
            raw = await self._reply(
                keys=[marker],
                args=[
                    _ms(now),
                    ticket_id,
                    agent_id,
                    message_id,
                    text,
                    keys.CLAIM_TTL_S,
                    assigned or "",
                    awaiting or "",
                    business_ms(config, assigned_at, now),
                    business_ms(config, start, now),
                ],
            )
            if _text(raw[0]) != "stale":
                break
        else:
            raise _busy(ticket_id)
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        if outcome == "closed":
            raise ConflictError("closed", f"ticket {ticket_id} is closed")
        if outcome == "not_assigned":
            raise ConflictError("not_assigned", f"ticket {ticket_id} is waiting for an agent")
        if outcome == "served_by_another":
            raise ConflictError("served_by_another", _text(raw[1]))
        if outcome == "duplicate":
            raise ConflictError("duplicate", f"message {message_id} was already sent")
        return _text(raw[1]) == "1"

    async def requeue_held(
        self, agent_id: str, ticket_ids: list[str], *, now: datetime
    ) -> list[str]:
        """Put back in their queues those of `ticket_ids` that `agent_id` holds while
        invisible, deleted, or no longer attached to the ticket's number (checked inside the
        script, so an agent who came back online in the meantime keeps them); the ids moved.
        With no ticket left, the agent leaves the holders' set (see `holders`)."""
        raw = await self._requeue_held(args=[_ms(now), agent_id, *ticket_ids])
        return [_text(v) for v in raw]

    async def reroute_unanswered(
        self,
        phone_number_id: str,
        *,
        assigned_before: datetime,
        now: datetime,
        exclude_for: timedelta,
    ) -> list[str]:
        """Route again the number's tickets assigned before `assigned_before` without a first
        reply; their agent is not offered them again for `exclude_for`. The ids moved (at
        most DRAIN_BATCH: call again while it returns that many)."""
        raw = await self._reroute(
            args=[_ms(now), phone_number_id, _ms(assigned_before), _ms(now + exclude_for)]
        )
        return [_text(v) for v in raw]

    async def expire_waiting(
        self, phone_number_id: str, *, idle_before: datetime, now: datetime
    ) -> list[str]:
        """Close the number's waiting tickets idle (no agent, no new message) since before
        `idle_before`: lost, or abandoned when an agent had had it. The ids closed (at most
        DRAIN_BATCH per call)."""
        candidates = [
            _text(i)
            for i in await self._redis.zrangebyscore(
                keys.tickets_idle(phone_number_id), "-inf", _ms(idle_before), 0, DRAIN_BATCH
            )
        ]
        given: dict[str, list[str | int]] = {}
        if candidates:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ticket_id in candidates:
                    pipe.hget(keys.ticket(ticket_id), "first_assigned_at")
                assigned = await pipe.execute()
            config = await self._config(phone_number_id)
            for ticket_id, value in zip(candidates, assigned, strict=True):
                start = _opt(value)
                if start is not None:
                    given[ticket_id] = [start, business_ms(config, _time(start), now)]
        raw = await self._expire(
            args=[_ms(now), phone_number_id, _ms(idle_before), json.dumps(given)]
        )
        return [_text(v) for v in raw]

    async def set_tags(
        self, ticket_id: str, tags: tuple[str, ...], *, actor: str, now: datetime
    ) -> bool:
        """Replace the ticket's tags (normalised by `bot.domain.tickets.TicketTagsInput`), keeping
        the per-tag counts and the history's tag index in step; True when the set changed
        (then its history records it). Idempotent: the same set again changes nothing.

        Raises:
            NotFoundError: no such ticket.
        """
        raw = await self._tags(args=[_ms(now), ticket_id, actor, json.dumps(list(tags))])
        outcome = _text(raw[0])
        if outcome == "missing":
            raise NotFoundError(f"ticket {ticket_id} not found")
        return outcome == "changed"

    async def _config(self, phone_number_id: bytes | str | None) -> NumberConfig | None:
        if not phone_number_id:
            return None
        return await self._numbers.config(_text(phone_number_id))

    async def set_owner(self, phone_number_id: str, contact: str, agent_id: str | None) -> None:
        """Set (or with None, clear) the contact's portfolio owner on the number."""
        if agent_id is None:
            await self._redis.hdel(keys.portfolio(phone_number_id), contact)
        else:
            await self._redis.hset(keys.portfolio(phone_number_id), contact, agent_id)

    # --- reads ----------------------------------------------------------------------------

    async def owner(self, phone_number_id: str, contact: str) -> str | None:
        value = await self._redis.hget(keys.portfolio(phone_number_id), contact)
        return None if value is None else _text(value)

    async def get(self, ticket_id: str) -> Ticket | None:
        raw = await self._redis.hgetall(keys.ticket(ticket_id))
        if not raw or b"id" not in raw:
            return None
        return _ticket({_text(k): _text(v) for k, v in raw.items()})

    async def get_many(self, ticket_ids: list[str]) -> list[Ticket]:
        """The existing tickets among `ticket_ids`, in that order (one round trip, one
        command: a client spends more per command than Redis per hash)."""
        if not ticket_ids:
            return []
        flats = await self._hashes(keys=[keys.ticket(t) for t in ticket_ids])
        out = []
        for flat in flats:
            raw = {_text(k): _text(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
            if "id" in raw:
                out.append(_ticket(raw))
        return out

    async def open_for_contacts(
        self, pairs: list[tuple[str, str]]
    ) -> dict[tuple[str, str], Ticket]:
        """The active ticket of each (phone_number_id, contact key) that has one (two round
        trips whatever the number of pairs)."""
        if not pairs:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for pnid, key in pairs:
                pipe.get(keys.open_ticket(pnid, key))
            ids = await pipe.execute()
        found = {pair: _text(i) for pair, i in zip(pairs, ids, strict=True) if i is not None}
        tickets = {t.id: t for t in await self.get_many(list(found.values()))}
        return {pair: tickets[i] for pair, i in found.items() if i in tickets}

    async def messages(self, ticket_id: str) -> list[TicketMessage]:
        """The ticket's messages, in the order they joined it (inbound ones carry ids only:
        their content is on the contact's timeline)."""
        out = []
        for value in await self._redis.lrange(keys.ticket_messages(ticket_id), 0, -1):
            data = json.loads(value)
            out.append(
                TicketMessage(
                    id=data["id"],
                    direction="in" if data.get("d") == "in" else "out",
                    at=datetime.fromtimestamp(int(data["at"]) / 1000, tz=UTC),
                    agent_id=data.get("agent_id"),
                    text=data.get("text"),
                )
            )
        return out

    async def history(self, ticket_id: str) -> list[TicketEvent]:
        out = []
        for value in await self._redis.lrange(keys.ticket_history(ticket_id), 0, -1):
            data = json.loads(value)
            detail = data.get("detail") or None
            out.append(
                TicketEvent(
                    at=datetime.fromtimestamp(int(data["at"]) / 1000, tz=UTC),
                    type=data["type"],
                    agent_id=data.get("agent_id") or None,
                    by=data.get("by") or None,
                    detail=detail,
                    from_agent=data.get("from") or None,
                    to_agent=data.get("to") or None,
                )
            )
        return out

    async def queue(self, phone_number_id: str, limit: int = LIST_MAX) -> list[str]:
        """The number's waiting ticket ids, next first."""
        ids = await self._redis.zrange(keys.ticket_queue(phone_number_id), 0, limit - 1)
        return [_text(i) for i in ids]

    async def position(self, ticket_id: str, phone_number_id: str) -> int | None:
        """The ticket's place in its queue (1 = next), None when it is not waiting."""
        rank = await self._redis.zrank(keys.ticket_queue(phone_number_id), ticket_id)
        return None if rank is None else int(rank) + 1

    async def held_by(self, agent_id: str) -> list[Held]:
        """The tickets occupying the agent's slots, with their numbers."""
        ids = sorted(_text(i) for i in await self._redis.smembers(keys.agent_tickets(agent_id)))
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for ticket_id in ids:
                pipe.hget(keys.ticket(ticket_id), "phone_number_id")
            numbers = await pipe.execute()
        return [Held(t, _text(n)) for t, n in zip(ids, numbers, strict=True) if n is not None]

    async def holders(self) -> list[str]:
        """Agents who may hold tickets (a superset: `requeue_held` prunes those who hold none),
        deleted agents included."""
        return sorted(_text(m) for m in await self._redis.smembers(keys.TICKET_HOLDERS))

    async def load(self, agent_id: str) -> int:
        """How many of the agent's slots are taken."""
        return int(await self._redis.scard(keys.agent_tickets(agent_id)))

    async def for_number(
        self, phone_number_id: str, status: TicketStatus | None = None, limit: int = LIST_MAX
    ) -> list[Ticket]:
        """The number's tickets, newest first (waiting ones in queue order), at most `limit`.

        Waiting and transferred tickets come from the queue, open ones from the active index,
        the rest from the number's index of every ticket (kept TICKET_TTL_S).
        """
        if status in ("waiting", "transferred"):
            ids = await self.queue(phone_number_id, LIST_MAX)
            found = await self.get_many(ids)
            return [t for t in found if t.status == status][:limit]
        index = keys.tickets_active if status == "open" else keys.tickets_all
        out: list[Ticket] = []
        start = 0
        page = max(limit, 100)
        while len(out) < limit:
            ids = [
                _text(i)
                for i in await self._redis.zrevrange(
                    index(phone_number_id), start, start + page - 1
                )
            ]
            if not ids:
                break
            start += page
            out.extend(t for t in await self.get_many(ids) if status is None or t.status == status)
        return out[:limit]

    async def search(
        self,
        phone_number_id: str,
        *,
        since: datetime,
        until: datetime,
        agent_id: str | None = None,
        status: TicketStatus | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> SearchResult:
        """The number's tickets created in [since, until), newest first, filtered: `agent_id`
        held them at some time, `status` is their status now, they carry `tag`.

        Reads the narrowest index the filters allow (tag, agent, final status, active, all)
        and checks the other filters ticket by ticket, examining at most SEARCH_SCAN_MAX
        tickets per call: a page may come back short with a `next_cursor` to go on from.

        Raises:
            ValueError: a malformed `cursor` (see `bot.domain.history.valid_cursor`).
        """
        if tag is not None:
            index = keys.tickets_by_tag(phone_number_id, tag)
        elif agent_id is not None:
            index = keys.tickets_by_agent(phone_number_id, agent_id)
        elif status in _FINAL:
            index = keys.tickets_by_outcome(phone_number_id, status)
        elif status is not None:
            index = keys.tickets_active(phone_number_id)
        else:
            index = keys.tickets_all(phone_number_id)
        low, high = _ms(since), _ms(until) - 1
        position: tuple[int, str] | None = None
        if cursor is not None:
            match = CURSOR_RE.fullmatch(cursor)
            if match is None:
                raise ValueError("malformed cursor")
            position = (int(match[1]), match[2])
        items: list[Ticket] = []
        examined = 0
        exhausted = False
        while len(items) < limit and examined < SEARCH_SCAN_MAX:
            want = min(max(limit, 100), SEARCH_SCAN_MAX - examined)
            chunk = await self._entries_below(index, low, high, position, want)
            found = {t.id: t for t in await self.get_many([i for _, i in chunk])}
            held = await self._also_held(phone_number_id, agent_id if tag else None, chunk)
            for entry in chunk:
                examined += 1
                position = entry
                ticket = found.get(entry[1])
                if ticket is None or (status is not None and ticket.status != status):
                    continue
                if (tag is not None and tag not in ticket.tags) or entry[1] not in held:
                    continue
                items.append(ticket)
                if len(items) == limit:
                    break
            if len(chunk) < want and position == (chunk[-1] if chunk else position):
                exhausted = True
                break
        next_cursor = None if exhausted or position is None else f"{position[0]}:{position[1]}"
        return SearchResult(items=items, next_cursor=next_cursor)

    async def _entries_below(
        self, index: str, low: int, high: int, position: tuple[int, str] | None, n: int
    ) -> list[tuple[int, str]]:
        """Up to `n` (score, id) of `index` in [low, high], newest first, strictly after
        `position` in that order (equal scores come in reverse id order)."""
        top = high if position is None else min(high, position[0])
        out: list[tuple[int, str]] = []
        skip = 0
        while len(out) < n and top >= low:
            pairs = await self._redis.zrevrangebyscore(
                index, top, low, start=skip, num=n, withscores=True
            )
            for member, score in pairs:
                entry = (int(score), _text(member))
                if position is None or entry[0] < position[0] or entry[1] < position[1]:
                    out.append(entry)
            if len(pairs) < n:
                break
            skip += n
        return out[:n]

    async def _also_held(
        self, phone_number_id: str, agent_id: str | None, entries: list[tuple[int, str]]
    ) -> set[str]:
        """The ids of `entries` that `agent_id` held (all of them when no agent is asked)."""
        ids = [i for _, i in entries]
        if agent_id is None or not ids:
            return set(ids)
        scores = await self._redis.zmscore(keys.tickets_by_agent(phone_number_id, agent_id), ids)
        return {i for i, score in zip(ids, scores, strict=True) if score is not None}
