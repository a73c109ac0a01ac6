"""Ticket jobs: open (or continue) a ticket, drain a queue, and the sweep that keeps tickets
from sticking (requeue after an agent goes offline, re-route unanswered, expire the lost)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

import structlog

from bot.domain import bodies
from bot.domain.config import NumberConfig, Tickets
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.domain.tickets import TicketRequest, welcome_text
from bot.runtime import queue
from bot.runtime.deps import Deps
from bot.services import conversation
from jobs import deps_from
from storage.tickets import DRAIN_BATCH, Opened

log = structlog.get_logger(__name__)

# Meta's customer service window: a message older than this gets no automatic reply.
WINDOW: Final = timedelta(hours=24)
# Sweep passes over one number per run, each handling at most DRAIN_BATCH tickets: bounds a
# run after a long outage (the next run continues).
MAX_PASSES: Final = 20


async def open_ticket(ctx: dict[str, Any], request: dict[str, Any]) -> str:
    """Open a ticket for the contact (or attach the message to their active one) and route it.

    Idempotent on the request's natural key (storage/tickets.py): a retried job or a
    redelivered message never opens a second ticket nor attaches a message twice. The message
    is announced to the ticket's desk (`message.in`, once per wamid). When the
    number has a welcome reply on, a new ticket gets it once (reply key
    `<natural_key>:welcome`), with its queue position when it waits.

    Returns:
        "<outcome>:<ticket id>", outcome being created, attached or duplicate.
    """
    deps = deps_from(ctx)
    req = TicketRequest.model_validate(request)
    now = deps.clock.now()
    opened = await deps.stores.tickets.open_or_attach(req, now=now)
    log.info(
        "ticket_opened",
        ticket_id=opened.ticket_id,
        outcome=opened.outcome,
        agent_id=opened.agent_id,
        position=opened.position or None,
        source=req.source,
        phone_number_id=req.phone_number_id,
    )
    if req.wamid:
        # On every run, a "duplicate" too: a run that died after attaching the message still
        # announces it, and the event's own marker keeps it to one (issue 19).
        await conversation.announce_inbound(deps.stores, opened.ticket_id, req.wamid, req.at)
    if opened.opened_by_request:
        await _welcome(deps, req, opened, now)
    return f"{opened.outcome}:{opened.ticket_id}"


async def _welcome(deps: Deps, req: TicketRequest, opened: Opened, now: datetime) -> None:
    # Only for a customer who just wrote: a callback at the next opening is the agent's move,
    # and a message older than the window may not get a free-form reply at all.
    if req.source != "message" or now - req.at > WINDOW:
        return
    if req.wa_id is None and req.user_id is None:
        return
    config = await deps.stores.numbers.config(req.phone_number_id)
    if config is None:
        return
    text = welcome_text(config, opened.position or None)
    if text is None:
        return
    await queue.enqueue_reply(
        deps.redis,
        ReplyRequest(
            natural_key=f"{req.natural_key}:welcome",
            phone_number_id=req.phone_number_id,
            wa_id=req.wa_id,
            user_id=req.user_id,
            contact=req.contact,
            kind=ReplyKind.WELCOME,
            body=bodies.text(bodies.recipient(req.wa_id, req.user_id), text),
            ticket_id=opened.ticket_id,
        ),
    )


async def drain_queue(ctx: dict[str, Any], phone_number_id: str, reason: str) -> int:
    """Route the number's waiting tickets to agents with free slots (an agent came online or
    got more slots). Idempotent: with no room or no waiting ticket it does nothing.

    Returns:
        How many tickets were routed.
    """
    deps = deps_from(ctx)
    routed = await deps.stores.tickets.drain([phone_number_id], now=deps.clock.now())
    if routed:
        log.info(
            "ticket_queue_drained",
            phone_number_id=phone_number_id,
            reason=reason,
            routed=len(routed),
        )
    return len(routed)


def _settings(config: NumberConfig | None) -> Tickets:
    return config.tickets if config is not None else Tickets()


async def sweep_tickets(ctx: dict[str, Any]) -> dict[str, int]:
    """The cron job that leaves no ticket in limbo (every worker runs it; arq's unique cron
    job ids make one of them do each tick). Each step is a script that re-checks its condition,
    so a sweep that overlaps another, or runs late, changes nothing twice.

    1. Tickets held by an agent who went invisible more than `offline_grace_minutes` ago, was
       deleted, or was detached from the ticket's number go back to the queue.
    2. Tickets assigned more than `reroute_after_minutes` ago without a first reply are routed
       again (not to the same agent for another such period).
    3. Waiting tickets idle for `lost_after_minutes` are closed as lost (or abandoned).
    4. Every queue is drained, so that no capacity is left unused whatever was missed.

    Returns:
        How many tickets each step moved.
    """
    deps = deps_from(ctx)
    now = deps.clock.now()
    stores = deps.stores
    numbers = await stores.numbers.ids()
    configs = {n: _settings(c) for n, c in zip(numbers, await _configs(deps, numbers), strict=True)}
    counts = {"requeued": 0, "rerouted": 0, "lost": 0, "drained": 0}

    for agent_id in await stores.tickets.holders():
        held = await stores.tickets.held_by(agent_id)
        agent = await stores.agents.get(agent_id)
        due = []
        for ticket in held:
            grace = timedelta(
                minutes=configs.get(ticket.phone_number_id, Tickets()).offline_grace_minutes
            )
            gone = agent is None or ticket.phone_number_id not in agent.numbers
            offline = (
                agent is not None
                and agent.status == "invisible"
                and (agent.status_changed_at is None or agent.status_changed_at <= now - grace)
            )
            if gone or offline:
                due.append(ticket.ticket_id)
        moved = await stores.tickets.requeue_held(agent_id, due, now=now)
        counts["requeued"] += len(moved)

    for number, settings in configs.items():
        period = timedelta(minutes=settings.reroute_after_minutes)
        for _ in range(MAX_PASSES):
            moved = await stores.tickets.reroute_unanswered(
                number, assigned_before=now - period, now=now, exclude_for=period
            )
            counts["rerouted"] += len(moved)
            if len(moved) < DRAIN_BATCH:
                break
        lost_after = timedelta(minutes=settings.lost_after_minutes)
        for _ in range(MAX_PASSES):
            closed = await stores.tickets.expire_waiting(
                number, idle_before=now - lost_after, now=now
            )
            counts["lost"] += len(closed)
            if len(closed) < DRAIN_BATCH:
                break
        counts["drained"] += len(await stores.tickets.drain([number], now=now))

    if any(counts.values()):
        log.info("tickets_swept", **counts)
    return counts


async def _configs(deps: Deps, numbers: list[str]) -> list[NumberConfig | None]:
    stored = {s.phone_number_id: s.config for s in await deps.stores.numbers.get_many(numbers)}
    return [stored.get(n) for n in numbers]
