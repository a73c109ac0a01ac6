"""Conversation history: a number's tickets of the last 3 months, PDF transcripts, ticket tags.

Permissions: the history and a transcript are readable by everybody attached to the number
(like its tickets); tags are set by whoever may manage the ticket (its agent, a manager of its
number, an admin). Retention: bot/domain/history.py.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import partial
from typing import Final
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.appkeys import clock_key, settings_key, stores_key
from bot.domain.config import is_valid_id, parse_body
from bot.domain.errors import InvalidInputError, NotFoundError
from bot.domain.history import (
    PAGE_DEFAULT,
    PAGE_MAX,
    HistoryPage,
    parse_bound,
    valid_cursor,
    window_start,
)
from bot.domain.tickets import (
    TICKET_STATUSES,
    Ticket,
    TicketMessage,
    TicketTagsInput,
    can_manage_ticket,
    can_read_tickets,
)
from bot.runtime.transcript import Line, Transcript
from bot.runtime.transcript_pool import (
    TranscriptAbandonedError,
    TranscriptUnavailableError,
    transcripts_key,
)
from handlers.api import model_response, path_id, read_json
from handlers.api.auth import caller_of, forbid_unless
from handlers.api.tickets import visible_ticket
from handlers.middlewares import error_body
from handlers.sse import client_gone

# Inbound text comes from the contact's timeline, read from a day before the first message.
TIMELINE_SLACK: Final = timedelta(days=1)
TIMELINE_READ_MAX: Final = 2000


async def _readable(request: web.Request) -> Ticket:
    """The ticket of the path: 404 alike for a missing one and another number's."""
    return await visible_ticket(request, path_id(request, "ticket_id"))


def _tag(raw: str) -> str:
    try:
        return TicketTagsInput(tags=(raw,)).tags[0]
    except ValueError:
        raise InvalidInputError(
            "tag must be 1-40 letters, digits, spaces, '.', '-' or '_'", "tag"
        ) from None


async def list_history(request: web.Request) -> web.Response:
    """The number's tickets created in the window, newest first, filtered by `agent` (held it
    at some time), `status` (now) and `tag`; `from` / `to` narrow the last 3 months (dates
    in the number's zone, or instants). Paginated by `cursor`."""
    pnid = path_id(request, "phone_number_id")
    forbid_unless(can_read_tickets(caller_of(request), pnid), "not one of your numbers")
    stores = request.app[stores_key]
    config = await stores.numbers.config(pnid)
    if config is None:
        raise NotFoundError(f"number {pnid} not found")
    q = request.query
    zone = config.zone
    now = request.app[clock_key].now()
    start = window_start(zone, now)
    # Tickets are stamped at most `now`: one millisecond past it includes them.
    end = now + timedelta(milliseconds=1)
    since = max(parse_bound(q.get("from"), "from", zone, end=False) or start, start)
    until = min(parse_bound(q.get("to"), "to", zone, end=True) or end, end)
    agent = q.get("agent") or None
    if agent is not None and not is_valid_id(agent):
        raise InvalidInputError("agent must be an agent id", "agent")
    status = q.get("status") or None
    if status is not None and status not in TICKET_STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(TICKET_STATUSES)}", "status")
    tag = _tag(q["tag"]) if q.get("tag") else None
    cursor = q.get("cursor") or None
    if cursor is not None and not valid_cursor(cursor):
        raise InvalidInputError("cursor must be the next_cursor of a previous page", "cursor")
    raw_limit = q.get("limit", str(PAGE_DEFAULT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= PAGE_MAX:
        raise InvalidInputError(f"limit must be an integer from 1 to {PAGE_MAX}", "limit")
    if since >= until:
        page_items, next_cursor = [], None
    else:
        page = await stores.tickets.search(
            pnid,
            since=since,
            until=until,
            agent_id=agent,
            status=status,
            tag=tag,
            cursor=cursor,
            limit=int(raw_limit),
        )
        page_items, next_cursor = page.items, page.next_cursor
    return model_response(
        HistoryPage(
            items=page_items,
            next_cursor=next_cursor,
            from_=since.astimezone(zone),
            to=until.astimezone(zone),
        )
    )


async def _messages(request: web.Request, ticket: Ticket) -> list[TicketMessage]:
    """The ticket's messages, inbound ones with their text and type from the timeline."""
    stores = request.app[stores_key]
    messages = await stores.tickets.messages(ticket.id)
    inbound = {m.id for m in messages if m.direction == "in"}
    if not inbound or not ticket.contact_key:
        return messages
    entries = await stores.timeline.list(
        ticket.phone_number_id,
        ticket.contact_key,
        since=min(m.at for m in messages) - TIMELINE_SLACK,
        limit=TIMELINE_READ_MAX,
    )
    found = {e.id: e for e in entries if e.id in inbound}
    return [
        m.model_copy(update={"text": found[m.id].text, "type": found[m.id].type})
        if m.id in found
        else m
        for m in messages
    ]


async def get_transcript(request: web.Request) -> web.Response:
    """The ticket's conversation as a PDF (who, when in the number's zone, what; media as
    placeholders, URLs as links), for whoever may read the ticket. 503 with Retry-After when
    every render worker stays busy or the render runs out of time (`transcript_response`)."""
    ticket = await _readable(request)
    return await transcript_response(request, ticket, partial(_messages, request, ticket))


async def transcript_response(
    request: web.Request,
    ticket: Ticket,
    read_messages: Callable[[], Awaitable[list[TicketMessage]]],
) -> web.Response:
    """Render the ticket's messages (`read_messages()`) as a PDF download: the API's and the
    console's one path.

    The PDF is rendered in a worker process (bot.runtime.transcript_pool), never on the event loop:
    a render slot is taken first (waiting up to `SLOT_WAIT_S`, then 503 `transcript_busy`),
    and only then are the messages read, so waiting requests hold none. The render gets
    `transcript_timeout_s` (then its worker is killed: 503 `transcript_timeout`) and is
    killed as soon as the client disconnects. A ticket with more than
    `transcript_max_messages` messages shows its latest ones after a note of how many
    earlier ones are left out.
    """
    pool = request.app[transcripts_key]
    try:
        async with pool.slot():
            transcript = await _transcript(request, ticket, await read_messages())
            body = await pool.render(transcript, abandoned=lambda: client_gone(request))
    except TranscriptUnavailableError as exc:
        response = error_body(503, exc.code, exc.message)
        response.headers["Retry-After"] = str(math.ceil(exc.retry_after_s))
        return response
    except TranscriptAbandonedError:
        # Nobody reads this answer: 499 is nginx's "client closed request", for the metrics.
        return web.Response(status=499)
    return web.Response(
        body=body,
        content_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="ticket-{ticket.id}.pdf"'},
    )


async def _transcript(
    request: web.Request, ticket: Ticket, messages: list[TicketMessage]
) -> Transcript:
    """What the PDF shows: the ticket, its number's name, zone and language, the authors'
    names, and the latest `transcript_max_messages` messages."""
    stores = request.app[stores_key]
    limit = request.app[settings_key].transcript_max_messages
    omitted = max(0, len(messages) - limit)
    messages = messages[omitted:]
    config = await stores.numbers.config(ticket.phone_number_id)
    agent_ids = sorted(
        {m.agent_id for m in messages if m.agent_id} | {ticket.agent_id or ""} - {""}
    )
    names = {a.id: a.name for a in await stores.agents.get_many(agent_ids)}
    customer = ticket.contact.name or ticket.contact.phone or ticket.contact.wa_id or "-"
    lines = [
        Line(
            at=m.at,
            author=customer
            if m.direction == "in"
            else names.get(m.agent_id or "", m.agent_id or "deskline"),
            inbound=m.direction == "in",
            text=m.text,
            type=m.type,
        )
        for m in messages
    ]
    return Transcript(
        ticket=ticket,
        number_id=ticket.phone_number_id,
        number_name=config.display_name if config is not None else None,
        zone=config.zone if config is not None else ZoneInfo("UTC"),
        language=config.language if config is not None else "en",
        agent_name=names.get(ticket.agent_id or ""),
        lines=lines,
        generated_at=request.app[clock_key].now(),
        omitted=omitted,
    )


async def put_tags(request: web.Request) -> web.Response:
    """Replace the ticket's tags (`{"tags": [...]}`, at most 20, normalised to lower case);
    its agent, a manager of its number or an admin. Idempotent: the same set changes nothing.
    Monitoring counts tags per number; the history filters on them."""
    ticket = await _readable(request)
    caller = caller_of(request)
    forbid_unless(
        can_manage_ticket(caller, ticket.phone_number_id, ticket.agent_id),
        "only the agent of this ticket, a manager of its number or an admin",
    )
    data = parse_body(TicketTagsInput, await read_json(request))
    stores = request.app[stores_key]
    await stores.tickets.set_tags(
        ticket.id, data.tags, actor=caller.id, now=request.app[clock_key].now()
    )
    updated = await stores.tickets.get(ticket.id)
    if updated is None:  # expired between the change and this read
        raise NotFoundError(f"ticket {ticket.id} not found")
    return model_response(updated)
