"""send_reply: one message to one contact through the outbox, at most once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog
from arq import Retry

from bot.domain.bodies import summary
from bot.domain.errors import PermanentError, TransientError
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.runtime import queue
from bot.runtime.deps import Deps
from bot.services import conversation
from jobs import deps_from

log = structlog.get_logger(__name__)

# Meta's pair rate: 1 message per 6 s to one user, bursts of up to 45 borrowed (WHATSAPP.md 10).
PAIR_PER_SECOND = 1 / 6
PAIR_BURST = 45
# Waits shorter than this are slept in the job; longer ones defer it.
SLEEP_MAX_MS = 1000


def _retry_delay_s(base_s: float, job_try: int) -> float:
    return float(min(300.0, base_s * 2 ** max(0, job_try - 1)))


async def send_reply(ctx: dict[str, Any], request: dict[str, Any]) -> str:
    """Send `request` (a ReplyRequest) unless its natural key was already sent.

    Idempotent on `natural_key`: check done → claim → window and rate checks → send → mark done.
    Free text outside the 24-hour window is refused locally and recorded, never sent to Meta.
    Transient Graph failures retry the job with backoff; permanent ones are recorded with
    Meta's code and not retried. Replies to one contact leave in the order they were enqueued.
    A reply on a ticket (its own, or the contact's active one) is announced to the ticket's
    desk as `message.status` accepted (or failed, for an agent's reply), once.

    Returns:
        Meta's message id, "duplicate", or "failed:<reason>".
    """
    deps = deps_from(ctx)
    req = ReplyRequest.model_validate(request)
    sends = deps.stores.sends
    key = req.natural_key
    log_ = log.bind(natural_key=key, kind=req.kind, phone_number_id=req.phone_number_id)
    enqueued = ctx.get("enqueue_time")
    enqueued_at = enqueued if isinstance(enqueued, datetime) else deps.clock.now()
    # Done check, its place in the contact's send order (normally taken when it was queued,
    # bot.runtime.queue.enqueue_reply; NX keeps that place), first in that order, and the claim: at
    # once. The claim lives as long as this job may (arq cancels it at its timeout, and
    # `finally` releases it), so the claim of a worker killed mid-send has expired by the
    # time arq re-runs the job (after its in-progress key, timeout + 10 s). With a fixed
    # 120 s claim, the re-run spent its tries on `Retry(defer=2)` and was dead-lettered
    # (issue 10, fault suite: tests/faults/test_worker_crash.py).
    begin = await sends.begin(
        key,
        req.phone_number_id,
        req.contact,
        int(enqueued_at.timestamp() * 1000),
        claim_ttl_s=deps.settings.job_timeout_s,
    )
    if begin.state == "duplicate":
        log_.info("reply_duplicate_skipped")
        return "duplicate"
    if begin.state == "wait":
        # An earlier reply to this contact is pending, maybe retrying through a Graph outage.
        # Wait on the schedule of a failed send, so that waiting never spends this job's
        # tries faster than the earlier one spends its own (polling every second, a later
        # reply was dead-lettered 12 s into an outage: tests/faults/test_graph_outage.py).
        # The earlier reply brings this job forward as it leaves the order (`_leave_order`).
        job_try = int(ctx.get("job_try", 1))
        raise Retry(defer=_retry_delay_s(deps.settings.reply_retry_base_s, job_try))
    if begin.state == "busy":
        # Another run holds it: wait it out instead of polling; a live holder finishes (or
        # is cancelled) within the claim's life.
        raise Retry(defer=max(1.0, begin.claim_expires_in_s))
    try:
        if req.free_form and not await deps.stores.contacts.window_open(
            req.phone_number_id, req.contact, deps.clock.now()
        ):
            await _fail(
                deps,
                req,
                code=None,
                reason="window_closed",
                message="free text outside the 24-hour window",
            )
            return "failed:window_closed"
        await _wait_for_rate(deps, req)
        try:
            message_id = await deps.outbox.send(req.phone_number_id, req.body)
        except TransientError as exc:
            job_try = int(ctx.get("job_try", 1))
            log_.warning("reply_deferred", code=exc.code, status=exc.http_status, job_try=job_try)
            raise Retry(defer=_retry_delay_s(deps.settings.reply_retry_base_s, job_try)) from exc
        except PermanentError as exc:
            await _fail(deps, req, code=exc.code, reason="meta_refused", message=exc.message)
            return f"failed:{exc.code}"
        # The one window left: a crash right here repeats this send once (no idempotency key
        # at Meta). biz_opaque_callback_data on the body lets status webhooks reconcile it.
        await sends.mark_sent(key, message_id)
        now = deps.clock.now()
        ticket_id = await _ticket_of(deps, req)
        # Idempotent bookkeeping of a send already marked done: independent, sent together.
        await asyncio.gather(
            deps.stores.outgoing.record_sent(
                message_id,
                phone_number_id=req.phone_number_id,
                wa_id=req.wa_id or req.user_id or "",
                kind=str(req.kind),
                natural_key=key,
                body_type=str(req.body.get("type")),
                sent_at=now,
                ticket_id=ticket_id,
            ),
            deps.stores.timeline.add_outbound(
                req.phone_number_id,
                req.contact,
                message_id,
                str(req.kind),
                summary(req.body),
                now,
                natural_key=key,
            ),
            deps.stores.contacts.record_outbound(req.phone_number_id, req.contact, now),
        )
        if ticket_id is not None:
            # After the record: the status job announces later states from it.
            await conversation.announce_status(
                deps.stores,
                ticket_id=ticket_id,
                message_id=key if req.kind == ReplyKind.AGENT else message_id,
                status="accepted",
            )
        await _leave_order(deps, req)
        log_.info("reply_sent", message_id=message_id)
        return message_id
    finally:
        await sends.release(key)


async def _ticket_of(deps: Deps, req: ReplyRequest) -> str | None:
    """The ticket a reply belongs to: its own, else the contact's active ticket (an absence
    text sent while one waits is part of that ticket's conversation)."""
    if req.ticket_id is not None:
        return req.ticket_id
    pair = (req.phone_number_id, req.contact)
    active = await deps.stores.tickets.open_for_contacts([pair])
    return active[pair].id if pair in active else None


async def _leave_order(deps: Deps, req: ReplyRequest) -> None:
    """Leave the contact's send order and wake the next reply, which may be waiting deferred."""
    sends = deps.stores.sends
    await sends.leave_order(req.phone_number_id, req.contact, req.natural_key)
    following = await sends.first_in_order(req.phone_number_id, req.contact)
    if following is not None:
        await queue.hurry_reply(deps.redis, following)


async def _wait_for_rate(deps: Deps, req: ReplyRequest) -> None:
    """Per-number throughput (shared by every process) and Meta's per-recipient pair rate."""
    limits = (
        (
            f"number:{req.phone_number_id}",
            deps.settings.graph_rate_per_second,
            deps.settings.graph_rate_per_second,
        ),
        (f"pair:{req.phone_number_id}:{req.contact}", PAIR_PER_SECOND, PAIR_BURST),
    )
    for name, per_second, burst in limits:
        while (
            wait_ms := await deps.stores.rates.acquire(name, per_second=per_second, burst=burst)
        ) > 0:
            if wait_ms > SLEEP_MAX_MS:
                log.info("reply_rate_limited", limit=name.split(":")[0], wait_ms=wait_ms)
                raise Retry(defer=wait_ms / 1000)
            await asyncio.sleep(wait_ms / 1000)


async def _fail(
    deps: Deps, req: ReplyRequest, *, code: int | None, reason: str, message: str
) -> None:
    await deps.stores.sends.mark_failed(
        req.natural_key,
        code if code is not None else reason,
        {
            "natural_key": req.natural_key,
            "phone_number_id": req.phone_number_id,
            "kind": str(req.kind),
            "reason": reason,
            "code": code,
            "message": message,
            "at": deps.clock.now().isoformat(),
        },
    )
    if req.kind == ReplyKind.AGENT and req.ticket_id is not None:
        # An agent's reply is on the ticket under its send key: its desk learns it failed. An
        # automatic message refused before Meta took it has no id to show and is not announced.
        await conversation.announce_status(
            deps.stores,
            ticket_id=req.ticket_id,
            message_id=req.natural_key,
            status="failed",
            error=message,
        )
    await _leave_order(deps, req)
    log.warning("reply_failed", natural_key=req.natural_key, reason=reason, code=code)
