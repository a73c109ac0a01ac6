"""bot.domain.models: every inbound type is read, anything else becomes "unsupported", nothing
raises."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.models import (
    WINDOW,
    Button,
    Contact,
    Contacts,
    Edit,
    InboundMessage,
    Interactive,
    Location,
    Media,
    Order,
    Reaction,
    Revoke,
    StatusUpdate,
    System,
    Text,
    Unsupported,
)

DATA = Path(__file__).parent / "data" / "webhooks"
MESSAGES: dict[str, dict[str, Any]] = json.loads((DATA / "messages.json").read_text())
STATUSES: dict[str, dict[str, Any]] = json.loads((DATA / "statuses.json").read_text())
PNID = "106540352242922"
RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def claim(message: Any, contact: Any = None) -> dict[str, Any]:
    return {
        "phone_number_id": PNID,
        "display_phone_number": "15550001111",
        "contact": contact,
        "message": message,
    }


def parse(name: str, contact: Any = None) -> InboundMessage:
    return InboundMessage.from_claim(claim(MESSAGES[name], contact), received_at=RECEIVED)


# (case, type, content class, text, button_reply_id)
EXPECTED: list[tuple[str, str, type, str | None, str | None]] = [
    ("text", "text", Text, "Oi, vocês abrem amanhã?", None),
    ("image_caption", "image", Media, "nota fiscal", None),
    ("audio_voice", "audio", Media, None, None),
    ("video", "video", Media, "vídeo", None),
    ("document", "document", Media, "boleto.pdf", None),
    ("sticker", "sticker", Media, None, None),
    ("location", "location", Location, "MASP, Av. Paulista, 1578", None),
    ("location_pin_only", "location", Location, "-23.561300,-46.656500", None),
    ("contacts", "contacts", Contacts, "Maria Souza", None),
    (
        "interactive_button_reply",
        "interactive",
        Interactive,
        "Avise-me",
        "notify_next_service_hour",
    ),
    ("interactive_list_reply", "interactive", Interactive, "Financeiro", None),
    ("interactive_nfm_reply", "interactive", Interactive, "Sent", None),
    ("interactive_nfm_reply_invalid_json", "interactive", Interactive, "Sent", None),
    ("interactive_nfm_reply_null_json", "interactive", Interactive, "Sent", None),
    ("button_template_quick_reply", "button", Button, "Quero retorno", "notify_next_service_hour"),
    ("reaction", "reaction", Reaction, "👍", None),
    ("reaction_removed", "reaction", Reaction, None, None),
    ("order", "order", Order, "2 item(s)", None),
    (
        "system_changed_number",
        "system",
        System,
        "User changed from 5511987654321 to 5511912345678",
        None,
    ),
    ("edit", "edit", Edit, "Oi, vocês abrem sábado?", None),
    ("revoke", "revoke", Revoke, None, None),
    ("unsupported_poll", "unsupported", Unsupported, None, None),
    ("unknown_legacy", "unsupported", Unsupported, None, None),
    ("interactive_without_object", "unsupported", Unsupported, None, None),
    ("interactive_payment_method", "unsupported", Unsupported, None, None),
    ("future_type", "unsupported", Unsupported, None, None),
]


@pytest.mark.parametrize(("case", "mtype", "part", "text", "button_id"), EXPECTED)
def test_every_documented_type_is_typed_and_summarised(
    case: str, mtype: str, part: type, text: str | None, button_id: str | None
) -> None:
    msg = parse(case)
    assert msg.type == mtype
    assert isinstance(msg.content, part)
    assert msg.text == text
    assert msg.button_reply_id == button_id
    assert msg.raw == MESSAGES[case]
    assert msg.meta_type == MESSAGES[case]["type"]


def test_cases_cover_every_hand_written_message() -> None:
    covered = {case for case, *_ in EXPECTED}
    extra = {
        "text_int_timestamp",
        "text_old_br_number",
        "text_bsuid_only",
        "text_placeholder_timestamp",
        "text_with_referral",
        "image_with_errors_no_id",
    }
    assert covered | extra == set(MESSAGES)


def test_unsupported_keeps_what_was_sent() -> None:
    assert parse("unsupported_poll").content == Unsupported(type="poll")
    assert parse("future_type").content == Unsupported(type="hologram")
    assert parse("interactive_without_object").content == Unsupported(type="interactive")
    errors = parse("unsupported_poll").errors
    assert [(e.code, e.details) for e in errors] == [
        (131051, "Message type is currently not supported.")
    ]


def test_flow_reply_json_is_parsed_defensively() -> None:
    def response(case: str) -> Any:
        content = parse(case).content
        assert isinstance(content, Interactive)
        assert content.nfm_reply is not None
        return content.nfm_reply.response()

    assert response("interactive_nfm_reply") == {"flow_token": "t-1", "rating": "5"}
    assert response("interactive_nfm_reply_invalid_json") is None
    assert response("interactive_nfm_reply_null_json") is None


def test_timestamp_string_or_int_is_utc_and_a_placeholder_falls_back_to_receipt() -> None:
    expected = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert parse("text").timestamp == expected
    assert parse("text_int_timestamp").timestamp == expected
    assert not parse("text").timestamp_estimated
    fallback = parse("text_placeholder_timestamp")
    assert fallback.timestamp == RECEIVED
    assert fallback.timestamp_estimated


def test_sender_is_the_wa_id_or_else_the_bsuid() -> None:
    msg = parse("text")
    assert (msg.wa_id, msg.user_id, msg.sender) == ("5511987654321", None, "5511987654321")
    bsuid = parse("text_bsuid_only")
    assert (bsuid.wa_id, bsuid.user_id, bsuid.sender) == (
        None,
        "BR.1234567890123456",
        "BR.1234567890123456",
    )


def test_profile_name_comes_from_the_matching_contact_only() -> None:
    ana = {"profile": {"name": "Ana"}, "wa_id": "5511987654321", "user_id": "BR.99"}
    msg = parse("text", ana)
    assert (msg.profile_name, msg.user_id) == ("Ana", "BR.99")
    other = {"profile": {"name": "Someone else"}, "wa_id": "16505551234"}
    assert parse("text", other).profile_name is None
    assert parse("text", {"wa_id": "5511987654321"}).profile_name is None  # no profile


def test_a_message_without_sender_takes_the_one_contact_of_its_change() -> None:
    message = {"id": "wamid.S", "timestamp": "1767261600", "type": "text", "text": {"body": "x"}}
    msg = InboundMessage.from_claim(claim(message, {"user_id": "BR.7", "profile": {"name": "Bia"}}))
    assert (msg.user_id, msg.profile_name) == ("BR.7", "Bia")


def test_missing_id_gets_the_claim_id_or_a_stable_synthetic_one() -> None:
    raw = claim(MESSAGES["image_with_errors_no_id"])
    assert InboundMessage.from_claim(raw, wamid="dl.abc").wamid == "dl.abc"
    first, again = InboundMessage.from_claim(raw), InboundMessage.from_claim(raw)
    assert first.wamid == again.wamid
    assert first.wamid.startswith("dl.")
    assert first.errors[0].code == 131052


def test_referral_and_context_are_typed() -> None:
    msg = parse("text_with_referral")
    assert msg.referral is not None
    assert msg.referral.ctwa_clid == "abc"
    reply = parse("interactive_button_reply")
    assert reply.context is not None
    assert reply.context.id == "wamid.OURS"


def test_system_messages_do_not_open_the_window() -> None:
    assert not parse("system_changed_number").opens_window
    assert parse("reaction").opens_window


# --- never raises -----------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
_types = st.sampled_from(
    [
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "unsupported",
        "unknown",
        "edit",
        "revoke",
        "poll",
        "",
    ]
)
_fields = st.sampled_from(
    [
        "from",
        "from_user_id",
        "id",
        "timestamp",
        "context",
        "referral",
        "errors",
        "text",
        "image",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "edit",
        "revoke",
        "unsupported",
        "identity",
    ]
)
message_like = st.builds(
    lambda mtype, fields: {"type": mtype, **fields},
    st.one_of(_types, json_values),
    st.dictionaries(_fields, json_values, max_size=8),
)
# Typed parts that are *almost* right: the right object with random field values.
_part_fields = st.dictionaries(
    st.sampled_from(
        [
            "body",
            "id",
            "caption",
            "latitude",
            "longitude",
            "type",
            "button_reply",
            "list_reply",
            "nfm_reply",
            "payload",
            "emoji",
            "product_items",
            "original_message_id",
            "message",
            "response_json",
            "title",
        ]
    ),
    json_values,
    max_size=6,
)
nearly_valid = st.builds(
    lambda mtype, part, sender: {"type": mtype, mtype: part, "from": sender, "id": "wamid.H"},
    _types,
    _part_fields,
    json_values,
)
claims = st.one_of(
    json_values,
    st.builds(claim, st.one_of(message_like, nearly_valid, json_values), json_values),
    st.dictionaries(st.text(max_size=20), json_values),
)


@settings(max_examples=400, deadline=None)
@given(claims)
def test_from_claim_never_raises_and_yields_a_storable_record(item: Any) -> None:
    msg = InboundMessage.from_claim(item, received_at=RECEIVED)
    assert msg.timestamp.tzinfo is not None
    assert msg.wamid
    assert (msg.type == "unsupported") == isinstance(msg.content, Unsupported)
    if msg.type != "unsupported":
        assert msg.type == msg.meta_type
    msg.model_dump_json()  # serialisable: what is stored from it is well-formed


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        json_values,
        st.builds(
            lambda s: {"phone_number_id": PNID, "status": s}, st.one_of(json_values, _part_fields)
        ),
    )
)
def test_status_from_claim_never_raises(item: Any) -> None:
    update = StatusUpdate.from_claim(item, claim_id="wamid.X:read", received_at=RECEIVED)
    assert update.id
    assert update.status in {"sent", "delivered", "read", "failed", "played", "other"}
    update.model_dump_json()


# --- statuses ---------------------------------------------------------------------------------


def test_status_fields_are_read() -> None:
    failed = StatusUpdate.from_claim({"phone_number_id": PNID, "status": STATUSES["failed"]})
    assert (failed.id, failed.status) == ("wamid.OUT.1", "failed")
    assert failed.timestamp == datetime.fromtimestamp(1767261605, tz=UTC)
    assert [(e.code, e.title, e.details) for e in failed.errors] == [
        (131047, "Re-engagement message", "More than 24 hours have passed")
    ]
    sent = StatusUpdate.from_claim({"phone_number_id": PNID, "status": STATUSES["sent"]})
    assert sent.pricing is not None
    assert sent.pricing.category == "service"
    legacy = StatusUpdate.from_claim({"status": STATUSES["deleted_legacy"]})
    assert (legacy.status, legacy.meta_status) == ("other", "deleted")
    bsuid = StatusUpdate.from_claim({"status": STATUSES["bsuid_recipient"]})
    assert (bsuid.recipient_id, bsuid.recipient_user_id) == (None, "BR.1234567890123456")


def test_status_without_id_takes_it_from_the_claim_id() -> None:
    item = {"phone_number_id": PNID, "status": {"status": "read", "timestamp": "1"}}
    assert StatusUpdate.from_claim(item, claim_id="wamid.Q:read").id == "wamid.Q"


# --- contact window ---------------------------------------------------------------------------


@given(
    last=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    offset=st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
)
def test_window_is_open_for_24_hours_after_the_last_message(
    last: datetime, offset: timedelta
) -> None:
    contact = Contact(phone_number_id=PNID, key="k", first_seen=last, last_inbound_at=last)
    assert contact.window_open(last + offset) == (offset < WINDOW)


def test_window_is_closed_without_any_message() -> None:
    contact = Contact(phone_number_id=PNID, key="k", first_seen=RECEIVED)
    assert not contact.window_open(RECEIVED)
