"""`/api/v1/numbers/{id}/after-hours-contacts`: the 7-day list, and active messages from it.

Permissions: everybody attached to the number (agents, its managers, admins) reads the list
and sends active messages; a caller not attached to it gets 403.

`message_sent` flips when the active message is *queued* (the 202), not when Meta accepts
it: the list is how the desk sees that somebody already followed this contact up, and two
agents must not both send while the first one's message waits for its rate-limit slot. The
delivery itself is shown next to it, in `active_message.status` (queued, sent, failed).
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from aiohttp import web

from bot.appkeys import clock_key, queue_key, stores_key
from bot.domain import auth, bodies
from bot.domain.config import parse_body
from bot.domain.errors import ConflictError, InvalidInputError, NotFoundError
from bot.domain.replies import ReplyKind, ReplyRequest
from bot.runtime.queue import enqueue_reply
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.templates import find_template
from storage.after_hours import (
    REQUESTED_RETURNS,
    ROW_ID_PATTERN,
    ActiveMessageInput,
    AfterHoursContact,
    AfterHoursPage,
)

_ROW_ID_RE: Final = re.compile(ROW_ID_PATTERN)
_BOOLS: Final = {"true": True, "false": False}


def _number(request: web.Request) -> str:
    number = path_id(request, "phone_number_id")
    forbid_unless(auth.can_read_number(caller_of(request), number), "not attached to this number")
    return number


async def list_contacts(request: web.Request) -> web.Response:
    """The number's after-hours rows of the last 7 days, newest first.

    Filters: `requested_return` (yes, no, N/D) and `message_sent` (true, false); anything else
    is a 422 naming the parameter.
    """
    number = _number(request)
    requested = request.query.get("requested_return")
    if requested is not None and requested not in REQUESTED_RETURNS:
        raise InvalidInputError("requested_return must be yes, no or N/D", "requested_return")
    raw_sent = request.query.get("message_sent")
    if raw_sent is not None and raw_sent.lower() not in _BOOLS:
        raise InvalidInputError("message_sent must be true or false", "message_sent")
    sent = None if raw_sent is None else _BOOLS[raw_sent.lower()]
    stores = request.app[stores_key]
    config = await stores.numbers.config(number)
    if config is None:
        raise NotFoundError(f"number {number} not found")
    rows = await stores.after_hours.rows(number, request.app[clock_key].now())
    items = [
        row.view(config.zone)
        for row in rows
        if (requested is None or row.requested_return == requested)
        and (sent is None or row.message_sent == sent)
    ]
    return model_response(AfterHoursPage(items=items))


async def send_active_message(request: web.Request) -> web.Response:
    """Queue an approved template to the row's contact: 202 with the row, `message_sent` true.

    422 naming `template` (unknown, not approved, not sendable), `variables` (count) or
    `variables[i]` (empty or malformed value); 409 `already_sent` when the same template went
    to this contact within 24 hours, unless `"force": true`. The send is a `send_reply` job
    keyed by a natural key naming this request, so it goes out at most once (the outbox's
    rate limits, ordering and records apply).
    """
    number = _number(request)
    body = parse_body(ActiveMessageInput, await read_json(request))
    view = await queue_active_message(
        request, number, request.match_info["id"], body, actor=caller_of(request).id
    )
    return model_response(view, status=202)


async def queue_active_message(
    request: web.Request, number: str, rid: str, body: ActiveMessageInput, *, actor: str
) -> AfterHoursContact:
    """Queue an active message to after-hours row `rid`: the API's and the console's one path.

    Raises:
        NotFoundError: no such row (or number).
        InvalidInputError: `template`, `variables` or `variables[i]`.
        ConflictError: `already_sent` within 24 hours without `force`.
    """
    stores = request.app[stores_key]
    now = request.app[clock_key].now()
    config = await stores.numbers.config(number)
    row = (
        None
        if _ROW_ID_RE.fullmatch(rid) is None
        else await stores.after_hours.get(number, rid, now)
    )
    if config is None or row is None:
        raise NotFoundError(f"no after-hours contact {rid} on number {number}")
    template = await find_template(request, body.template, body.language)
    if template is None:
        raise InvalidInputError(
            f"unknown template {body.template} ({body.language}): not in the WABA's approved"
            " templates nor registered",
            "template",
        )
    template.check(body.variables)
    # One send per accepted request: the POST carries no idempotency key of its own (the
    # 24-hour mark is what stops an accidental repeat), so the key names this request.
    natural_key = f"active:{number}:{row.contact}:{template.name}:{secrets.token_hex(8)}"
    after_hours = stores.after_hours
    if not await after_hours.claim_active_message(
        number, row.contact, template.name, natural_key, force=body.force
    ):
        raise ConflictError(
            "already_sent",
            f"template {template.name} already went to this contact within 24 hours;"
            ' send with "force": true to send it again',
        )
    reply = ReplyRequest(
        natural_key=natural_key,
        phone_number_id=number,
        wa_id=row.wa_id,
        user_id=row.user_id,
        contact=row.contact,
        kind=ReplyKind.ACTIVE_MESSAGE,
        body=bodies.template(
            bodies.recipient(row.wa_id, row.user_id),
            template.name,
            template.language,
            body.variables,
            tag=natural_key,
        ),
        free_form=False,
        author=actor,
    )
    try:
        await enqueue_reply(request.app[queue_key], reply)
    except BaseException:
        # Not queued: free the 24-hour mark, or a retry of this request would get a 409.
        await after_hours.release_active_message(number, row.contact, template.name, natural_key)
        raise
    await after_hours.mark_message_sent(
        number,
        rid,
        template=template.name,
        language=template.language,
        natural_key=natural_key,
        at=now,
        by=actor,
    )
    updated = await after_hours.get(number, rid, now)
    return (updated or row).view(config.zone)
