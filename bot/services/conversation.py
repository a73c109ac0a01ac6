"""A ticket's conversation: its messages joined with their text, the automatic messages sent
around them and every outgoing message's delivery state; the one join the API's ticket detail,
the console's ticket page and the PDF transcript all show. Also the conversation's live events
on the agents' streams (`message.in`, `message.status`), published by the jobs."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from bot.domain.models import OutgoingMessage, TimelineEntry
from bot.domain.tickets import MessageStatus, Ticket, TicketDetail, TicketMessage
from storage import Stores

# A ticket keeps only the ids of its inbound messages; their text is on the contact's timeline,
# read from this long before the ticket's first message (a first message may predate its
# ticket by a retry or two)...
TIMELINE_SLACK: Final = timedelta(days=1)
# ...and at most this many entries (the latest ones). One cap for every view: the transcript,
# which needs the whole conversation, had 2000 while the detail views had 1000, so one ticket
# could show a text on paper that its page left blank.
TIMELINE_READ_MAX: Final = 2000
# How far before the ticket its context reaches: the after-hours list's 7 days
# (keys.AFTER_HOURS_KEEP_S), so a callback opened after a long weekend still shows the
# messages that asked for it.
CONTEXT_LOOKBACK: Final = timedelta(days=7)
# Outgoing kinds that belong to an earlier ticket's service: the context starts after the
# latest of them (what came before was that ticket's conversation, not this one's).
CONTEXT_STOP_KINDS: Final = frozenset({"agent", "welcome"})
# The text of a `message.in` event is a preview; the desk reads the whole message from the
# ticket.
SNIPPET_MAX: Final = 200

MESSAGE_IN: Final = "message.in"
MESSAGE_STATUS: Final = "message.status"


def _customer(entry: TimelineEntry, *, context: bool) -> TicketMessage:
    return TicketMessage(
        id=entry.id,
        direction="in",
        at=entry.at,
        text=entry.text,
        type=entry.type,
        author="customer",
        context=context,
    )


def _delivery(message: OutgoingMessage | None) -> tuple[MessageStatus | None, str | None]:
    if message is None:
        return None, None
    error = None
    if message.state == "failed" and message.errors:
        first = message.errors[0]
        error = first.title or first.message or (str(first.code) if first.code else None)
    return message.state, error


def _bot(entry: TimelineEntry, sent: OutgoingMessage | None, *, context: bool) -> TicketMessage:
    status, error = _delivery(sent)
    return TicketMessage(
        id=entry.id,
        direction="out",
        at=entry.at,
        text=entry.text,
        # An active message is a template an agent chose to send; the rest is the chatbot's.
        author="agent" if entry.kind == "active_message" else "bot",
        kind=entry.kind,
        status=status,
        error=error,
        context=context,
    )


def _start(ticket: Ticket, messages: list[TicketMessage]) -> datetime:
    """Where the ticket's own conversation starts: its first message, or its opening."""
    return min([ticket.created_at, *(m.at for m in messages)])


def _context(entries: Iterable[TimelineEntry], start: datetime) -> list[TimelineEntry]:
    """The timeline before `start` that led to the ticket: after the latest message of an
    earlier ticket's service (an agent's reply or a welcome), if any."""
    before = [e for e in entries if e.at < start]
    for i in range(len(before) - 1, -1, -1):
        if before[i].direction == "out" and before[i].kind in CONTEXT_STOP_KINDS:
            return before[i + 1 :]
    return before


async def conversation(stores: Stores, ticket: Ticket) -> list[TicketMessage]:
    """The ticket's conversation, oldest first, every message with its `author` (customer,
    agent or bot) and outgoing ones with their delivery `status` (and Meta's `error` title
    when failed):

    - `context`: the contact's messages in and out from before the ticket, back to
      CONTEXT_LOOKBACK and not before an earlier ticket's service (`_context`): the
      after-hours exchange that led to the ticket (for a callback: the messages that asked
      for it).
    - the ticket's own messages in the order they joined it, inbound ones with the `text` and
      `type` of their timeline entry (left without when the entry is gone: the timeline keeps
      90 days, or more than `TIMELINE_READ_MAX` entries came after it);
    - the automatic messages sent to the contact while the ticket was active (welcome, queue
      position, absence text and card...), merged in by time.

    Reads only; a message without a delivery record (sent before it was kept, or past its 30
    days) has no `status`.
    """
    messages = await stores.tickets.messages(ticket.id)
    if not ticket.contact_key:
        return [
            m.model_copy(update={"author": "customer" if m.direction == "in" else "agent"})
            for m in messages
        ]
    start = _start(ticket, messages)
    entries = await stores.timeline.list(
        ticket.phone_number_id,
        ticket.contact_key,
        since=start - max(TIMELINE_SLACK, CONTEXT_LOOKBACK),
        limit=TIMELINE_READ_MAX,
    )
    own = {m.id for m in messages}
    by_id = {e.id: e for e in entries}
    by_send_key = {e.natural_key: e for e in entries if e.natural_key}
    context = [e for e in _context(entries, start) if e.id not in own]
    automatic = [
        e
        for e in entries
        if e.direction == "out"
        and e.kind != "agent"
        and e.at >= start
        and (ticket.closed_at is None or e.at <= ticket.closed_at)
    ]
    # Agents' replies are kept under their own id; their timeline entry (keyed by Meta's id)
    # carries that id as its send key.
    agent_sent = {
        m.id: by_send_key[m.id].id for m in messages if m.direction == "out" and m.id in by_send_key
    }
    outgoing_ids = [e.id for e in (*context, *automatic) if e.direction == "out"]
    delivery = await stores.outgoing.get_many([*outgoing_ids, *agent_sent.values()])
    unsent = [m.id for m in messages if m.direction == "out" and m.id not in agent_sent]
    outcomes = dict(zip(unsent, await stores.sends.outcomes(unsent), strict=True))

    def own_message(m: TicketMessage) -> TicketMessage:
        if m.direction == "in":
            found = by_id.get(m.id)
            update: dict[str, object] = {"author": "customer"}
            if found is not None:
                update |= {"text": found.text, "type": found.type}
            return m.model_copy(update=update)
        status, error = _delivery(delivery.get(agent_sent.get(m.id, "")))
        outcome = outcomes.get(m.id)
        if status is None and outcome is not None and outcome.startswith("failed:"):
            # Refused before Meta took it (window closed, or a permanent Graph error).
            status, error = "failed", outcome.removeprefix("failed:")
        return m.model_copy(update={"author": "agent", "status": status, "error": error})

    earlier = [
        _customer(e, context=True)
        if e.direction == "in"
        else _bot(e, delivery.get(e.id), context=True)
        for e in context
    ]
    bots = [_bot(e, delivery.get(e.id), context=False) for e in automatic]
    # The ticket's order is kept as it is; automatic messages go in by their time.
    return earlier + list(heapq.merge((own_message(m) for m in messages), bots, key=lambda m: m.at))


async def ticket_detail(stores: Stores, ticket: Ticket) -> TicketDetail:
    """The ticket with its conversation (`conversation`) and its history of events."""
    return TicketDetail(
        **ticket.model_dump(),
        messages=await conversation(stores, ticket),
        history=await stores.tickets.history(ticket.id),
    )


# --- live events ------------------------------------------------------------------------------


async def recipients(stores: Stores, ticket: Ticket) -> list[str]:
    """Whose desks a ticket's conversation events go to: the agent holding it; while it
    waits (or was transferred to the queue), every agent of its number, who see it in the
    queue; once closed, the agent who served it."""
    if ticket.status in ("waiting", "transferred"):
        return await stores.events.number_agents(ticket.phone_number_id)
    return [ticket.agent_id] if ticket.agent_id else []


async def announce_inbound(stores: Stores, ticket_id: str, wamid: str, at: datetime) -> int:
    """Publish `message.in` for the customer's message `wamid` that joined the ticket.

    Idempotent on the wamid (`EventsStore.publish_once`): call it on every run of the job
    that attached the message. Data: ticket_id, phone_number_id, wa_id, message_id, type,
    text (at most SNIPPET_MAX characters), at.

    Returns:
        How many agents' streams got it (0: published before, or nobody to tell).
    """
    ticket = await stores.tickets.get(ticket_id)
    if ticket is None:
        return 0
    entry = await stores.timeline.get(ticket.phone_number_id, ticket.contact_key, wamid)
    text = entry.text if entry is not None else None
    data = {
        "ticket_id": ticket.id,
        "phone_number_id": ticket.phone_number_id,
        "wa_id": ticket.contact.wa_id,
        "message_id": wamid,
        "type": entry.type if entry is not None else None,
        "text": text[:SNIPPET_MAX] if text else None,
        "at": at.isoformat(),
    }
    return await stores.events.publish_once(
        await recipients(stores, ticket), MESSAGE_IN, data, once_key=f"{MESSAGE_IN}:{wamid}"
    )


async def announce_status(
    stores: Stores,
    *,
    ticket_id: str,
    message_id: str,
    status: MessageStatus,
    error: str | None = None,
) -> int:
    """Publish `message.status` for an outgoing message of the ticket.

    `message_id` is the id the conversation shows it under (`agent:<ticket>:<key>` for an
    agent's reply, Meta's id for an automatic message). Idempotent on (message_id, status).
    Data: ticket_id, phone_number_id, wa_id, message_id, status, error (Meta's title).

    Returns:
        How many agents' streams got it (0: published before, or nobody to tell).
    """
    ticket = await stores.tickets.get(ticket_id)
    if ticket is None:
        return 0
    data = {
        "ticket_id": ticket.id,
        "phone_number_id": ticket.phone_number_id,
        "wa_id": ticket.contact.wa_id,
        "message_id": message_id,
        "status": status,
        "error": error,
    }
    return await stores.events.publish_once(
        await recipients(stores, ticket),
        MESSAGE_STATUS,
        data,
        once_key=f"{MESSAGE_STATUS}:{message_id}:{status}",
    )


async def announce_delivery(stores: Stores, message: OutgoingMessage) -> int:
    """`announce_status` for a recorded outgoing message in its current state, when it was
    sent on a ticket (else 0). Safe on every run: only the first publishes."""
    if message.ticket_id is None:
        return 0
    shown_as = message.natural_key if message.kind == "agent" else None
    _, error = _delivery(message)
    return await announce_status(
        stores,
        ticket_id=message.ticket_id,
        message_id=shown_as or message.message_id,
        status=message.state,
        error=error,
    )
