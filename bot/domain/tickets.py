"""Tickets: the request that opens (or continues) one, and the ticket records the API answers.

Pure models, no I/O. `TicketRequest` travels as the `open_ticket` job's argument
(`bot.runtime.queue.enqueue_open_ticket`); `Ticket` is what storage returns and the API serialises.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.domain.auth import Caller
from bot.domain.config import (
    DEFAULT_WELCOME_MESSAGE,
    QUEUE_POSITION,
    TEXT_BODY_MAX,
    AgentId,
    NumberConfig,
    PhoneNumberId,
)

TicketSource = Literal["message", "callback"]

# Stored statuses. `open` = assigned to an agent (in service once first_response_at is set).
StoredStatus = Literal["waiting", "open", "closed", "transferred"]
# What the API may filter on: the stored statuses plus the two that reports derive.
TicketStatus = Literal["waiting", "open", "closed", "transferred", "lost", "abandoned"]
TICKET_STATUSES: Final[tuple[TicketStatus, ...]] = (
    "waiting",
    "open",
    "closed",
    "transferred",
    "lost",
    "abandoned",
)
ClosedBy = Literal["agent", "customer"]

# After an agent's reply, automatic replies to that contact hold off this long
# (storage.throttle.mark_agent_active): a conversation with a person is not interrupted.
AGENT_QUIET_S: Final = 30 * 60


class TicketRequest(BaseModel):
    """Open a ticket for a contact on a number, or attach to the contact's open one.

    Attributes:
        natural_key: the idempotency key: the inbound wamid for a message, `callback:...` for a
            callback at the next opening. A second request with the same key never opens a
            second ticket nor attaches the message twice.
        contact: the contact key (bot.domain.phones.contact_key).
        source: "message" (a customer wrote in service hours) or "callback" (the customer
            asked to be called back after hours).
        wamid: the inbound message id, attached to the ticket's messages when there is one.
        at: Meta's timestamp of the message (when the customer wrote), or the callback's time.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    phone_number_id: str
    contact: str
    wa_id: str | None
    user_id: str | None = None
    name: str | None = None
    natural_key: str
    source: TicketSource = "message"
    wamid: str | None = None
    at: datetime


class TicketContact(BaseModel):
    model_config = ConfigDict(frozen=True)

    wa_id: str | None
    name: str | None
    phone: str | None = Field(description="E.164 with '+', when the contact has a phone number.")


class TicketEvent(BaseModel):
    """One entry of a ticket's history: created, routed, transferred, requeued, closed..."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    type: str
    agent_id: str | None = None
    by: str | None = Field(None, description="Who made the change: an agent id, or system.")
    detail: str | None = None
    from_agent: str | None = None
    to_agent: str | None = Field(None, description="null with type transferred: the queue.")


MessageAuthor = Literal["customer", "agent", "bot"]
# An outgoing message's delivery state (bot.domain.models.DeliveryState, storage/outgoing.py).
MessageStatus = Literal["accepted", "sent", "delivered", "read", "played", "failed"]


class TicketMessage(BaseModel):
    """One message of a ticket's conversation: the customer's (`direction` in), an agent's or
    an automatic one (`out`; `author` tells them apart).

    Fields after `type` were added for the desk's conversation view (issue 19); a client that
    ignores them sees what it saw before.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(
        description="The wamid of a customer's or automatic message; `agent:<ticket>:<key>` for "
        "an agent's reply (the id its POST answered)."
    )
    direction: Literal["in", "out"]
    at: AwareDatetime
    agent_id: str | None = None
    text: str | None = None
    type: str | None = None
    author: MessageAuthor | None = Field(
        None, description="customer, agent, or bot (automatic: absence, after hours, welcome...)."
    )
    kind: str | None = Field(
        None, description="What an automatic message was: absence, after_hours, welcome..."
    )
    status: MessageStatus | None = Field(
        None, description="Delivery state of an outgoing message, from Meta's status webhooks."
    )
    error: str | None = Field(None, description="Meta's error title when `status` is failed.")
    context: bool = Field(
        False,
        description="True for messages from before the ticket opened (the after-hours exchange "
        "that led to it), shown for context.",
    )


class Ticket(BaseModel):
    """A ticket as the API answers it (`GET /api/v1/numbers/{id}/tickets` items)."""

    model_config = ConfigDict(frozen=True)

    id: str
    phone_number_id: str
    status: TicketStatus
    agent_id: str | None
    contact: TicketContact
    # Internal, not part of the API's answer: the contact key (bot.domain.phones.contact_key) and
    # the business-scoped user id of a customer without a phone number.
    contact_key: str = Field("", exclude=True)
    user_id: str | None = Field(None, exclude=True)
    created_at: AwareDatetime
    assigned_at: AwareDatetime | None
    first_response_at: AwareDatetime | None
    closed_at: AwareDatetime | None
    closed_by: ClosedBy | None = None
    source: TicketSource = "message"
    queued_at: AwareDatetime | None = Field(
        None, description="The ticket's place in the queue: kept across transfers."
    )
    tags: tuple[str, ...] = Field((), description="Set with PUT /api/v1/tickets/{id}/tags.")


class TicketDetail(Ticket):
    """`GET /api/v1/tickets/{id}`: the ticket with its messages and its history."""

    messages: list[TicketMessage]
    history: list[TicketEvent]


class TicketPage(BaseModel):
    items: list[Ticket]


class TicketReplyInput(BaseModel):
    """The body of `POST /api/v1/tickets/{id}/messages`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=TEXT_BODY_MAX)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class TicketTransferInput(BaseModel):
    """The body of `POST /api/v1/tickets/{id}/transfer`: exactly one of the two."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: AgentId | None = None
    queue: PhoneNumberId | None = Field(None, description="The ticket's own phone_number_id.")

    @model_validator(mode="after")
    def _exactly_one(self) -> TicketTransferInput:
        if (self.agent_id is None) == (self.queue is None):
            raise ValueError("give exactly one of agent_id and queue")
        return self


class SentReply(BaseModel):
    """The answer to an agent's reply: the message id (the reply's idempotency key)."""

    id: str
    ticket_id: str
    status: Literal["queued"] = "queued"
    first_response: bool = Field(description="Whether this reply set first_response_at.")


class TicketCloseInput(BaseModel):
    """The optional body of `POST /api/v1/tickets/{id}/close`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    closed_by: ClosedBy = Field(
        "agent", description="customer: the agent records that the customer ended it."
    )


TAGS_MAX: Final = 20
TAG_MAX_LENGTH: Final = 40
# Letters (any script), digits, and inner spaces, dots, dashes, underscores: no ':' (tags are
# part of counter names) and no control characters.
_TAG_RE: Final = re.compile(r"^[^\W_](?:[\w .-]*[^\W_])?$")


class TicketTagsInput(BaseModel):
    """The body of `PUT /api/v1/tickets/{id}/tags`: the ticket's whole set of tags.

    Tags are trimmed, lower-cased (so "Urgente" and "urgente" are one tag) and deduplicated.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tags: tuple[str, ...] = Field(max_length=TAGS_MAX)

    @field_validator("tags")
    @classmethod
    def _normalise(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for raw in value:
            tag = " ".join(raw.split()).lower()
            if not 1 <= len(tag) <= TAG_MAX_LENGTH or _TAG_RE.fullmatch(tag) is None:
                raise ValueError(
                    f"each tag is 1-{TAG_MAX_LENGTH} letters, digits, spaces, '.', '-' or '_', "
                    f"starting and ending with a letter or digit: {raw!r}"
                )
            out[tag] = None
        return tuple(out)


class OwnerInput(BaseModel):
    """The body of `PUT /api/v1/numbers/{id}/contacts/{wa_id}/owner`: null clears it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: AgentId | None


class OwnerView(BaseModel):
    """A contact's portfolio owner on a number: routing offers them the contact first."""

    phone_number_id: str
    wa_id: str
    agent_id: str | None


def derive_status(
    stored: str, *, closed_by: str | None, ever_assigned: bool, answered: bool
) -> TicketStatus:
    """The status the API shows: the stored one, except for a ticket the customer left.

    A closed ticket that no agent answered and that was closed for the customer (they ended
    it, or it expired in the queue) is `lost` when no agent ever had it, else `abandoned`.
    """
    if stored == "closed" and closed_by == "customer" and not answered:
        return "abandoned" if ever_assigned else "lost"
    if stored in ("waiting", "open", "closed", "transferred"):
        return stored  # type: ignore[return-value]  # narrowed by the test above
    return "waiting"


def welcome_text(config: NumberConfig, position: int | None) -> str | None:
    """The welcome reply for a new ticket, or None when the number has it off.

    `position` is the ticket's place in the queue (1 = next), None when an agent has it;
    `queue_message` (with `{queue_position}`) is used only while the ticket waits.
    """
    welcome = config.tickets.welcome
    if not welcome.enabled:
        return None
    if position is not None and welcome.queue_message is not None:
        return welcome.queue_message.replace(QUEUE_POSITION, str(position))
    return welcome.message or DEFAULT_WELCOME_MESSAGE[config.language]


def can_read_tickets(caller: Caller, phone_number_id: str) -> bool:
    """A number's tickets and queue: everybody attached to the number."""
    return caller.attached_to(phone_number_id)


def can_manage_ticket(caller: Caller, phone_number_id: str, holder: str | None) -> bool:
    """Close or transfer a ticket: the agent holding it, a manager of its number, an admin."""
    if caller.is_admin:
        return True
    if not caller.attached_to(phone_number_id):
        return False
    return caller.role == "manager" or (holder is not None and caller.id == holder)


def can_set_owner(caller: Caller, phone_number_id: str) -> bool:
    """Portfolios: admins, and managers of the number."""
    return caller.is_admin or (caller.role == "manager" and phone_number_id in caller.numbers)
