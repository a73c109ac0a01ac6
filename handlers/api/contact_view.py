"""`/api/v1/numbers/{phone_number_id}/contacts/{wa_id}/conversation` and `/active-message`:
the contact-centred view and its active message (bot.services.contact_view). Permissions as
the timeline's: 403 for a number the caller is not attached to, whether or not the contact
exists."""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import deps_key
from bot.domain.config import parse_body
from bot.services import contact_view
from bot.services.after_hours import ActiveMessageInput
from handlers.api import model_response, read_json
from handlers.api.auth import caller_of
from handlers.api.contacts import _number, _wa_id
from handlers.api.queries import ConversationQuery, read_query


async def get_conversation(request: web.Request) -> web.Response:
    """The contact, their 90-day conversation across tickets (messages and notes, oldest
    first; `q` keeps those whose text contains it, accents and case ignored), their current
    ticket, the 24-hour window and `resume`: one of `reply`, `window_expired`,
    `not_in_service`, `no_history`, `served_by_another`. 404 for an unknown contact."""
    number = _number(request)
    wa_id = _wa_id(request)
    q = read_query(request, ConversationQuery).q
    view = await contact_view.conversation(
        request.app[deps_key], caller_of(request), number, wa_id, q=q
    )
    return model_response(view)


async def send_active_message(request: web.Request) -> web.Response:
    """Queue an approved template to the contact (the view's `window_expired`,
    `not_in_service` and `no_history` cases): 202. The after-hours send's rules: 422 naming
    `template`, `variables` or `variables[i]`; 409 `already_sent` when the template went to
    this contact within 24 hours (from either screen), unless `"force": true`."""
    number = _number(request)
    wa_id = _wa_id(request)
    body = parse_body(ActiveMessageInput, await read_json(request))
    queued = await contact_view.send_active_message(
        request.app[deps_key], caller_of(request), number, wa_id, body
    )
    return model_response(queued, status=202)
