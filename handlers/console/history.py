"""Console page of a number's conversation history (the last 3 months of tickets), with the
API's filters, and each ticket's PDF transcript.

The same search as `GET /api/v1/numbers/{id}/history` (`bot.services.history.search`), so a
bad `from` is the same 422 naming the same field; the transcript is the same answer as
`GET /api/v1/tickets/{id}/transcript.pdf` (`handlers.transcripts`). The browser fetches it
from the console, with the session cookie: a link to the API would need the token.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain.errors import InvalidInputError
from bot.domain.history import valid_cursor
from bot.domain.tickets import TICKET_STATUSES
from bot.services import history
from handlers.console.context import user_of
from handlers.console.numbers import readable_number
from handlers.console.render import render_page
from handlers.console.tickets import number_of, readable_ticket
from handlers.transcripts import transcript_response

PAGE_SIZE: Final = 50


async def page(request: web.Request) -> web.Response:
    """The number's tickets created in the window, newest first; `from`/`to` (dates in the
    number's zone), `status`, `agent`, `tag`, and `cursor` for older pages. A bad filter is
    shown next to its field (422)."""
    stored = await readable_number(request)
    stores = request.app[stores_key]
    zone = stored.config.zone
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
    cursor = q.get("cursor") or None
    filters = history.HistoryFilters(
        from_=values["from"],
        to=values["to"],
        agent=values["agent"],
        status=values["status"],
        tag=values["tag"],
        # A stale or mangled cursor starts over from the first page.
        cursor=cursor if cursor is not None and valid_cursor(cursor) else None,
        limit=PAGE_SIZE,
    )
    caller = user_of(request).caller
    try:
        found = await history.search(request.app[deps_key], caller, stored.phone_number_id, filters)
    except InvalidInputError as exc:
        context["errors"] = {exc.field or "from": exc.message}
        return await render_page(request, "history.html", context, status=422)
    context["since"], context["until"] = found.from_, found.to
    context["items"], context["next_cursor"] = found.items, found.next_cursor
    return await render_page(request, "history.html", context)


async def transcript(request: web.Request) -> web.Response:
    """The ticket's conversation as a PDF, for whoever may read the ticket (the API's path,
    with its render workers and limits: 503 with Retry-After when they are busy)."""
    ticket = await readable_ticket(request, request.match_info["ticket_id"])
    await number_of(request, ticket)  # the number must be one the caller may see
    return await transcript_response(request, ticket)
