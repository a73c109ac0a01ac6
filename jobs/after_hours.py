"""After-hours effect jobs: the 7-day contact list, callback requests and the callback itself.

- `log_after_hours_contact`: one row per contact per closed period (storage/after_hours.py).
- `request_callback`: the "notify me" tap: the row says `yes`, and a `run_callback` job is
  scheduled at the number's next opening under a fixed job id.
- `run_callback`: at the opening, opens the "callback" ticket, exactly once.
- `reschedule_callbacks`: after a settings change, moves the pending callbacks.

Exactly-once does not rest on arq's job id (unique only while the job exists): the callback
record goes pending -> opened in one script, and the ticket is keyed by
`callback:<number>:<contact>:<period>`, so a rerun, a second tap or a redelivery opens nothing
more.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from arq import Retry

from bot.domain.actions import LogAfterHoursContact, RequestCallback, Subject
from bot.domain.config import NumberConfig
from bot.domain.hours import compile_schedule
from bot.domain.phones import e164
from bot.domain.tickets import TicketRequest
from bot.runtime import queue
from bot.runtime.deps import Deps
from jobs import deps_from
from storage.after_hours import NO_NAME, ContactInfo, RequestedReturn, row_id

log = structlog.get_logger(__name__)

CONTACT_EVENT = "after_hours.contact"
CALLBACK_EVENT = "after_hours.callback"


def _who(subject: Subject) -> ContactInfo:
    return ContactInfo(
        contact=subject.contact,
        wa_id=subject.wa_id,
        user_id=subject.user_id,
        name=subject.name,
        phone=e164(subject.wa_id) if subject.wa_id else None,
    )


async def _listed_config(deps: Deps, subject: Subject) -> NumberConfig | str:
    """The number's settings when it keeps an after-hours list; else why it does not
    ("unknown_number", "always_open")."""
    config = await deps.stores.numbers.config(subject.phone_number_id)
    if config is None:
        log.info("after_hours_unknown_number", phone_number_id=subject.phone_number_id)
        return "unknown_number"
    if config.service_hours.always_open:
        # bot.domain.decide never logs a contact of an always-open number; a job queued before the
        # number became always open must not add a row either.
        log.info("after_hours_always_open", phone_number_id=subject.phone_number_id)
        return "always_open"
    return config


async def _record(
    deps: Deps,
    subject: Subject,
    config: NumberConfig,
    *,
    period: str,
    next_opening: datetime | None,
    requested_return: RequestedReturn,
) -> tuple[str, str]:
    """Write the message into its row and announce a new row; (row id, outcome)."""
    pnid = subject.phone_number_id
    rid = row_id(pnid, subject.contact, period)
    store = deps.stores.after_hours
    recorded = await store.record_contact(
        pnid,
        rid,
        _who(subject),
        wamid=subject.wamid,
        at=subject.at,
        now=deps.clock.now(),
        period=period,
        next_opening=next_opening,
        requested_return=requested_return,
    )
    if not recorded.stored:
        return rid, "too_old"
    if not recorded.announced:
        # Published after the row is stored, and marked after publishing: a crash in between
        # repeats the event (at least once) rather than losing it.
        await deps.stores.events.publish_to_number(
            pnid,
            CONTACT_EVENT,
            {
                "id": rid,
                "phone_number_id": pnid,
                "wa_id": subject.wa_id,
                "name": subject.name or NO_NAME,
                "contacted_at": subject.at.astimezone(config.zone).isoformat(),
                "requested_return": requested_return,
                "ticket_id": None,
            },
        )
        await store.mark_announced(pnid, rid)
    if recorded.created:
        return rid, "created"
    return rid, "updated" if recorded.new_message else "duplicate"


async def log_after_hours_contact(
    ctx: dict[str, Any], subject: dict[str, Any], action: dict[str, Any]
) -> str:
    """Add the message to its contact's row for the closed period (create the row if new).

    Idempotent on the wamid: a redelivered message neither adds a row nor counts twice.
    Nothing is stored for an always-open or unknown number, or for a message already older
    than the list's 7 days. A new row is announced on the desk stream (`after_hours.contact`).

    Returns:
        "created", "updated", "duplicate", "too_old", "always_open" or "unknown_number".
    """
    deps = deps_from(ctx)
    subj = Subject.model_validate(subject)
    act = LogAfterHoursContact.model_validate(action)
    config = await _listed_config(deps, subj)
    if isinstance(config, str):
        return config
    _, outcome = await _record(
        deps,
        subj,
        config,
        period=act.period,
        next_opening=act.next_opening,
        requested_return=act.requested_return,
    )
    log.info("after_hours_contact_logged", phone_number_id=subj.phone_number_id, outcome=outcome)
    return outcome


async def request_callback(
    ctx: dict[str, Any], subject: dict[str, Any], action: dict[str, Any]
) -> str:
    """The contact tapped "notify me": mark the row `yes` and schedule the callback.

    The tap counts as a message of the period (idempotent on its wamid). The callback record is
    created once per row (a second tap changes nothing) and its `run_callback` job is queued at
    the number's next opening (under its current settings; `callback_at` is what the decision
    saw) under the fixed id `callback:<number>:<row>`, so it is never queued twice.
    With no opening within a year nothing is queued: `reschedule_callbacks` queues it once the
    schedule changes. A new callback is announced on the desk stream (`after_hours.callback`).

    Returns:
        "scheduled", "unscheduled", "duplicate", "too_old", "always_open" or "unknown_number".
    """
    deps = deps_from(ctx)
    subj = Subject.model_validate(subject)
    act = RequestCallback.model_validate(action)
    config = await _listed_config(deps, subj)
    if isinstance(config, str):
        return config
    pnid = subj.phone_number_id
    rid, outcome = await _record(
        deps, subj, config, period=act.period, next_opening=act.callback_at, requested_return="yes"
    )
    if outcome == "too_old":
        return outcome
    store = deps.stores.after_hours
    now = deps.clock.now()
    # The next opening under the settings as they are now: `act.callback_at` is what the
    # decision saw, and a change since then would otherwise go unnoticed by this callback.
    due = compile_schedule(config.service_hours, config.zone).next_opening(now)
    created = await store.request_callback(
        pnid, rid, _who(subj), period=act.period, due=due, now=now
    )
    callback = await store.callback(pnid, rid)
    if callback is None or callback.status != "pending":
        return "duplicate"
    if callback.due is not None:
        # Also on a repeat: the fixed job id makes this a no-op while the job is queued, and
        # restores it if it was lost (a worker crash between the record and this line).
        await queue.enqueue_run_callback(deps.redis, pnid, rid, callback.due, now=now)
    if created:
        await deps.stores.events.publish_to_number(
            pnid,
            CALLBACK_EVENT,
            {
                "id": rid,
                "phone_number_id": pnid,
                "wa_id": subj.wa_id,
                "name": subj.name or NO_NAME,
                "status": "scheduled",
                "callback_at": None
                if callback.due is None
                else callback.due.astimezone(config.zone).isoformat(),
                "ticket_id": None,
            },
        )
    log.info("after_hours_callback_requested", phone_number_id=pnid, created=created)
    if not created:
        return "duplicate"
    return "scheduled" if callback.due is not None else "unscheduled"


async def run_callback(ctx: dict[str, Any], phone_number_id: str, row_id: str) -> str:
    """At the number's opening, open the row's "callback" ticket, exactly once.

    When the number is not open (its schedule changed, or the job ran early), the callback
    moves to the next opening (`Retry`, same job id); with no opening within a year it waits
    for `reschedule_callbacks`. The ticket is requested with `enqueue_open_ticket`,
    `source="callback"` and natural key `callback:<number>:<contact>:<period>`; the callback
    goes pending -> opened once, and only that transition announces `after_hours.callback`.

    Returns:
        "opened", "duplicate", "missing", "no_opening" or "unknown_number".
    """
    deps = deps_from(ctx)
    store = deps.stores.after_hours
    log_ = log.bind(phone_number_id=phone_number_id, row_id=row_id)
    callback = await store.callback(phone_number_id, row_id)
    if callback is None:
        log_.info("callback_missing")
        return "missing"
    if callback.status == "opened":
        return "duplicate"
    config = await deps.stores.numbers.config(phone_number_id)
    if config is None:
        # Left pending: reschedule_callbacks picks it up if the number is served again.
        log_.info("callback_unknown_number")
        return "unknown_number"
    now = deps.clock.now()
    schedule = compile_schedule(config.service_hours, config.zone)
    if not schedule.is_open(now):
        opening = schedule.next_opening(now)
        await store.set_callback_due(phone_number_id, row_id, opening, now)
        if opening is None:
            log_.info("callback_no_opening")
            return "no_opening"
        log_.info("callback_deferred", due=opening.isoformat())
        raise Retry(defer=max(opening - now, timedelta(0)))
    request = TicketRequest(
        phone_number_id=phone_number_id,
        contact=callback.contact,
        wa_id=callback.wa_id,
        user_id=callback.user_id,
        name=callback.name,
        natural_key=callback.natural_key,
        source="callback",
        at=now,
    )
    # Before the transition: if this job dies in between, its rerun (or a reschedule) enqueues
    # again, and the ticket's natural key keeps that to one ticket.
    await queue.enqueue_open_ticket(deps.redis, request)
    if not await store.mark_callback_opened(phone_number_id, row_id, at=now, ticket_id=None):
        return "duplicate"
    await deps.stores.events.publish_to_number(
        phone_number_id,
        CALLBACK_EVENT,
        {
            "id": row_id,
            "phone_number_id": phone_number_id,
            "wa_id": callback.wa_id,
            "name": callback.name or NO_NAME,
            "status": "opened",
            "callback_at": now.astimezone(config.zone).isoformat(),
            "ticket_key": callback.natural_key,
            "ticket_id": None,
        },
    )
    log_.info("callback_opened")
    return "opened"


async def reschedule_callbacks(ctx: dict[str, Any], phone_number_id: str) -> int:
    """Move the number's pending callbacks to its next opening under the current settings.

    Queued after every settings change (`enqueue_reschedule_callbacks`). Each pending callback's
    job is moved atomically (same job id), or queued again when it is missing. When a callback's
    job is running right now the whole pass is retried a second later (idempotent: moving to
    the same time twice changes nothing).

    Returns:
        How many pending callbacks were given the new time.
    """
    deps = deps_from(ctx)
    config = await deps.stores.numbers.config(phone_number_id)
    if config is None:
        return 0
    store = deps.stores.after_hours
    now = deps.clock.now()
    opening = compile_schedule(config.service_hours, config.zone).next_opening(now)
    moved, running = 0, False
    for rid in await store.pending_callbacks(phone_number_id):
        if not await store.set_callback_due(phone_number_id, rid, opening, now):
            continue
        moved += 1
        if opening is None:
            # A queued job will find no opening when it runs and wait for the next change.
            continue
        outcome = await queue.move_run_callback(deps.redis, phone_number_id, rid, opening, now=now)
        if outcome == "absent":
            await queue.enqueue_run_callback(deps.redis, phone_number_id, rid, opening, now=now)
        elif outcome == "running":
            running = True
    log.info("callbacks_rescheduled", phone_number_id=phone_number_id, moved=moved)
    if running:
        raise Retry(defer=1)
    return moved
