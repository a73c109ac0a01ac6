"""Conversation history: a number's tickets of the last 3 months, PDF transcripts, ticket tags.

Permissions: the history and a transcript are readable by everybody attached to the number
(like its tickets); tags are set by whoever may manage the ticket (its agent, a manager of its
number, an admin). Retention: bot/domain/history.py.
"""

from __future__ import annotations

from aiohttp import web

from bot.appkeys import deps_key, stores_key
from bot.domain.config import parse_body
from bot.domain.tickets import Ticket, TicketTagsInput, can_read_tickets
from bot.services import history, tickets
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.queries import HistoryQuery, read_query
from handlers.transcripts import transcript_response


async def _readable(request: web.Request) -> Ticket:
    """The ticket of the path: 404 alike for a missing one and another number's."""
    return await tickets.visible_ticket(
        request.app[stores_key], caller_of(request), path_id(request, "ticket_id")
    )


async def list_history(request: web.Request) -> web.Response:
    """The number's tickets created in the window, newest first, filtered by `agent` (held it
    at some time), `status` (now) and `tag`; `from` / `to` narrow the last 3 months (dates
    in the number's zone, or instants). Paginated by `cursor`."""
    pnid = path_id(request, "phone_number_id")
    forbid_unless(can_read_tickets(caller_of(request), pnid), "not one of your numbers")
    q = read_query(request, HistoryQuery)
    filters = history.HistoryFilters(
        from_=q.from_,
        to=q.to,
        agent=q.agent,
        status=q.status,
        tag=q.tag,
        cursor=q.cursor,
        limit=q.limit,
    )
    page = await history.search(request.app[deps_key], caller_of(request), pnid, filters)
    return model_response(page)


async def get_transcript(request: web.Request) -> web.Response:
    """The ticket's conversation as a PDF (who, when in the number's zone, what; media as
    placeholders, URLs as links), for whoever may read the ticket. 503 with Retry-After when
    every render worker stays busy or the render runs out of time (`transcript_response`)."""
    return await transcript_response(request, await _readable(request))


async def put_tags(request: web.Request) -> web.Response:
    """Replace the ticket's tags (`{"tags": [...]}`, at most 20, normalised to lower case);
    its agent, a manager of its number or an admin. Idempotent: the same set changes nothing.
    Monitoring counts tags per number; the history filters on them."""
    ticket = await _readable(request)
    caller = caller_of(request)
    tickets.require_close(caller, ticket)  # 403 before the body is read
    data = parse_body(TicketTagsInput, await read_json(request))
    updated = await tickets.set_tags(request.app[deps_key], caller, ticket, data)
    return model_response(updated)
