"""A ticket's conversation: its messages joined with their text, the one join the API's ticket
detail, the console's ticket page and the PDF transcript all show."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from bot.domain.tickets import Ticket, TicketDetail, TicketMessage
from storage import Stores

# A ticket keeps only the ids of its inbound messages; their text is on the contact's timeline,
# read from this long before the ticket's first message (a first message may predate its
# ticket by a retry or two)...
TIMELINE_SLACK: Final = timedelta(days=1)
# ...and at most this many entries (the latest ones). One cap for every view: the transcript,
# which needs the whole conversation, had 2000 while the detail views had 1000, so one ticket
# could show a text on paper that its page left blank.
TIMELINE_READ_MAX: Final = 2000


async def conversation(stores: Stores, ticket: Ticket) -> list[TicketMessage]:
    """The ticket's messages in the order they joined it, inbound ones with the `text` and
    `type` of their timeline entry (left without when the entry is gone: the timeline keeps
    90 days, or more than `TIMELINE_READ_MAX` entries came after it). Reads only."""
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


async def ticket_detail(stores: Stores, ticket: Ticket) -> TicketDetail:
    """The ticket with its conversation (`conversation`) and its history of events."""
    return TicketDetail(
        **ticket.model_dump(),
        messages=await conversation(stores, ticket),
        history=await stores.tickets.history(ticket.id),
    )
