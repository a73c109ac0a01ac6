"""Actions: what the pure decision (bot.domain.decide) asks the effect jobs to do for one message.

Each action is JSON-safe (it travels as a job argument) and carries what its effect job needs
to be idempotent: the inbound message id plus the action's kind is the natural key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SendAutoReply(_Action):
    """Send an automatic reply (absence, after-hours, notify confirmation, welcome).

    `reply` is "absence", "absence_contact", "after_hours", "notify_confirm" or "welcome";
    `body` is Meta's message body without `to` (the reply job addresses it).
    """

    kind: Literal["send_auto_reply"] = "send_auto_reply"
    reply: str
    body: dict[str, Any]
    # The throttle this reply consumes: at most once per `period` and per `cooldown_s`.
    throttle_kind: str | None = None
    period: str | None = None
    cooldown_s: int = 0


class LogAfterHoursContact(_Action):
    """Add (or update) the contact's after-hours row for the closed period `period`.

    `period` identifies the closed period: the ISO instant of the next opening, or "never".
    """

    kind: Literal["log_after_hours_contact"] = "log_after_hours_contact"
    period: str
    next_opening: datetime | None
    requested_return: Literal["no", "N/D"]


class RequestCallback(_Action):
    """The customer tapped "notify me": mark the row, schedule the callback at `callback_at`."""

    kind: Literal["request_callback"] = "request_callback"
    period: str
    callback_at: datetime | None


class RouteToTicket(_Action):
    """In service hours: open a ticket, or continue the contact's open one, and route it."""

    kind: Literal["route_to_ticket"] = "route_to_ticket"


class Ignore(_Action):
    """Nothing to do, and why (recorded for operators and tests)."""

    kind: Literal["ignore"] = "ignore"
    reason: str


Action = Annotated[
    SendAutoReply | LogAfterHoursContact | RequestCallback | RouteToTicket | Ignore,
    Field(discriminator="kind"),
]


class Subject(BaseModel):
    """Who and what an effect job acts on: the inbound message and its contact.

    Passed to every effect job with its action, so that no effect job has to parse the
    message again. `contact` is the contact key (bot.domain.phones.contact_key).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    phone_number_id: str
    wamid: str
    contact: str
    wa_id: str | None
    user_id: str | None = None
    name: str | None = None
    # Meta's timestamp of the message (when the customer wrote).
    at: datetime
