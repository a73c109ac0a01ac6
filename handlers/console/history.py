"""Console page of a number's conversation history (the last 3 months of tickets), with the
API's filters, and each ticket's PDF transcript.

The same search as `GET /api/v1/numbers/{id}/history` (`bot.domain.history.window_start` and
`parse_bound`, `TicketsStore.search`, `can_read_tickets`), so a bad `from` is the same 422
naming the same field; the transcript is rendered by the same `bot.runtime.transcript` as
`GET /api/v1/tickets/{id}/transcript.pdf`. The browser fetches it from the console, with the
session cookie: a link to the API would need the token.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any, Final

from aiohttp import web

from bot.appkeys import clock_key, stores_key
from bot.domain.config import is_valid_id
from bot.domain.errors import InvalidInputError
from bot.domain.history import parse_bound, valid_cursor, window_start
from bot.domain.tickets import TICKET_STATUSES, TicketTagsInput
from handlers.api.history import transcript_response
from handlers.console.numbers import readable_number
from handlers.console.render import render_page
from handlers.console.tickets import number_of, readable_ticket, ticket_messages

PAGE_SIZE: Final = 50


async def page(request: web.Request) -> web.Response:
    """The number's tickets created in the window, newest first; `from`/`to` (dates in the
    number's zone), `status`, `agent`, `tag`, and `cursor` for older pages. A bad filter is
    shown next to its field (422)."""
    stored = await readable_number(request)
    stores = request.app[stores_key]
    zone = stored.config.zone
    now = request.app[clock_key].now()
    q = request.query
    values = {k: (q.get(k) or "").strip() for k in ("from", "to", "status", "agent", "tag")}
    context: dict[str, Any] = {
        "number": stored,
        "zone": zone,
        "values": values,
        "statuses": TICKET_STATUSES,
        "agents": await stores.agents.on_number(stored.phone_number_id),
        "errors": {},
        "items": [],
        "next_cursor": None,
        "section": "history",
    }
    start = window_start(zone, now)
    end = now + timedelta(milliseconds=1)
    try:
        since = max(parse_bound(values["from"], "from", zone, end=False) or start, start)
        until = min(parse_bound(values["to"], "to", zone, end=True) or end, end)
        status = values["status"] or None
        if status is not None and status not in TICKET_STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(TICKET_STATUSES)}", "status")
        agent = values["agent"] or None
        if agent is not None and not is_valid_id(agent):
            raise InvalidInputError("agent must be an agent id", "agent")
        tag = None
        if values["tag"]:
            try:
                tag = TicketTagsInput(tags=(values["tag"],)).tags[0]
            except ValueError:
                raise InvalidInputError(
                    "tag must be 1-40 letters, digits, spaces, '.', '-' or '_'", "tag"
                ) from None
    except InvalidInputError as exc:
        context["errors"] = {exc.field or "from": exc.message}
        return await render_page(request, "history.html", context, status=422)
    cursor = q.get("cursor") or None
    if cursor is not None and not valid_cursor(cursor):
        cursor = None
    context["since"], context["until"] = since.astimezone(zone), until.astimezone(zone)
    if since < until:
        found = await stores.tickets.search(
            stored.phone_number_id,
            since=since,
            until=until,
            agent_id=agent,
            status=status,
            tag=tag,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
        context["items"], context["next_cursor"] = found.items, found.next_cursor
    return await render_page(request, "history.html", context)


async def transcript(request: web.Request) -> web.Response:
    """The ticket's conversation as a PDF, for whoever may read the ticket (the API's path,
    with its render workers and limits: 503 with Retry-After when they are busy)."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    await number_of(request, ticket)  # the number must be one the caller may see
    return await transcript_response(request, ticket, partial(ticket_messages, request, ticket))
