"""The HTTP API under `/api/v1`: route setup and the JSON plumbing its handlers share.

To add an endpoint: write the handler (read the caller with `handlers.api.auth.caller_of`),
add its route in `setup_api`, and its entry in `bot.openapi.OPERATIONS` (a test checks that
the two agree). Authentication needs nothing more: the middleware guards every /api/v1 path.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bot.domain.config import is_valid_id
from bot.domain.errors import InvalidInputError

# No API body nests deeper than a few levels; a deeper one would only exercise recursion
# limits (json.loads and the merge patch are recursive), so it is refused up front.
MAX_DEPTH = 32


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: web.Request) -> Any:
    """The request body parsed as JSON; 400 when it is not JSON or absurdly nested."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise web.HTTPBadRequest(reason="the body is not valid JSON") from None
    if _too_deep(body):
        raise web.HTTPBadRequest(reason=f"the body nests deeper than {MAX_DEPTH} levels")
    return body


def path_id(request: web.Request, name: str) -> str:
    """A path parameter that must be an id (phone_number_id, agent_id): 422 naming it if not."""
    value = request.match_info[name]
    if not is_valid_id(value):
        raise InvalidInputError(f"{name} must be 1-64 characters of A-Z a-z 0-9 _ . -", name)
    return value


def model_response(model: BaseModel, status: int = 200) -> web.Response:
    """A pydantic model as a JSON answer (datetimes in ISO 8601 with their offset)."""
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def setup_api(app: web.Application) -> None:
    """Register the /api/v1 routes and the authentication middleware on `app`.

    Called from `handlers.setup_routes`, before the app is frozen.
    """
    # Imported here: the route modules import the helpers above from this package.
    from handlers.api import after_hours, agents, docs, numbers, templates
    from handlers.api.auth import API_PREFIX, authenticate

    # Appended last, so it runs inside `observe` and `errors`: its 503s and logs are theirs.
    app.middlewares.append(authenticate)
    p = API_PREFIX
    r = app.router
    r.add_get(f"{p}/openapi.json", docs.openapi_json)
    _contact_routes(r, p)
    _ticket_routes(app, p)
    r.add_get(f"{p}/numbers", numbers.list_numbers)
    r.add_put(f"{p}/numbers/{{phone_number_id}}", numbers.put_number)
    r.add_get(f"{p}/numbers/{{phone_number_id}}", numbers.get_number)
    r.add_patch(f"{p}/numbers/{{phone_number_id}}", numbers.patch_number)
    r.add_delete(f"{p}/numbers/{{phone_number_id}}", numbers.delete_number)
    r.add_get(f"{p}/numbers/{{phone_number_id}}/hours", numbers.get_hours)
    r.add_get(f"{p}/numbers/{{phone_number_id}}/audit", numbers.get_audit)
    r.add_get(f"{p}/numbers/{{phone_number_id}}/after-hours-contacts", after_hours.list_contacts)
    r.add_post(
        f"{p}/numbers/{{phone_number_id}}/after-hours-contacts/{{id}}/active-message",
        after_hours.send_active_message,
    )
    r.add_get(f"{p}/templates", templates.list_templates)
    r.add_post(f"{p}/templates/refresh", templates.refresh_templates)
    r.add_put(f"{p}/templates/{{name}}/{{language}}", templates.put_template)
    r.add_delete(f"{p}/templates/{{name}}/{{language}}", templates.delete_template)
    r.add_get(f"{p}/agents", agents.list_agents)
    r.add_put(f"{p}/agents/{{agent_id}}", agents.put_agent)
    r.add_get(f"{p}/agents/{{agent_id}}", agents.get_agent)
    r.add_delete(f"{p}/agents/{{agent_id}}", agents.delete_agent)
    r.add_put(f"{p}/agents/{{agent_id}}/status", agents.put_status)
    r.add_post(f"{p}/agents/{{agent_id}}/tokens", agents.issue_token)
    r.add_get(f"{p}/agents/{{agent_id}}/tokens", agents.list_tokens)
    r.add_delete(f"{p}/agents/{{agent_id}}/tokens", agents.revoke_tokens)
    r.add_delete(f"{p}/agents/{{agent_id}}/tokens/{{token_id}}", agents.revoke_token)


def _contact_routes(r: web.UrlDispatcher, p: str) -> None:
    """Contacts (search, listing, import, timeline) and quick replies."""
    from handlers.api import contacts, quick_replies

    n = f"{p}/numbers/{{phone_number_id}}/contacts"
    r.add_get(f"{p}/contacts", contacts.search_contacts)
    r.add_post(f"{p}/contacts/import", contacts.import_contacts_to)
    r.add_get(n, contacts.list_contacts)
    r.add_post(f"{n}/import", contacts.import_contacts)
    r.add_get(f"{n}/{{wa_id}}", contacts.get_contact)
    r.add_get(f"{n}/{{wa_id}}/timeline", contacts.get_timeline)
    qr = f"{p}/quick-replies/categories"
    r.add_get(f"{p}/quick-replies", quick_replies.get_book)
    r.add_post(qr, quick_replies.create_category)
    r.add_get(f"{qr}/{{category_id}}", quick_replies.get_category)
    r.add_put(f"{qr}/{{category_id}}", quick_replies.put_category)
    r.add_delete(f"{qr}/{{category_id}}", quick_replies.delete_category)
    r.add_get(f"{qr}/{{category_id}}/replies", quick_replies.list_replies)
    r.add_post(f"{qr}/{{category_id}}/replies", quick_replies.create_reply)
    r.add_get(f"{qr}/{{category_id}}/replies/{{reply_id}}", quick_replies.get_reply)
    r.add_put(f"{qr}/{{category_id}}/replies/{{reply_id}}", quick_replies.put_reply)
    r.add_delete(f"{qr}/{{category_id}}/replies/{{reply_id}}", quick_replies.delete_reply)


def _ticket_routes(app: web.Application, p: str) -> None:
    """Tickets, portfolios, and agents' event streams (issue 7)."""
    from handlers.api import events, tickets

    r = app.router
    events.setup_events(app)
    r.add_get(f"{p}/numbers/{{phone_number_id}}/tickets", tickets.list_tickets)
    r.add_put(f"{p}/numbers/{{phone_number_id}}/contacts/{{wa_id}}/owner", tickets.put_owner)
    r.add_get(f"{p}/tickets/{{ticket_id}}", tickets.get_ticket)
    r.add_post(f"{p}/tickets/{{ticket_id}}/messages", tickets.reply)
    r.add_post(f"{p}/tickets/{{ticket_id}}/close", tickets.close_ticket)
    r.add_post(f"{p}/tickets/{{ticket_id}}/transfer", tickets.transfer_ticket)
    r.add_get(f"{p}/agents/{{agent_id}}/events", events.agent_events)
    _desk_routes(r, p)


def _desk_routes(r: web.UrlDispatcher, p: str) -> None:
    """Monitoring, conversation history, transcripts and ticket tags (issue 11)."""
    from handlers.api import history, monitoring

    r.add_get(f"{p}/monitoring", monitoring.get_monitoring)
    r.add_get(f"{p}/numbers/{{phone_number_id}}/history", history.list_history)
    r.add_get(f"{p}/tickets/{{ticket_id}}/transcript.pdf", history.get_transcript)
    r.add_put(f"{p}/tickets/{{ticket_id}}/tags", history.put_tags)
