"""ContactsStore: one contact per customer and number, idempotent, order-safe, 24-hour window."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import InvalidInputError
from bot.domain.models import InboundMessage
from storage import keys
from storage.contacts import ContactsStore

PNID = "106540352242922"
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
_ids = itertools.count()


def inbound(
    *,
    at: datetime = T0,
    wa_id: str | None = "5511987654321",
    user_id: str | None = None,
    name: str | None = None,
    mtype: str = "text",
    pnid: str = PNID,
    wamid: str | None = None,
) -> InboundMessage:
    message: dict[str, Any] = {
        "id": wamid or f"wamid.C{next(_ids)}",
        "timestamp": str(int(at.timestamp())),
        "type": mtype,
    }
    if wa_id is not None:
        message["from"] = wa_id
    if user_id is not None:
        message["from_user_id"] = user_id
    if mtype == "text":
        message["text"] = {"body": "oi"}
    else:
        message["system"] = {"type": "customer_identity_changed", "body": "changed"}
    contact: dict[str, Any] = {"wa_id": wa_id or "", "user_id": user_id}
    if name:
        contact["profile"] = {"name": name}
    item = {"phone_number_id": pnid, "contact": contact, "message": message}
    return InboundMessage.from_claim(item)


@pytest.fixture(name="contacts")
def fixture_contacts(redis: aioredis.Redis) -> ContactsStore:
    return ContactsStore(redis)


async def test_first_message_creates_the_contact(contacts: ContactsStore) -> None:
    contact = await contacts.upsert_from_inbound(inbound(name="Ana"))
    assert contact.key == "5511987654321"
    assert (contact.name, contact.wa_id, contact.phone) == (
        "Ana",
        "5511987654321",
        "+5511987654321",
    )
    assert contact.first_seen == contact.last_inbound_at == contact.last_interaction_at == T0
    assert (contact.email, contact.city, contact.document, contact.extra) == (None, None, None, {})
    assert await contacts.get(PNID, "5511987654321") == contact


async def test_same_message_twice_changes_nothing(
    contacts: ContactsStore, redis: aioredis.Redis
) -> None:
    msg = inbound(name="Ana", user_id="BR.1")
    first = await contacts.upsert_from_inbound(msg)
    snapshot = await redis.hgetall(keys.contact(PNID, first.key))
    again = await contacts.upsert_from_inbound(msg)
    assert again == first
    assert await redis.hgetall(keys.contact(PNID, first.key)) == snapshot


async def test_ninth_digit_spellings_are_one_contact(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(wa_id="551187654321", name="Ana"))
    later = await contacts.upsert_from_inbound(inbound(wa_id="5511987654321", at=T0 + timedelta(1)))
    assert later.key == "5511987654321"
    assert later.wa_id == "5511987654321"  # as last seen
    assert later.name == "Ana"  # kept: the later message had no profile
    for spelling in ("551187654321", "+55 11 98765-4321", "5511987654321"):
        found = await contacts.get(PNID, spelling)
        assert found is not None
        assert found.key == later.key


async def test_new_profile_name_replaces_the_old_one(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(name="Ana"))
    contact = await contacts.upsert_from_inbound(inbound(name="Ana Paula", at=T0 + timedelta(1)))
    assert contact.name == "Ana Paula"


async def test_late_older_message_moves_nothing_back(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(at=T0, name="Ana Paula"))
    late = await contacts.upsert_from_inbound(inbound(at=T0 - timedelta(hours=5), name="Ana"))
    assert late.last_inbound_at == T0
    assert late.name == "Ana Paula"
    assert late.first_seen == T0 - timedelta(hours=5)


async def test_late_older_message_fills_a_missing_name(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(at=T0))
    late = await contacts.upsert_from_inbound(inbound(at=T0 - timedelta(hours=1), name="Ana"))
    assert late.name == "Ana"


async def test_system_message_does_not_open_the_window(contacts: ContactsStore) -> None:
    contact = await contacts.upsert_from_inbound(inbound(mtype="system"))
    assert contact.last_inbound_at is None
    assert not await contacts.window_open(PNID, "5511987654321", T0)


async def test_window_is_24_hours_from_the_meta_timestamp(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(at=T0, wa_id="551187654321"))
    assert await contacts.window_open(PNID, "5511987654321", T0 + timedelta(hours=23, minutes=59))
    assert not await contacts.window_open(PNID, "5511987654321", T0 + timedelta(hours=24))
    assert not await contacts.window_open(PNID, "5511900000000", T0)  # unknown contact


async def test_bsuid_only_customer_is_a_contact_of_its_own(contacts: ContactsStore) -> None:
    contact = await contacts.upsert_from_inbound(inbound(wa_id=None, user_id="BR.77", name="Bia"))
    assert (contact.key, contact.user_id, contact.wa_id, contact.phone) == (
        "u:BR.77",
        "BR.77",
        None,
        None,
    )
    assert await contacts.get(PNID, "BR.77") == contact
    assert await contacts.get(PNID, "u:BR.77") == contact


async def test_customer_who_hides_their_number_stays_the_same_contact(
    contacts: ContactsStore,
) -> None:
    both = await contacts.upsert_from_inbound(inbound(user_id="BR.9", name="Caio"))
    assert both.key == "5511987654321"
    key = await contacts.key_for(PNID, None, "BR.9")
    assert key == "5511987654321"
    hidden = await contacts.upsert_from_inbound(
        inbound(wa_id=None, user_id="BR.9", at=T0 + timedelta(1)), key=key
    )
    assert hidden.key == both.key
    assert hidden.wa_id == "5511987654321"  # kept: the newer message had none
    assert hidden.last_inbound_at == T0 + timedelta(1)


async def test_contacts_are_per_number(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(name="Ana"))
    assert await contacts.get("another-number", "5511987654321") is None


async def test_message_without_sender_is_refused(contacts: ContactsStore) -> None:
    with pytest.raises(InvalidInputError):
        await contacts.upsert_from_inbound(inbound(wa_id=None))


async def test_outbound_moves_last_interaction_forward_only(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(at=T0))
    assert await contacts.record_outbound(PNID, "5511987654321", T0 + timedelta(minutes=5))
    assert await contacts.record_outbound(PNID, "5511987654321", T0 - timedelta(minutes=5))
    contact = await contacts.get(PNID, "5511987654321")
    assert contact is not None
    assert contact.last_interaction_at == T0 + timedelta(minutes=5)
    assert contact.last_inbound_at == T0
    assert not await contacts.record_outbound(PNID, "5511900000000", T0)  # no such contact


async def test_recent_lists_by_last_interaction(contacts: ContactsStore) -> None:
    await contacts.upsert_from_inbound(inbound(wa_id="5511911111111", at=T0))
    await contacts.upsert_from_inbound(inbound(wa_id="5511922222222", at=T0 + timedelta(1)))
    await contacts.upsert_from_inbound(inbound(wa_id="5511933333333", at=T0 - timedelta(1)))
    assert [c.key for c in await contacts.recent(PNID)] == [
        "5511922222222",
        "5511911111111",
        "5511933333333",
    ]


_names = st.one_of(st.none(), st.sampled_from(["Ana", "Bia", "Caio"]))
_events = st.lists(
    st.tuples(st.integers(0, 10_000), _names, st.sampled_from(["551187654321", "5511987654321"])),
    min_size=1,
    max_size=6,
    unique_by=lambda e: e[0],
)
_pnids = itertools.count()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=_events, order=st.randoms())
async def test_processing_order_does_not_change_the_outcome(
    contacts: ContactsStore, events: list[tuple[int, str | None, str]], order: Any
) -> None:
    pnid = f"prop-{next(_pnids)}"  # hypothesis reuses the fixture: a fresh number per example
    messages = [
        inbound(at=T0 + timedelta(minutes=m), name=n, wa_id=w, pnid=pnid) for m, n, w in events
    ]
    shuffled = list(messages)
    order.shuffle(shuffled)
    for msg in shuffled:
        contact = await contacts.upsert_from_inbound(msg)
    newest = max(messages, key=lambda m: m.timestamp)
    assert contact.last_inbound_at == newest.timestamp
    assert contact.first_seen == min(m.timestamp for m in messages)
    assert contact.wa_id == newest.wa_id
    if newest.profile_name:
        assert contact.name == newest.profile_name
    elif any(m.profile_name for m in messages):
        assert contact.name is not None
