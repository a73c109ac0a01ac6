"""apply_status_update: delivery statuses of the messages deskline sent."""

from __future__ import annotations

from typing import Any

import structlog

from bot.domain.models import StatusUpdate
from bot.services import conversation
from jobs import deps_from
from jobs.inbound import received_at

log = structlog.get_logger(__name__)


async def apply_status_update(ctx: dict[str, Any], claim_id: str) -> str:
    """Apply one status (`<message id>:<status>`) to its outgoing message.

    Idempotent: the delivery state only moves forward (storage/outgoing.py), so a re-run or a
    repeated status changes nothing. A state reached by a message sent on a ticket is
    announced to the ticket's desk (`message.status`, once per message and state).

    Returns:
        "applied", "unchanged", "pending" (no record of sending it yet: kept for when it
        comes), "ignored" (a status deskline does not track), or "missing" (claim expired).
    """
    deps = deps_from(ctx)
    item = await deps.stores.messages.status_raw(claim_id)
    if item is None:
        log.warning("status_claim_missing", claim_id=claim_id)
        return "missing"
    update = StatusUpdate.from_claim(item, claim_id=claim_id, received_at=received_at(ctx, deps))
    result = await deps.stores.outgoing.apply_status(update)
    if result in ("applied", "unchanged"):
        # The desk hears of the state the message is in now, once per state: a re-run whose
        # first run applied it but died before announcing still announces ("unchanged"), and
        # a late status (delivered after read) announces nothing.
        message = await deps.stores.outgoing.get(update.id)
        if message is not None and message.state == update.status:
            await conversation.announce_delivery(deps.stores, message)
    log.info(
        "status_applied",
        message_id=update.id,
        status=update.meta_status,
        result=result,
        errors=[e.code for e in update.errors] or None,
    )
    return result
