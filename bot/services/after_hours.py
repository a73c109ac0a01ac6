"""After-hours use cases: a number's 7-day list of contacts who wrote while it was closed, and
the active message (an approved template) an agent sends one of them.

Permissions: everybody attached to the number reads the list and sends active messages.

`message_sent` flips when the active message is *queued*, not when Meta accepts it: the list
is how the desk sees that somebody already followed this contact up, and two agents must not
both send while the first one's message waits for its rate-limit slot. The delivery itself
is `active_message.status` (queued, sent, failed).
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from bot.domain import auth, bodies
from bot.domain.auth import Caller
from bot.domain.config import StoredNumber
from bot.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.runtime.deps import Deps
from bot.runtime.queue import enqueue_reply
from bot.services.templates import Template, find_template
from storage.after_hours import (
    REQUESTED_RETURNS,
    ROW_ID_PATTERN,
    ActiveMessageInput,
    AfterHoursContact,
    AfterHoursPage,
    RequestedReturn,
)

# The models of these use cases, for handlers (which may not import storage).
__all__ = [
    "REQUESTED_RETURNS",
    "ROW_ID_PATTERN",
    "ActiveMessageInput",
    "AfterHoursContact",
    "AfterHoursPage",
    "RequestedReturn",
]

_ROW_ID_RE: Final = re.compile(ROW_ID_PATTERN)


def require_attached(caller: Caller, phone_number_id: str) -> None:
    """Raise ForbiddenError unless `caller` is attached to the number."""
    if not auth.can_read_number(caller, phone_number_id):
        raise ForbiddenError("not attached to this number")


async def contacts(
    deps: Deps,
    caller: Caller,
    phone_number_id: str,
    *,
    requested_return: RequestedReturn | None = None,
    message_sent: bool | None = None,
) -> list[AfterHoursContact]:
    """The number's after-hours rows of the last 7 days, newest first, in the number's zone;
    filtered by `requested_return` and `message_sent` when given. Reads only.

    Raises:
        ForbiddenError: see `require_attached`.
        NotFoundError: the number is not served.
    """
    require_attached(caller, phone_number_id)
    config = await deps.stores.numbers.config(phone_number_id)
    if config is None:
        raise NotFoundError(f"number {phone_number_id} not found")
    rows = await deps.stores.after_hours.rows(phone_number_id, deps.clock.now())
    return [
        row.view(config.zone)
        for row in rows
        if (requested_return is None or row.requested_return == requested_return)
        and (message_sent is None or row.message_sent == message_sent)
    ]


async def contact(deps: Deps, caller: Caller, stored: StoredNumber, rid: str) -> AfterHoursContact:
    """One listed row of the number, in its zone.

    Raises:
        ForbiddenError: see `require_attached`.
        NotFoundError: no such row listed now (or `rid` cannot be a row id).
    """
    require_attached(caller, stored.phone_number_id)
    row = None
    if _ROW_ID_RE.fullmatch(rid) is not None:
        row = await deps.stores.after_hours.get(stored.phone_number_id, rid, deps.clock.now())
    if row is None:
        raise NotFoundError(f"no after-hours contact {rid[:40]} on number {stored.phone_number_id}")
    return row.view(stored.config.zone)


async def send_active_message(
    deps: Deps, caller: Caller, phone_number_id: str, rid: str, body: ActiveMessageInput
) -> AfterHoursContact:
    """Queue an approved template to row `rid`'s contact; returns the row, `message_sent`
    true. The send is a `send_reply` job keyed by a natural key naming this call, so it goes
    out at most once (the outbox's rate limits, ordering and records apply).

    Raises:
        ForbiddenError: see `require_attached`.
        NotFoundError: no such row (or number).
        InvalidInputError: `template` (unknown, not approved, not sendable), `variables`
            (count) or `variables[i]` (empty or malformed value).
        ConflictError: `already_sent`, the same template went to this contact within 24
            hours, unless `body.force`.
    """
    require_attached(caller, phone_number_id)
    stores = deps.stores
    now = deps.clock.now()
    config = await stores.numbers.config(phone_number_id)
    row = (
        None
        if _ROW_ID_RE.fullmatch(rid) is None
        else await stores.after_hours.get(phone_number_id, rid, now)
    )
    if config is None or row is None:
        raise NotFoundError(f"no after-hours contact {rid} on number {phone_number_id}")
    natural_key, template = await queue_template(
        deps, caller, phone_number_id, row.contact, row.wa_id, row.user_id, body
    )
    after_hours = stores.after_hours
    await after_hours.mark_message_sent(
        phone_number_id,
        rid,
        template=template.name,
        language=template.language,
        natural_key=natural_key,
        at=now,
        by=caller.id,
    )
    updated = await after_hours.get(phone_number_id, rid, now)
    return (updated or row).view(config.zone)


async def queue_template(
    deps: Deps,
    caller: Caller,
    phone_number_id: str,
    contact: str,
    wa_id: str | None,
    user_id: str | None,
    body: ActiveMessageInput,
) -> tuple[str, Template]:
    """Queue an approved template to one contact: the one active-message workflow, whichever
    screen asks (the after-hours list, the contact view). Returns the send's natural key and
    the template.

    The template is looked up and its variables checked; the 24-hour mark per (contact,
    template) is claimed (so a template sent from either screen is not sent again from the
    other without `force`); one `send_reply` job goes out, keyed by a natural key naming this
    call. Should the enqueue fail, the mark is freed again (a retry must not get a 409).

    Raises:
        InvalidInputError: `template` (unknown, not approved, not sendable), `variables`
            (count) or `variables[i]` (empty or malformed value).
        ConflictError: `already_sent` within 24 hours, unless `body.force`.
    """
    template = await find_template(deps, body.template, body.language)
    if template is None:
        raise InvalidInputError(
            f"unknown template {body.template} ({body.language}): not in the WABA's approved"
            " templates nor registered",
            "template",
        )
    template.check(body.variables)
    # One send per accepted call: it carries no idempotency key of its own (the 24-hour mark
    # is what stops an accidental repeat), so the key names this call.
    natural_key = f"active:{phone_number_id}:{contact}:{template.name}:{secrets.token_hex(8)}"
    after_hours = deps.stores.after_hours
    if not await after_hours.claim_active_message(
        phone_number_id, contact, template.name, natural_key, force=body.force
    ):
        raise ConflictError(
            "already_sent",
            f"template {template.name} already went to this contact within 24 hours;"
            ' send with "force": true to send it again',
        )
    reply = ReplyRequest(
        natural_key=natural_key,
        phone_number_id=phone_number_id,
        wa_id=wa_id,
        user_id=user_id,
        contact=contact,
        kind=ReplyKind.ACTIVE_MESSAGE,
        body=bodies.template(
            bodies.recipient(wa_id, user_id),
            template.name,
            template.language,
            body.variables,
            tag=natural_key,
        ),
        free_form=False,
        author=caller.id,
    )
    try:
        await enqueue_reply(deps.redis, reply)
    except BaseException:
        # Not queued: free the 24-hour mark, or a retry of this call would get a 409.
        await after_hours.release_active_message(
            phone_number_id, contact, template.name, natural_key
        )
        raise
    return natural_key, template
