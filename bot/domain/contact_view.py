"""The contact-centred view (issue 19): one contact's 90-day conversation across tickets,
and the pure decision of how the desk may resume it (the seed's five cases).

Nothing here does I/O: `bot.services.contact_view` loads the inputs and calls `resume_case`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.contacts import fold
from bot.domain.models import Contact, TimelineEntry
from bot.domain.notes import Note

ResumeCase: TypeAlias = Literal[
    "reply", "window_expired", "not_in_service", "no_history", "served_by_another"
]
RESUME_CASES: Final[tuple[ResumeCase, ...]] = (
    "reply",
    "window_expired",
    "not_in_service",
    "no_history",
    "served_by_another",
)
ServiceState: TypeAlias = Literal["none", "waiting", "open"]
# Outgoing kinds an agent wrote; every other outgoing entry is the chatbot's own message.
_AGENT_KINDS: Final = frozenset({"agent", "active_message"})


def resume_case(
    *,
    has_history: bool,
    service: ServiceState,
    agent_id: str | None,
    caller_id: str,
    window_open: bool,
) -> ResumeCase:
    """How the caller may resume the conversation (seed "Desk Conversations", points 3-5).

    - in service by the caller: `reply` while the 24-hour window is open, else
      `window_expired` (only an active message may go out);
    - in service by someone else: `served_by_another` (sending disabled; request a transfer);
    - not in service (no ticket, or one still waiting in the queue): `not_in_service` when
      there is history within 90 days, else `no_history`.

    Being in service takes precedence over the history: an agent holding a ticket always
    has a conversation to show, and another agent's customer stays theirs either way.
    """
    if service == "open" and agent_id is not None:
        if agent_id != caller_id:
            return "served_by_another"
        return "reply" if window_open else "window_expired"
    return "not_in_service" if has_history else "no_history"


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class ConversationItem(_Answer):
    """One line of the contact's conversation: a message in or out, or an internal note."""

    kind: Literal["message", "note"]
    id: str
    at: datetime
    direction: Literal["in", "out"] | None = Field(
        None, description="For a message: in (the customer's) or out (ours)."
    )
    automatic: bool = Field(
        False, description="An outgoing message the chatbot sent by itself (not an agent)."
    )
    type: str | None = Field(None, description="Meta's message type, for an incoming one.")
    message_kind: str | None = Field(
        None, description="What an outgoing message was (agent, active_message, welcome...)."
    )
    text: str | None = None
    author: str | None = Field(None, description="For a note: the id of who wrote it.")


class TicketState(_Answer):
    """The contact's current ticket on the number, if any."""

    state: ServiceState = Field(
        description="none (no active ticket), waiting (queued) or open (held by an agent)."
    )
    ticket_id: str | None = None
    agent_id: str | None = None
    agent_name: str | None = None


class WindowState(_Answer):
    """Meta's 24-hour customer service window."""

    open: bool
    open_until: datetime | None = Field(
        None, description="When it closes (open) or closed (expired); null if never opened."
    )


class Resume(_Answer):
    """What the desk shows to resume the conversation (one of the seed's five cases)."""

    case: ResumeCase
    can_reply: bool = Field(description="Free text may go out now (`reply` only).")
    active_message: bool = Field(description="The active-message (template) component shows.")
    wa_id: str | None = Field(None, description="The number an active message goes to.")
    served_by: str | None = Field(None, description="served_by_another: the agent's name.")
    transfer_ticket_id: str | None = Field(
        None,
        description="served_by_another: the ticket of POST /tickets/{id}/transfer-requests.",
    )
    message: str = Field(description="What to tell the agent.")


class ContactConversation(_Answer):
    """`GET /numbers/{phone_number_id}/contacts/{wa_id}/conversation`."""

    number: str
    timezone: str = Field(description="The number's IANA time zone, to show times in.")
    contact: Contact
    q: str | None = Field(None, description="The search the items were filtered by.")
    has_history: bool = Field(description="A message in or out within the last 90 days.")
    items: list[ConversationItem] = Field(description="Oldest first.")
    truncated: bool = Field(description="Older entries exist than the ones read.")
    ticket: TicketState
    window: WindowState
    resume: Resume


class ActiveMessageQueued(_Answer):
    """`POST .../contacts/{wa_id}/active-message`: the send was queued (a `send_reply` job)."""

    id: str = Field(description="The send's natural key; the timeline entry appears once sent.")
    number: str
    wa_id: str | None


_MESSAGES: Final[dict[ResumeCase, str]] = {
    "reply": "The customer is in your service and the 24-hour window is open: reply below.",
    "window_expired": "The conversation has expired (24 hours since the customer's last "
    "message): send an active message (an approved template) to resume it.",
    "not_in_service": "The contact is not in service: send an active message to resume the "
    "conversation.",
    "no_history": "No conversation history within the last 90 days: the best way to resume "
    "contact is an active message.",
    "served_by_another": "This contact is being served by {name}: request the transfer to "
    "interact with them.",
}


def resume(case: ResumeCase, contact: Contact, ticket: TicketState) -> Resume:
    """The `Resume` answer of `case` (texts, and which components the desk shows)."""
    other = case == "served_by_another"
    name = ticket.agent_name or ticket.agent_id or "another agent"
    return Resume(
        case=case,
        can_reply=case == "reply",
        active_message=case in ("window_expired", "not_in_service", "no_history"),
        wa_id=contact.wa_id,
        served_by=name if other else None,
        transfer_ticket_id=ticket.ticket_id if other else None,
        message=_MESSAGES[case].format(name=name),
    )


def merge(entries: list[TimelineEntry], notes: list[Note], q: str | None) -> list[ConversationItem]:
    """Messages and notes in one list, oldest first; with `q`, only those whose text contains
    it (case and accents ignored, as the timeline's search)."""
    items = [
        ConversationItem(
            kind="message",
            id=e.id,
            at=e.at,
            direction=e.direction,
            automatic=e.direction == "out" and e.kind not in _AGENT_KINDS,
            type=e.type,
            message_kind=e.kind,
            text=e.text,
        )
        for e in entries
    ]
    items += [
        ConversationItem(kind="note", id=n.id, at=n.at, text=n.text, author=n.author) for n in notes
    ]
    if q is not None and (needle := fold(q).strip()):
        items = [i for i in items if i.text is not None and needle in fold(i.text)]
    return sorted(items, key=lambda i: (i.at, i.id))
