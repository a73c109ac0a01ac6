"""The contact search index: what the index answers equals what the rules say, it follows
names as they change, and it never keeps a stale entry."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storage.contacts
from bot.domain import phones
from bot.domain.contacts import ContactFilter, Cursor, Query, fold, name_tokens, phone_tokens
from bot.domain.contacts_import import ImportRow
from bot.domain.models import Contact, InboundMessage
from storage import keys
from storage.contacts import ContactsStore
from storage.search import CANDIDATES_MAX

PNID = "106540352242922"
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
_ids = itertools.count()
_numbers = itertools.count()


def inbound(wa_id: str, name: str | None, at: datetime = T0, pnid: str = PNID) -> InboundMessage:
    contact: dict[str, Any] = {"wa_id": wa_id}
    if name is not None:
        contact["profile"] = {"name": name}
    message = {
        "id": f"wamid.X{next(_ids)}",
        "from": wa_id,
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": "oi"},
    }
    return InboundMessage.from_claim(
        {"phone_number_id": pnid, "contact": contact, "message": message}
    )


def row(wa_id: str, name: str | None = None, **fields: Any) -> ImportRow:
    canonical = phones.contact_key(wa_id)
    return ImportRow(
        row=2, key=canonical, phone="+" + canonical, wa_id=canonical, name=name, **fields
    )


@pytest.fixture(name="contacts")
def fixture_contacts(redis: aioredis.Redis) -> ContactsStore:
    return ContactsStore(redis)


async def index_of(redis: aioredis.Redis, pnid: str = PNID) -> set[str]:
    return {m.decode() for m in await redis.zrange(keys.contact_index(pnid), 0, -1)}


def expected_index(name: str | None, wa_id: str) -> set[str]:
    key = phones.contact_key(wa_id)
    return {f"{t}\x00{key}" for t in name_tokens(name) + phone_tokens(wa_id)}


# --- the pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [("João", "joao"), ("ÇAÇÃO", "cacao"), ("Ærø", "ærø"), ("Straße", "strasse"), ("ﬁ", "fi")],
)
def test_fold_drops_case_and_accents(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_a_query_is_a_phone_only_when_it_is_digits() -> None:
    for typed in ("+55 (11) 98765-4321", "11 8765-4321", "(011) 98765.4321"):
        query = Query.parse(typed)
        assert query is not None
        assert query.kind == "phone"
        assert "#11987654321" in query.prefixes  # the form the index keeps
    assert Query.parse("123") == Query("name", ("123",))
    assert Query.parse("Ana 2") == Query("name", ("ana", "2"))
    assert Query.parse("Maria da Silva") == Query("name", ("maria", "silva"))
    assert Query.parse("da") == Query("name", ("da",))
    assert Query.parse(" - ") is None


_br_mobile = st.builds(
    lambda area, rest: f"55{area}9{rest}",
    st.sampled_from(["11", "21", "31", "47", "61", "85", "99"]),
    st.from_regex(r"[6-9][0-9]{7}", fullmatch=True),
)


@given(_br_mobile)
def test_every_spelling_of_a_brazilian_mobile_matches_it(wa_id: str) -> None:
    area, subscriber = wa_id[2:4], wa_id[4:]
    old = subscriber[1:]
    spellings = [
        wa_id,
        "+" + wa_id,
        f"+55 ({area}) {subscriber[:5]}-{subscriber[5:]}",
        f"+55 {area} {old[:4]}-{old[4:]}",
        f"{area} {subscriber}",
        f"0{area} {old}",
        subscriber,
        old,
    ]
    stored = Contact(phone_number_id=PNID, key=wa_id, phone="+" + wa_id, first_seen=T0)
    for spelling in spellings:
        query = Query.parse(spelling)
        assert query is not None
        assert query.kind == "phone"
        assert query.matches(stored), spelling


# --- the index --------------------------------------------------------------------------------

_name_words = st.sampled_from(
    [
        "João",
        "joão",
        "Joana",
        "Silva",
        "SILVÉRIO",
        "Ana",
        "ana-maria",
        "Zé",
        "Çelik",
        "d'Ávila",
        "3º",
    ]
)
_names = st.lists(_name_words, min_size=0, max_size=3).map(lambda ws: " ".join(ws) or None)
_queries = st.lists(
    _name_words.map(lambda w: fold(w)[: max(1, len(w) // 2)]), min_size=1, max_size=2
).map(" ".join)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(_names, min_size=1, max_size=6), query=_queries)
async def test_the_index_answers_exactly_what_the_rules_say(
    contacts: ContactsStore, names: list[str | None], query: str
) -> None:
    pnid = f"p{next(_numbers)}"  # a fresh number per example: no flush needed
    stored = []
    for i, name in enumerate(names):
        stored.append(
            await contacts.upsert_from_inbound(inbound(f"55119876500{i:02d}", name, pnid=pnid))
        )
    parsed = Query.parse(query)
    assert parsed is not None
    result = await contacts.search([pnid], parsed, limit=50)
    assert {c.key for c in result.contacts} == {c.key for c in stored if parsed.matches(c)}


async def test_renaming_leaves_no_stale_entries(
    contacts: ContactsStore, redis: aioredis.Redis
) -> None:
    wa = "5511987654321"
    await contacts.upsert_from_inbound(inbound(wa, "Maria Clara", T0))
    assert await index_of(redis) == expected_index("Maria Clara", wa)
    await contacts.upsert_from_inbound(inbound(wa, "Joana", T0 + timedelta(minutes=1)))
    assert await index_of(redis) == expected_index("Joana", wa)
    # An older message with the old name changes neither the name nor the index.
    await contacts.upsert_from_inbound(inbound(wa, "Maria Clara", T0 - timedelta(minutes=1)))
    assert await index_of(redis) == expected_index("Joana", wa)
    # An import renames too; a message without a profile name keeps it.
    await contacts.import_rows(PNID, [row(wa, "Joana D'Arc")], at=T0)
    await contacts.upsert_from_inbound(inbound(wa, None, T0 + timedelta(minutes=2)))
    assert await index_of(redis) == expected_index("Joana D'Arc", wa)
    result = await contacts.search([PNID], Query("name", ("arc",)), limit=5)
    assert [c.name for c in result.contacts] == ["Joana D'Arc"]


async def test_rebuilding_the_index_restores_it(
    contacts: ContactsStore, redis: aioredis.Redis
) -> None:
    await contacts.upsert_from_inbound(inbound("5511987654321", "Ana Lima"))
    await contacts.import_rows(PNID, [row("5521912345678", "Bia")], at=T0)
    before = await index_of(redis)
    # As if the contacts had been stored before the index existed.
    await redis.delete(keys.contact_index(PNID))
    for key in ("5511987654321", "5521912345678"):
        await redis.hdel(keys.contact(PNID, key), "ixn")
    assert await contacts.rebuild_index(PNID) == 2
    assert await index_of(redis) == before
    assert await contacts.rebuild_index(PNID) == 2
    assert await index_of(redis) == before


async def test_import_keeps_what_the_file_leaves_empty(
    contacts: ContactsStore, redis: aioredis.Redis
) -> None:
    wa = "5511987654321"
    await contacts.upsert_from_inbound(inbound(wa, "Ana", T0))
    counts = await contacts.import_rows(
        PNID, [row(wa, email="a@b.co", extra={"plano": "ouro"})], at=T0 + timedelta(days=1)
    )
    assert (counts.imported, counts.updated, counts.unchanged) == (0, 1, 0)
    contact = await contacts.get(PNID, wa)
    assert contact is not None
    assert (contact.name, contact.email, contact.extra) == ("Ana", "a@b.co", {"plano": "ouro"})
    assert (contact.first_seen, contact.last_inbound_at) == (T0, T0)
    # The recency order still follows the message, not the import.
    assert await redis.zscore(keys.contacts_recent(PNID), wa) == T0.timestamp() * 1000


async def test_a_one_letter_prefix_on_a_big_number_is_capped_and_says_so(
    contacts: ContactsStore,
) -> None:
    rows = [row(f"5511900{i:06d}", f"Ana {i}") for i in range(CANDIDATES_MAX + 5)]
    counts = await contacts.import_rows(PNID, rows, at=T0)
    assert counts.imported == len(rows)
    result = await contacts.search([PNID], Query("name", ("a",)), limit=10)
    assert result.truncated
    assert len(result.contacts) == 10
    result = await contacts.search([PNID], Query("name", ("ana", "1004")), limit=10)
    assert [c.name for c in result.contacts] == ["Ana 1004"]


async def test_listing_with_a_filter_scans_in_bounded_steps_and_resumes(
    contacts: ContactsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        await contacts.upsert_from_inbound(
            inbound(f"55119800000{i:02d}", f"C{i}", T0 - timedelta(minutes=i))
        )
    await contacts.import_rows(
        PNID, [row(f"55119800000{i:02d}", city="Recife") for i in (3, 17, 29)], at=T0
    )
    where = ContactFilter(city="recife")
    found, cursor = await contacts.page(PNID, where, None, limit=2)
    assert [c.name for c in found] == ["C3", "C17"]
    assert cursor is not None
    found, cursor = await contacts.page(PNID, where, cursor, limit=2)
    assert [c.name for c in found] == ["C29"]
    assert cursor is None
    # With a scan budget of 4 contacts per call, pages may be empty but the walk resumes.
    monkeypatch.setattr(storage.contacts, "SCAN_MAX", 4)
    pages: list[list[str]] = []
    cursor = None
    while True:
        found, cursor = await contacts.page(PNID, where, cursor, limit=2)
        pages.append([c.name or "" for c in found])
        if cursor is None:
            break
    assert [n for p in pages for n in p] == ["C3", "C17", "C29"]
    assert len(pages) == 8  # 30 contacts, 4 per call
    assert [] in pages
    # A cursor from a page of another filter still lands inside the order.
    found, _ = await contacts.page(
        PNID, ContactFilter(), Cursor(int((T0 - timedelta(minutes=28)).timestamp() * 1000), 0), 5
    )
    assert [c.name for c in found] == ["C28", "C29"]
