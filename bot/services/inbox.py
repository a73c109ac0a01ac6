"""What the desk's ticket lists show of each ticket beside its name: the last message (a
snippet, whose, when) and how many customer messages the user has not seen yet.

Unread is counted on the ticket's own message list (storage/tickets.py, in the order messages
joined the ticket) against a per-user marker (storage/seen.py): opening a ticket records how
many of its messages were on screen, and every customer message after that index is unread.
Counting positions rather than comparing times keeps a late-processed message (its WhatsApp
timestamp earlier than the opening) unread until it was actually shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from bot.domain.auth import Caller
from bot.domain.tickets import Ticket, TicketMessage
from bot.runtime.deps import Deps
from storage.seen import SeenStore

# The list shows one line of the last message; the detail shows the rest.
SNIPPET_MAX: Final = 80


@dataclass(frozen=True, slots=True)
class Summary:
    """A ticket's line in a list: its last message and the caller's unread count."""

    unread: int
    snippet: str | None = None
    author: Literal["customer", "agent"] | None = None
    at: datetime | None = None


def _snippet(text: str | None, kind: str | None) -> str:
    if not text:
        return f"[{kind or 'message'}]"
    line = " ".join(text.split())
    return line if len(line) <= SNIPPET_MAX else line[: SNIPPET_MAX - 1] + "…"


def unread_after(messages: Sequence[TicketMessage], seen: int) -> int:
    """The customer messages of `messages` (a ticket's, in join order) after the first
    `seen`."""
    return sum(1 for m in messages[seen:] if m.direction == "in")


async def summaries(deps: Deps, caller: Caller, tickets: Sequence[Ticket]) -> dict[str, Summary]:
    """Each ticket's `Summary` for `caller`, by ticket id. Reads only: one list read per
    ticket (concurrent), one read of the markers, one timeline read per ticket whose last
    message is the customer's (the ticket keeps only its id)."""
    stores = deps.stores
    lists = await asyncio.gather(*(stores.tickets.messages(t.id) for t in tickets))
    seen = await SeenStore(deps.redis).counts(caller.id, [t.id for t in tickets])

    async def one(ticket: Ticket, messages: list[TicketMessage], marker: int) -> Summary:
        unread = unread_after(messages, marker)
        if not messages:
            return Summary(unread)
        last = messages[-1]
        text, kind = last.text, last.type
        if last.direction == "in" and ticket.contact_key:
            entry = await stores.timeline.get(ticket.phone_number_id, ticket.contact_key, last.id)
            if entry is not None:
                text, kind = entry.text, entry.type
        author: Literal["customer", "agent"] = "customer" if last.direction == "in" else "agent"
        return Summary(unread, _snippet(text, kind), author, last.at)

    done = await asyncio.gather(
        *(one(t, m, s) for t, m, s in zip(tickets, lists, seen, strict=True))
    )
    return {t.id: s for t, s in zip(tickets, done, strict=True)}


async def mark_seen(deps: Deps, caller: Caller, ticket: Ticket, shown: int) -> None:
    """Record that `caller` had the ticket's first `shown` messages on screen. Read that count
    *before* the conversation rendered for them: a message that joins in between then stays
    unread (and its `message.in` refreshes the view), never counted as seen unseen."""
    await SeenStore(deps.redis).mark(caller.id, ticket.id, shown)
