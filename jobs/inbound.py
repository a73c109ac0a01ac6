"""process_inbound_message: the first job of every inbound message."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Final

import structlog
from arq import Retry

from bot.domain.actions import (
    LogAfterHoursContact,
    RequestCallback,
    RouteToTicket,
    SendAutoReply,
    Subject,
)
from bot.domain.decide import ContactState, ReplyMark, decide, in_service
from bot.domain.models import Contact, InboundMessage
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.domain.tickets import TicketRequest
from bot.runtime import queue
from bot.runtime.deps import Deps
from jobs import deps_from

log = structlog.get_logger(__name__)

# How long a job waits in place for a contact's lock before giving its slot back with a
# Retry. Holders keep it for milliseconds; waiting a little keeps a burst of one customer's
# messages from burning through max_tries on `Retry(defer=1)` alone.
LOCK_WAIT_S: Final = 2.0
# The throttles the decision reads (bot.domain.decide's SendAutoReply.throttle_kind values).
THROTTLE_KINDS: Final = ("absence", "after_hours", "notify_confirm")


def received_at(ctx: dict[str, Any], deps: Deps) -> datetime:
    """When the webhook was taken in: the job's enqueue time (the same on every re-run)."""
    enqueued = ctx.get("enqueue_time")
    return enqueued if isinstance(enqueued, datetime) else deps.clock.now()


async def process_inbound_message(ctx: dict[str, Any], wamid: str) -> str:
    """Put a claimed message on its contact's timeline, update the contact, apply the rules.

    Idempotent on `wamid` without a done-marker: each step is (the timeline entry is keyed by
    the wamid, the contact upsert converges, the rules key their effects by the wamid), so a
    re-run after a crash at any point completes the work and repeats none of it.
    Serialised per contact by a short lock.

    Returns:
        The rules' outcome; "missing" when the claim expired, "no_sender" when the message
        names no customer (nothing to attach it to).

    Raises:
        arq.Retry: the contact's lock stayed busy for LOCK_WAIT_S.
    """
    deps = deps_from(ctx)
    stores = deps.stores
    item = await stores.messages.inbound_raw(wamid)
    if item is None:
        log.warning("inbound_claim_missing", wamid=wamid)
        return "missing"
    message = InboundMessage.from_claim(item, wamid=wamid, received_at=received_at(ctx, deps))
    log_ = log.bind(wamid=wamid, phone_number_id=message.phone_number_id, type=message.type)
    if message.wa_id is None and message.user_id is None:
        log_.warning("inbound_without_sender", meta_type=message.meta_type)
        return "no_sender"
    key = await stores.contacts.key_for(message.phone_number_id, message.wa_id, message.user_id)
    lock = await stores.locks.acquire(message.phone_number_id, key, wait_s=LOCK_WAIT_S)
    if lock is None:
        log_.info("job_lock_busy")
        raise Retry(defer=1)
    try:
        # Independent and idempotent each: sent together (one round trip in the worker).
        new, contact = await asyncio.gather(
            stores.timeline.add_inbound(message, key=key),
            stores.contacts.upsert_from_inbound(message, key=key),
        )
        log_.debug("inbound_stored", new=new, timestamp_estimated=message.timestamp_estimated)
        return await _apply_rules(deps, message, contact)
    finally:
        await stores.locks.release(lock)


async def _apply_rules(deps: Deps, message: InboundMessage, contact: Contact) -> str:
    """Decide (bot.domain.decide, pure) and enqueue one effect job per action.

    Runs under the contact's lock, after the message is on the timeline and the contact is up
    to date. Every effect is keyed by `message.wamid`; an auto-reply additionally consumes its
    throttle here, atomically and idempotently on the wamid, so that two messages of one
    contact can never both be answered, and a retried job keeps the reply it was granted.

    Returns:
        The actions taken, comma-separated (for logs and tests).
    """
    stores = deps.stores
    pnid, key = message.phone_number_id, contact.key
    config, marks, agent_active = await asyncio.gather(
        stores.numbers.config(pnid),
        stores.throttle.marks(pnid, key, list(THROTTLE_KINDS)),
        stores.throttle.agent_active(pnid, key),
    )
    served = False
    if config is not None and config.absence.enabled and config.absence.skip_customers_in_service:
        # Only while absence is on: the lookup costs two round trips on the hot path.
        open_tickets = await stores.tickets.open_for_contacts([(pnid, key)])
        served = in_service(open_tickets.get((pnid, key)))
    state = ContactState(
        marks={kind: ReplyMark(mark.period, mark.at) for kind, mark in marks.items()},
        agent_active=agent_active,
        in_service=served,
    )
    actions = decide(message, config, state, deps.clock.now())
    subject = Subject(
        phone_number_id=pnid,
        wamid=message.wamid,
        contact=key,
        wa_id=message.wa_id,
        user_id=message.user_id,
        name=contact.name,
        at=message.timestamp,
    )
    granted: dict[str, bool] = {}
    taken: list[str] = []
    for action in actions:
        if isinstance(action, SendAutoReply):
            if not await _throttle_grants(deps, subject, action, granted):
                taken.append(f"throttled:{action.reply}")
                continue
            await queue.enqueue_reply(deps.redis, _reply_request(subject, action))
            taken.append(action.reply)
        elif isinstance(action, LogAfterHoursContact):
            await queue.enqueue_log_after_hours(deps.redis, subject, action)
            taken.append(action.kind)
        elif isinstance(action, RequestCallback):
            await queue.enqueue_callback_request(deps.redis, subject, action)
            taken.append(action.kind)
        elif isinstance(action, RouteToTicket):
            await queue.enqueue_open_ticket(deps.redis, _ticket_request(subject))
            taken.append(action.kind)
        else:
            taken.append(f"ignore:{action.reason}")
    outcome = ",".join(taken)
    log.info("inbound_processed", wamid=message.wamid, type=message.type, actions=outcome)
    return outcome


async def _throttle_grants(
    deps: Deps, subject: Subject, action: SendAutoReply, granted: dict[str, bool]
) -> bool:
    # Replies of one kind share one grant (the absence text and its contact card go together).
    kind = action.throttle_kind
    if kind is None:
        return True
    if kind not in granted:
        granted[kind] = await deps.stores.throttle.claim(
            subject.phone_number_id,
            subject.contact,
            kind,
            period=action.period or "",
            now=subject.at,
            cooldown_s=action.cooldown_s,
            by=subject.wamid,
        )
    return granted[kind]


def _reply_request(subject: Subject, action: SendAutoReply) -> ReplyRequest:
    natural_key = f"{subject.wamid}:{action.reply}"
    # Echoed on the reply's status webhooks: a send whose response was lost can be reconciled.
    body = {**action.body, "biz_opaque_callback_data": natural_key}
    return ReplyRequest(
        natural_key=natural_key,
        phone_number_id=subject.phone_number_id,
        wa_id=subject.wa_id,
        user_id=subject.user_id,
        contact=subject.contact,
        kind=ReplyKind(action.reply),
        body=body,
        free_form=True,
    )


def _ticket_request(subject: Subject) -> TicketRequest:
    return TicketRequest(
        phone_number_id=subject.phone_number_id,
        contact=subject.contact,
        wa_id=subject.wa_id,
        user_id=subject.user_id,
        name=subject.name,
        natural_key=subject.wamid,
        source="message",
        wamid=subject.wamid,
        at=subject.at,
    )
