"""What a reply job is asked to send: the request model shared by its producers and the job."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict


class ReplyKind(StrEnum):
    ABSENCE = "absence"
    ABSENCE_CONTACT = "absence_contact"
    AFTER_HOURS = "after_hours"
    NOTIFY_CONFIRM = "notify_confirm"
    WELCOME = "welcome"
    AGENT = "agent"
    ACTIVE_MESSAGE = "active_message"


class ReplyRequest(BaseModel):
    """One message to one contact.

    Attributes:
        natural_key: the idempotency key: "<inbound wamid>:<kind>" for auto-replies, the agent
            message id for agents' replies. A second request with the same key never sends.
        contact: the contact key (see bot.domain.phones.contact_key) that orders this contact's
        sends.
        body: Meta's body, `to` included (bot.domain.bodies builds them).
        free_form: True for anything but a template: it may only go inside the 24-hour window.
        ticket_id: the ticket the message belongs to, when there is one.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    natural_key: str
    phone_number_id: str
    wa_id: str | None
    user_id: str | None = None
    contact: str
    kind: ReplyKind
    body: dict[str, Any]
    free_form: bool = True
    ticket_id: str | None = None
    author: str | None = None
