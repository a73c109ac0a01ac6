"""Conversation history: a number's tickets of the last 3 months searched by filters, and a
ticket's PDF transcript rendered by the runtime's worker processes.

Permissions: everybody attached to the number (like its tickets). Retention:
bot/domain/history.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final
from zoneinfo import ZoneInfo

from bot.domain.auth import Caller
from bot.domain.config import is_valid_id
from bot.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
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
    TicketStatus,
    TicketTagsInput,
    can_read_tickets,
)
from bot.runtime.deps import Deps
from bot.runtime.transcript import Line, NoteLine, Transcript
from bot.runtime.transcript_pool import TranscriptPool
from bot.services.conversation import conversation

# Tickets are stamped at most `now`: a window ending one millisecond past it includes them.
_NOW_INCLUDED: Final = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class HistoryFilters:
    """The history's filters as a caller gives them (a query string's text); `search`
    validates each and names it in its InvalidInputError.

    Attributes:
        from_, to: a date (`2026-03-02`, a whole day in the number's zone) or an instant with
            an offset; they narrow the window of the last 3 months.
        agent: tickets this agent held at some time. status: their status now.
        tag: tickets carrying it (normalised as `TicketTagsInput` does).
        cursor: a previous page's `next_cursor`. limit: 1 to `PAGE_MAX`.
    """

    from_: str | None = None
    to: str | None = None
    agent: str | None = None
    status: str | None = None
    tag: str | None = None
    cursor: str | None = None
    limit: int = PAGE_DEFAULT


def _status(raw: str | None) -> TicketStatus | None:
    for status in TICKET_STATUSES:
        if raw == status:
            return status
    if raw:
        raise InvalidInputError(f"status must be one of {', '.join(TICKET_STATUSES)}", "status")
    return None


def normalise_tag(raw: str) -> str:
    """A tag filter as tags are stored (trimmed, lower case).

    Raises:
        InvalidInputError: field `tag`, when it cannot be a tag.
    """
    try:
        return TicketTagsInput(tags=(raw,)).tags[0]
    except ValueError:
        raise InvalidInputError(
            "tag must be 1-40 letters, digits, spaces, '.', '-' or '_'", "tag"
        ) from None


async def search(
    deps: Deps, caller: Caller, phone_number_id: str, filters: HistoryFilters
) -> HistoryPage:
    """The number's tickets created in the window, newest first, filtered, a page of
    `filters.limit` (it may come back short, with a `next_cursor` to go on from). Reads only.

    Raises:
        ForbiddenError: the caller is not attached to the number.
        NotFoundError: the number is not served.
        InvalidInputError: naming the filter (`from`, `to`, `agent`, `status`, `tag`,
            `cursor`, `limit`) that is not valid.
    """
    if not can_read_tickets(caller, phone_number_id):
        raise ForbiddenError("not one of your numbers")
    stores = deps.stores
    config = await stores.numbers.config(phone_number_id)
    if config is None:
        raise NotFoundError(f"number {phone_number_id} not found")
    zone = config.zone
    now = deps.clock.now()
    start, end = window_start(zone, now), now + _NOW_INCLUDED
    since = max(parse_bound(filters.from_, "from", zone, end=False) or start, start)
    until = min(parse_bound(filters.to, "to", zone, end=True) or end, end)
    agent = filters.agent or None
    if agent is not None and not is_valid_id(agent):
        raise InvalidInputError("agent must be an agent id", "agent")
    status = _status(filters.status)
    tag = normalise_tag(filters.tag) if filters.tag else None
    cursor = filters.cursor or None
    if cursor is not None and not valid_cursor(cursor):
        raise InvalidInputError("cursor must be the next_cursor of a previous page", "cursor")
    if not 1 <= filters.limit <= PAGE_MAX:
        raise InvalidInputError(f"limit must be an integer from 1 to {PAGE_MAX}", "limit")
    items: list[Ticket] = []
    next_cursor = None
    if since < until:
        found = await stores.tickets.search(
            phone_number_id,
            since=since,
            until=until,
            agent_id=agent,
            status=status,
            tag=tag,
            cursor=cursor,
            limit=filters.limit,
        )
        items, next_cursor = found.items, found.next_cursor
    return HistoryPage(
        items=items,
        next_cursor=next_cursor,
        from_=since.astimezone(zone),
        to=until.astimezone(zone),
    )


async def transcript_pdf(
    deps: Deps,
    pool: TranscriptPool,
    ticket: Ticket,
    *,
    abandoned: Callable[[], bool] | None = None,
) -> bytes:
    """The ticket's conversation as a PDF: who, when in the number's zone, what (media as
    placeholders). For a ticket the caller may read (`tickets.visible_ticket`).

    The PDF is rendered in a worker process (bot.runtime.transcript_pool), never on the event
    loop: a render slot is taken first, and only then is the conversation read, so waiting
    callers hold none. A ticket with more than `transcript_max_messages` messages shows its
    latest ones after a note of how many earlier ones are left out. The ticket's internal notes
    (all of them, at most `keys.NOTES_MAX`) follow in their own section, marked as never sent
    to the customer; a ticket without notes has no such section.

    Raises:
        TranscriptUnavailableError: no render slot came free in time (`TranscriptBusyError`),
            the render ran out of time (`TranscriptTimeoutError`), or its worker died; each
            carries `retry_after_s`.
        TranscriptAbandonedError: `abandoned()` turned true (the client left); the render
            was stopped.
    """
    async with pool.slot():
        messages = await conversation(deps.stores, ticket)
        return await pool.render(await _transcript(deps, ticket, messages), abandoned=abandoned)


async def _transcript(deps: Deps, ticket: Ticket, messages: list[TicketMessage]) -> Transcript:
    """What the PDF shows: the ticket, its number's name, zone and language, the authors'
    names, the latest `transcript_max_messages` messages, and the ticket's internal notes
    (author by agent name where the agent still exists, else by caller id)."""
    stores = deps.stores
    limit = deps.settings.transcript_max_messages
    omitted = max(0, len(messages) - limit)
    messages = messages[omitted:]
    config = await stores.numbers.config(ticket.phone_number_id)
    notes = await stores.notes.for_ticket(ticket.id)
    agent_ids = sorted(
        {m.agent_id for m in messages if m.agent_id}
        | {n.author for n in notes}
        | {ticket.agent_id or ""} - {""}
    )
    names = {a.id: a.name for a in await stores.agents.get_many(agent_ids)}
    customer = ticket.contact.name or ticket.contact.phone or ticket.contact.wa_id or "-"
    number_name = config.display_name if config is not None else None
    lines = [
        Line(
            at=m.at,
            author=customer
            if m.direction == "in"
            else (number_name or "deskline")
            if m.author == "bot"
            else names.get(m.agent_id or "", m.agent_id or "deskline"),
            inbound=m.direction == "in",
            text=m.text,
            type=m.type,
            automatic=m.author == "bot",
            context=m.context,
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
        generated_at=deps.clock.now(),
        omitted=omitted,
        notes=[NoteLine(at=n.at, author=names.get(n.author, n.author), text=n.text) for n in notes],
    )
