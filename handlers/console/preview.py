"""What a customer writing now would get: the chatbot's decision, shown before anyone writes.

The preview runs the real decision (`bot.domain.decide.decide`) on a message stamped with the
instant asked about, with settings that are stored or only typed into the form. It shows the
auto-reply exactly as the send job would put it in Meta's body (text, "notify me" button,
contact card), or says that the message would open a ticket. It does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from bot.domain.actions import LogAfterHoursContact, RouteToTicket, SendAutoReply
from bot.domain.config import NumberConfig
from bot.domain.decide import ContactState, decide
from bot.domain.hours import explain
from bot.domain.models import InboundMessage
from bot.domain.opening_text import render_next_opening

# A customer the preview pretends is writing: never stored, never sent to.
_PREVIEW_WA_ID: Final = "5500000000000"

# How the rule that decided reads, open and closed.
OPEN_REASONS: Final = {
    "always_open": "open 24 hours",
    "weekly": "within the weekly hours",
    "exception": "special hours of an exception",
    "holiday": "special hours",
}
CLOSED_REASONS: Final = {
    "weekly": "outside the weekly hours",
    "closed_day": "no hours on this weekday",
    "exception": "closed by an exception",
    "holiday": "public holiday",
}


@dataclass(frozen=True, slots=True)
class Bubble:
    """One WhatsApp message of the auto-reply, as the customer sees it."""

    kind: str  # text, buttons, contact
    text: str
    buttons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NextReply:
    """The decision for a message at `at`: open or not, when it opens, what goes out."""

    at: datetime
    open: bool
    reason: str
    label: str | None
    next_opening: datetime | None
    opening_text: str
    outcome: str  # absence, after_hours, ticket
    bubbles: list[Bubble] = field(default_factory=list)
    logged: bool = False


def _bubble(body: dict[str, Any]) -> Bubble:
    kind = body.get("type")
    if kind == "interactive":
        interactive = body["interactive"]
        titles = tuple(b["reply"]["title"] for b in interactive["action"]["buttons"])
        return Bubble("buttons", str(interactive["body"]["text"]), titles)
    if kind == "contacts":
        card = body["contacts"][0]
        return Bubble("contact", f"{card['name']['formatted_name']} · {card['phones'][0]['phone']}")
    if kind == "text":
        return Bubble("text", str(body["text"]["body"]))
    return Bubble("text", f"[{kind}]")


def next_reply(config: NumberConfig, phone_number_id: str, at: datetime) -> NextReply:
    """The decision `decide` takes for a first message from a new customer at `at`."""
    message = InboundMessage(
        phone_number_id=phone_number_id,
        wamid="console-preview",
        wa_id=_PREVIEW_WA_ID,
        timestamp=at,
        type="text",
        text="Hello",
    )
    actions = decide(message, config, ContactState(), at)
    why = explain(config.service_hours, config.zone, at)
    replies = [a for a in actions if isinstance(a, SendAutoReply)]
    if any(r.reply == "absence" for r in replies):
        outcome = "absence"
    elif any(isinstance(a, RouteToTicket) for a in actions):
        outcome = "ticket"
    else:
        outcome = "after_hours"
    return NextReply(
        at=at.astimezone(config.zone),
        open=why.open,
        reason=(OPEN_REASONS if why.open else CLOSED_REASONS).get(why.reason, why.reason),
        label=why.label,
        next_opening=why.next_opening,
        opening_text=render_next_opening(why.next_opening, at, config.language, tz=config.zone),
        outcome=outcome,
        bubbles=[_bubble(r.body) for r in replies],
        logged=any(isinstance(a, LogAfterHoursContact) for a in actions),
    )
