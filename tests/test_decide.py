"""The decision: rule order, rendered replies, and properties over generated inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.actions import (
    Ignore,
    LogAfterHoursContact,
    RequestCallback,
    RouteToTicket,
    SendAutoReply,
)
from bot.domain.config import NumberConfig, parse_config
from bot.domain.decide import NOTIFY_BUTTON_ID, ContactState, ReplyMark, decide, in_service
from bot.domain.models import InboundMessage
from bot.domain.tickets import Ticket
from bot.simulate import build_payload

PNID = "1000"
WEEKDAYS = {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
# Monday 2026-11-30, in São Paulo (UTC-3 all year since 2019).
MON_10 = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
MON_20 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
FRI_20 = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)


def config(**overrides: Any) -> NumberConfig:
    document: dict[str, Any] = {
        "timezone": "America/Sao_Paulo",
        "language": "en",
        "service_hours": {"weekly": WEEKDAYS},
        "after_hours": {"message": "We are closed. We are back {next_opening}."},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    return parse_config(document)


def message(at: datetime, *, button: str | None = None, wamid: str = "wamid.A") -> InboundMessage:
    payload = build_payload(
        phone_number_id=PNID,
        wa_id="5511987654321",
        name="Ana",
        text="Oi",
        button_reply=button,
        timestamp=int(at.timestamp()),
        message_id=wamid,
    )
    value = payload["entry"][0]["changes"][0]["value"]
    item = {
        "phone_number_id": PNID,
        "contact": value["contacts"][0],
        "message": value["messages"][0],
    }
    return InboundMessage.from_claim(item, wamid=wamid)


def kinds(actions: list[Any]) -> list[str]:
    return [a.reply if isinstance(a, SendAutoReply) else a.kind for a in actions]


def test_in_hours_opens_a_ticket_and_sends_nothing() -> None:
    actions = decide(message(MON_10), config(), ContactState(), MON_10)
    assert actions == [RouteToTicket()]


def test_after_hours_replies_with_the_next_opening_and_logs_the_contact() -> None:
    actions = decide(message(MON_20), config(), ContactState(), MON_20)
    assert kinds(actions) == ["log_after_hours_contact", "after_hours"]
    log, reply = actions
    assert isinstance(log, LogAfterHoursContact)
    assert isinstance(reply, SendAutoReply)
    assert log.requested_return == "N/D"
    assert log.next_opening == datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(hours=3)
    assert reply.body["type"] == "text"
    assert reply.body["to"] == "+5511987654321"
    assert reply.body["text"]["body"] == "We are closed. We are back tomorrow at 09:00."


def test_friday_night_reply_says_monday_and_offers_the_button_when_notify_is_on() -> None:
    cfg = config(after_hours={"notify_next_service_hour": True})
    actions = decide(message(FRI_20), cfg, ContactState(), FRI_20)
    log, reply = actions
    assert isinstance(log, LogAfterHoursContact)
    assert log.requested_return == "no"
    assert isinstance(reply, SendAutoReply)
    interactive = reply.body["interactive"]
    assert interactive["body"]["text"] == "We are closed. We are back Monday at 09:00."
    [button] = interactive["action"]["buttons"]
    assert button["reply"] == {"id": NOTIFY_BUTTON_ID, "title": "Notify me"}


def test_notify_button_requests_the_callback_and_confirms() -> None:
    cfg = config(after_hours={"notify_next_service_hour": True})
    actions = decide(message(MON_20, button=NOTIFY_BUTTON_ID), cfg, ContactState(), MON_20)
    callback, confirm = actions
    assert isinstance(callback, RequestCallback)
    assert callback.callback_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert isinstance(confirm, SendAutoReply)
    assert confirm.reply == "notify_confirm"
    assert "tomorrow at 09:00" in confirm.body["text"]["body"]


def test_absence_sends_message_with_suggested_agent_card_and_keeps_bookkeeping() -> None:
    cfg = config(
        absence={
            "enabled": True,
            "message": "Ana is on vacation.",
            "suggested_agent": {"name": "João Silva", "phone": "+5511999990000"},
        }
    )
    in_hours = decide(message(MON_10), cfg, ContactState(), MON_10)
    assert kinds(in_hours) == ["route_to_ticket", "absence", "absence_contact"]
    text, card = in_hours[1], in_hours[2]
    assert isinstance(text, SendAutoReply)
    assert isinstance(card, SendAutoReply)
    assert text.body["text"]["body"].startswith("Ana is on vacation.")
    assert "https://wa.me/5511999990000" in text.body["text"]["body"]
    assert card.body["contacts"][0]["phones"][0]["wa_id"] == "5511999990000"
    after = decide(message(MON_20), cfg, ContactState(), MON_20)
    # Never both an absence and an after-hours reply.
    assert kinds(after) == ["log_after_hours_contact", "absence", "absence_contact"]


def test_absence_outside_its_dates_does_not_apply() -> None:
    cfg = config(absence={"enabled": True, "starts_at": "2026-12-10T00:00:00Z"})
    assert decide(message(MON_10), cfg, ContactState(), MON_10) == [RouteToTicket()]


def test_replies_are_held_back_by_throttle_agent_and_window() -> None:
    msg = message(MON_20)
    period = decide(msg, config(), ContactState(), MON_20)[1]
    assert isinstance(period, SendAutoReply)
    same = ContactState(marks={"after_hours": ReplyMark(str(period.period), MON_20)})
    assert kinds(decide(msg, config(), same, MON_20)) == ["log_after_hours_contact", "ignore"]
    assert decide(msg, config(), ContactState(agent_active=True), MON_20)[1] == Ignore(
        reason="after_hours:agent_active"
    )
    late = MON_20 + timedelta(hours=25)
    assert decide(msg, config(), ContactState(), late)[1] == Ignore(
        reason="after_hours:window_closed"
    )
    # A new closed period after the cooldown: a new reply.
    yesterday = ContactState(marks={"after_hours": ReplyMark("old", MON_20 - timedelta(days=2))})
    assert kinds(decide(msg, config(), yesterday, MON_20))[1] == "after_hours"


def test_system_messages_and_reactions_are_not_conversation() -> None:
    msg = message(MON_20).model_copy(update={"type": "reaction"})
    assert decide(msg, config(), ContactState(), MON_20) == [
        Ignore(reason="not_conversation:reaction")
    ]
    assert decide(message(MON_20), None, ContactState(), MON_20) == [
        Ignore(reason="unknown_number")
    ]


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
documents = st.fixed_dictionaries(
    {
        "always_open": st.booleans(),
        "absence": st.booleans(),
        "notify": st.booleans(),
        "agent": st.booleans(),
        "days": st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])),
        "start": st.integers(0, 22),
        "button": st.booleans(),
    }
)


def _generated(doc: dict[str, Any]) -> NumberConfig:
    start = doc["start"]
    weekly = {d: [{"start": f"{start:02d}:00", "end": f"{start + 1:02d}:30"}] for d in doc["days"]}
    absence: dict[str, Any] = {"enabled": doc["absence"]}
    if doc["agent"]:
        absence["suggested_agent"] = {"name": "João", "phone": "+5511999990000"}
    return config(
        service_hours={"always_open": doc["always_open"], "weekly": weekly},
        after_hours={"notify_next_service_hour": doc["notify"]},
        absence=absence,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents, at=instants, delay_s=st.integers(0, 3 * 24 * 3600))
def test_decision_properties(doc: dict[str, Any], at: datetime, delay_s: int) -> None:
    cfg = _generated(doc)
    msg = message(at, button=NOTIFY_BUTTON_ID if doc["button"] else None)
    now = at + timedelta(seconds=delay_s)
    actions = decide(msg, cfg, ContactState(), now)
    assert decide(msg, cfg, ContactState(), now) == actions  # pure
    replies = {a.reply for a in actions if isinstance(a, SendAutoReply)}
    # Never both an absence and an after-hours reply for one message.
    assert not ({"absence", "absence_contact"} & replies and "after_hours" in replies)
    # Never an auto-reply when always open and absence off.
    if doc["always_open"] and not doc["absence"]:
        assert replies == set()
        assert actions == [RouteToTicket()]
    # No auto-reply once the customer's 24-hour window has closed.
    if now - at > timedelta(hours=24):
        assert replies == set()
    # Exactly one of: a ticket, an after-hours row, a callback request.
    bookkeeping = [
        a for a in actions if isinstance(a, RouteToTicket | LogAfterHoursContact | RequestCallback)
    ]
    assert len(bookkeeping) == 1
    # Every reply is addressed to the sender and carries its throttle.
    for action in actions:
        if isinstance(action, SendAutoReply):
            assert action.body["to"] == "+5511987654321"
            assert action.throttle_kind is not None
            assert action.period
            if action.reply == "after_hours":
                assert "{next_opening}" not in str(action.body)


def _absent(**absence: Any) -> NumberConfig:
    return config(
        absence={
            "enabled": True,
            "message": "Ana is on vacation.",
            "suggested_agent": {"name": "João Silva", "phone": "+5511999990000"},
            **absence,
        }
    )


def test_customer_in_service_gets_no_absence_reply_by_default() -> None:
    served = ContactState(in_service=True)
    assert decide(message(MON_10), _absent(), served, MON_10) == [
        RouteToTicket(),
        Ignore(reason="absence:in_service"),
    ]
    # Closed: still no absence reply and no after-hours reply either, the contact is logged.
    assert kinds(decide(message(MON_20), _absent(), served, MON_20)) == [
        "log_after_hours_contact",
        "ignore",
    ]


def test_customer_in_service_gets_the_absence_reply_when_the_setting_is_off() -> None:
    cfg = _absent(skip_customers_in_service=False)
    served = ContactState(in_service=True)
    assert kinds(decide(message(MON_10), cfg, served, MON_10)) == [
        "route_to_ticket",
        "absence",
        "absence_contact",
    ]


def test_new_customer_gets_the_absence_reply_with_the_setting_on() -> None:
    assert _absent().absence.skip_customers_in_service is True
    assert kinds(decide(message(MON_10), _absent(), ContactState(), MON_10)) == [
        "route_to_ticket",
        "absence",
        "absence_contact",
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=documents,
    at=instants,
    skip=st.booleans(),
    in_service=st.booleans(),
    agent_active=st.booleans(),
)
def test_absence_reply_goes_only_to_customers_not_in_service(
    doc: dict[str, Any], at: datetime, skip: bool, in_service: bool, agent_active: bool
) -> None:
    base = _generated(doc)
    cfg = base.model_copy(
        update={"absence": base.absence.model_copy(update={"skip_customers_in_service": skip})}
    )
    msg = message(at, button=NOTIFY_BUTTON_ID if doc["button"] else None)
    state = ContactState(in_service=in_service, agent_active=agent_active)
    actions = decide(msg, cfg, state, at)
    replies = {a.reply for a in actions if isinstance(a, SendAutoReply)}
    if skip and in_service:
        assert not {"absence", "absence_contact"} & replies
    # Being in service changes nothing but the absence reply: same bookkeeping, and
    # without the setting (or for a customer not in service) the very same actions.
    plain = decide(msg, cfg, ContactState(agent_active=agent_active), at)
    if not (skip and in_service):
        assert actions == plain
    else:
        assert [a for a in actions if not isinstance(a, SendAutoReply | Ignore)] == [
            a for a in plain if not isinstance(a, SendAutoReply | Ignore)
        ]
        if "absence" in {a.reply for a in plain if isinstance(a, SendAutoReply)}:
            assert Ignore(reason="absence:in_service") in actions


def test_only_a_ticket_held_by_an_agent_counts_as_in_service() -> None:
    base = {
        "id": "T1",
        "phone_number_id": PNID,
        "contact": {"wa_id": "5511987654321", "name": None, "phone": "+5511987654321"},
        "created_at": MON_10,
        "assigned_at": None,
        "first_response_at": None,
        "closed_at": None,
    }
    held = Ticket.model_validate({**base, "status": "open", "agent_id": "ana"})
    waiting = Ticket.model_validate({**base, "status": "waiting", "agent_id": None})
    assert in_service(held) is True
    assert in_service(waiting) is False
    assert in_service(None) is False
