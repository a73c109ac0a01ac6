"""The decision: what to do with one inbound message, as a pure function (no I/O, no clock).

`decide(message, config, state, now)` returns the actions the effect jobs carry out. The rules,
in order (PRODUCT.md, issue 6):

1. A tap on our "notify me" button while closed: request the callback, confirm it.
2. Absence on at the message's time: the absence reply (and the suggested agent's card),
   unless an agent holds the customer's ticket right now and `absence.skip_customers_in_service`
   is on (the default): nothing then, they are being served.
3. Closed: the after-hours reply saying when service resumes (with the "notify me" button when
   that option is on), and the contact goes on the after-hours list.
4. Open: a ticket.

Everything is judged at the message's own timestamp (Meta's): a customer who wrote at 17:59
wrote in service hours, however late we process it. Auto-replies are held back when the
customer's 24-hour window has closed by `now`, while an agent is talking to the customer, and
by the throttle (once per period and per cooldown; `state.marks` is what was sent before).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from bot.domain import bodies
from bot.domain.actions import (
    Ignore,
    LogAfterHoursContact,
    RequestCallback,
    RouteToTicket,
    SendAutoReply,
)
from bot.domain.config import NumberConfig
from bot.domain.hours import compile_schedule
from bot.domain.models import InboundMessage
from bot.domain.opening_text import render_next_opening
from bot.domain.tickets import Ticket

NOTIFY_BUTTON_ID: Final = "notify_next_service_hour"
WINDOW: Final = timedelta(hours=24)
# Messages that are not the customer talking to us: no reply, no ticket.
NOT_CONVERSATION: Final = frozenset({"system", "reaction", "revoke", "edit"})

NOTIFY_BUTTON_TITLE: Final[Mapping[str, str]] = {
    "pt-BR": "Avise-me",
    "en": "Notify me",
    "es": "Avísame",
}
NOTIFY_CONFIRMATION: Final[Mapping[str, str]] = {
    "pt-BR": "Combinado! Vamos retornar o seu contato {next_opening}.",
    "en": "Done! We will get back to you {next_opening}.",
    "es": "¡Listo! Te contactaremos {next_opening}.",
}
TALK_TO: Final[Mapping[str, str]] = {
    "pt-BR": "Se preferir, fale com {name}: {link}",
    "en": "If you prefer, talk to {name}: {link}",
    "es": "Si lo prefieres, habla con {name}: {link}",
}


@dataclass(frozen=True, slots=True)
class ReplyMark:
    """The last auto-reply of one kind to this contact."""

    period: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ContactState:
    """What the decision needs to know about the contact beyond the message itself.

    Attributes:
        marks: the last auto-reply per throttle kind ("absence", "after_hours", ...).
        agent_active: an agent wrote to this contact within the last few minutes.
        in_service: the contact's open ticket is held by an agent right now (False when
            unknown: the absence reply then goes out as it always did).
    """

    marks: Mapping[str, ReplyMark] = field(default_factory=dict)
    agent_active: bool = False
    in_service: bool = False


def in_service(ticket: Ticket | None) -> bool:
    """Whether the contact's active ticket (None: it has none) is held by an agent now: a
    waiting or transferred ticket is in the queue, nobody serves it yet."""
    return ticket is not None and ticket.status == "open" and ticket.agent_id is not None


def closed_period(opening: datetime | None) -> str:
    """The id of the closed period that ends at `opening` (each opening ends one period)."""
    return opening.isoformat() if opening is not None else "never"


def decide(
    message: InboundMessage, config: NumberConfig | None, state: ContactState, now: datetime
) -> list[SendAutoReply | LogAfterHoursContact | RequestCallback | RouteToTicket | Ignore]:
    """The actions for one message. Pure: same inputs, same actions."""
    if config is None:
        return [Ignore(reason="unknown_number")]
    if message.type in NOT_CONVERSATION:
        return [Ignore(reason=f"not_conversation:{message.type}")]
    at = message.timestamp
    schedule = compile_schedule(config.service_hours, config.zone)
    is_open = schedule.is_open(at)
    opening = None if is_open else schedule.next_opening(at)
    period = closed_period(opening)
    language = config.language
    to = bodies.recipient(message.wa_id, message.user_id)
    cooldown_s = config.auto_reply_cooldown_minutes * 60
    when = render_next_opening(opening, at, language, tz=config.zone)

    actions: list[SendAutoReply | LogAfterHoursContact | RequestCallback | RouteToTicket | Ignore]
    actions = []
    replies: list[SendAutoReply] = []
    skipped: list[Ignore] = []

    if message.button_reply_id == NOTIFY_BUTTON_ID and not is_open:
        actions.append(RequestCallback(period=period, callback_at=opening))
        confirmation = NOTIFY_CONFIRMATION[language].format(next_opening=when)
        replies.append(
            SendAutoReply(
                reply="notify_confirm",
                body=bodies.text(to, confirmation),
                throttle_kind="notify_confirm",
                period=period,
            )
        )
    elif (
        config.absence.active_at(at)
        and config.absence.skip_customers_in_service
        and (state.in_service)
    ):
        # An agent already serves this customer: "the agent is away" would be false for them.
        skipped.append(Ignore(reason="absence:in_service"))
    elif config.absence.active_at(at):
        absence = config.absence
        text = absence.message
        agent = absence.suggested_agent
        if agent is not None:
            link = "https://wa.me/" + "".join(c for c in agent.phone if c.isdigit())
            text += "\n\n" + TALK_TO[language].format(name=agent.name, link=link)
        absence_period = "absence:" + (absence.starts_at.isoformat() if absence.starts_at else "on")
        replies.append(
            SendAutoReply(
                reply="absence",
                body=bodies.text(to, text),
                throttle_kind="absence",
                period=absence_period,
                cooldown_s=cooldown_s,
            )
        )
        if agent is not None:
            replies.append(
                SendAutoReply(
                    reply="absence_contact",
                    body=bodies.contact_card(to, agent.name, agent.phone),
                    throttle_kind="absence",
                    period=absence_period,
                    cooldown_s=cooldown_s,
                )
            )
    elif not is_open:
        text = config.after_hours.message.replace("{next_opening}", when)
        notify = config.after_hours.notify_next_service_hour
        body = (
            bodies.reply_buttons(to, text, [(NOTIFY_BUTTON_ID, NOTIFY_BUTTON_TITLE[language])])
            if notify
            else bodies.text(to, text)
        )
        replies.append(
            SendAutoReply(
                reply="after_hours",
                body=body,
                throttle_kind="after_hours",
                period=period,
                cooldown_s=cooldown_s,
            )
        )

    # Bookkeeping does not depend on which reply went out: an absent agent's contacts still
    # reach the after-hours list or the queue (other agents take them).
    if not is_open and message.button_reply_id != NOTIFY_BUTTON_ID:
        requested = "no" if config.after_hours.notify_next_service_hour else "N/D"
        actions.append(
            LogAfterHoursContact(period=period, next_opening=opening, requested_return=requested)
        )
    elif is_open:
        actions.append(RouteToTicket())

    for reply in replies:
        reason = _held_back(reply, state, at, now)
        actions.append(reply if reason is None else Ignore(reason=f"{reply.reply}:{reason}"))
    actions.extend(skipped)
    return actions


def _held_back(
    reply: SendAutoReply, state: ContactState, at: datetime, now: datetime
) -> str | None:
    """Why an auto-reply must not go out, or None."""
    if now - at > WINDOW:
        return "window_closed"
    if state.agent_active:
        return "agent_active"
    mark = state.marks.get(reply.throttle_kind or "")
    if mark is not None:
        if mark.period == reply.period:
            return "same_period"
        if at - mark.at < timedelta(seconds=reply.cooldown_s):
            return "cooldown"
    return None
