"""process_inbound_message: the first job of every inbound message."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import structlog
from arq import Retry

from bot.deps import Deps
from bot.models import Contact, InboundMessage
from jobs import deps_from

log = structlog.get_logger(__name__)

# How long a job waits in place for a contact's lock before giving its slot back with a
# Retry. Holders keep it for milliseconds; waiting a little keeps a burst of one customer's
# messages from burning through max_tries on `Retry(defer=1)` alone.
LOCK_WAIT_S: Final = 2.0


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
        new = await stores.timeline.add_inbound(message, key=key)
        contact = await stores.contacts.upsert_from_inbound(message, key=key)
        log_.debug("inbound_stored", new=new, timestamp_estimated=message.timestamp_estimated)
        return await _apply_rules(deps, message, contact)
    finally:
        await stores.locks.release(lock)


async def _apply_rules(deps: Deps, message: InboundMessage, contact: Contact) -> str:
    """The number's rules (absence, after hours, tickets): built by the chatbot-rules issue.

    Runs under the contact's lock, after the message is on the timeline and the contact is
    up to date. Must key every effect by `message.wamid`.
    """
    log.info("inbound_processed", wamid=message.wamid, type=message.type, rules="none")
    return "no_rules"
