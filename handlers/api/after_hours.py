"""`/api/v1/numbers/{id}/after-hours-contacts`: the 7-day list, and active messages from it.

Permissions: everybody attached to the number (agents, its managers, admins) reads the list
and sends active messages; a caller not attached to it gets 403. The workflows, and why
`message_sent` flips when the message is queued: bot/services/after_hours.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import deps_key
from bot.domain.config import parse_body
from bot.services import after_hours
from bot.services.after_hours import ActiveMessageInput, AfterHoursPage
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of
from handlers.api.queries import AfterHoursQuery, read_query


def _number(request: web.Request) -> str:
    number = path_id(request, "phone_number_id")
    after_hours.require_attached(caller_of(request), number)
    return number


async def list_contacts(request: web.Request) -> web.Response:
    """The number's after-hours rows of the last 7 days, newest first.

    Filters: `requested_return` (yes, no, N/D) and `message_sent` (true, false); anything else
    is a 422 naming the parameter.
    """
    number = _number(request)
    q = read_query(request, AfterHoursQuery)
    items = await after_hours.contacts(
        request.app[deps_key],
        caller_of(request),
        number,
        requested_return=q.requested_return,
        message_sent=q.message_sent,
    )
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
    view = await after_hours.send_active_message(
        request.app[deps_key], caller_of(request), number, request.match_info["id"], body
    )
    return model_response(view, status=202)
