"""TimelineStore: ordered by Meta's timestamp, idempotent on the id, 90 days, compact entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.domain.models import InboundMessage
from storage import keys
from storage.timeline import TEXT_MAX, TimelineStore

PNID = "106540352242922"
T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
WA = "5511987654321"


def inbound(
    wamid: str, at: datetime, text: str = "oi", wa_id: str | None = WA, **extra: Any
) -> InboundMessage:
    message: dict[str, Any] = {
        "id": wamid,
        "timestamp": str(int(at.timestamp())),
        "type": "text",
        "text": {"body": text},
        **extra,
    }
    if wa_id is not None:
        message["from"] = wa_id
    return InboundMessage.from_claim({"phone_number_id": PNID, "message": message})


@pytest.fixture(name="timeline")
def fixture_timeline(redis: aioredis.Redis) -> TimelineStore:
    return TimelineStore(redis)


async def test_entries_are_ordered_by_meta_timestamp_not_arrival(timeline: TimelineStore) -> None:
    await timeline.add_inbound(inbound("wamid.2", T0 + timedelta(minutes=2), "second"))
    await timeline.add_outbound(
        PNID, WA, "wamid.OUT", "after_hours", "Voltamos às 9h", T0 + timedelta(minutes=3)
    )
    await timeline.add_inbound(inbound("wamid.1", T0 + timedelta(minutes=1), "first"))
    entries = await timeline.list(PNID, WA)
    assert [(e.id, e.direction, e.text) for e in entries] == [
        ("wamid.1", "in", "first"),
        ("wamid.2", "in", "second"),
        ("wamid.OUT", "out", "Voltamos às 9h"),
    ]
    assert entries[0].at == T0 + timedelta(minutes=1)
    assert (entries[0].type, entries[2].kind) == ("text", "after_hours")


async def test_same_message_twice_is_one_entry(timeline: TimelineStore) -> None:
    msg = inbound("wamid.1", T0)
    assert await timeline.add_inbound(msg) is True
    assert await timeline.add_inbound(msg) is False
    assert await timeline.add_outbound(PNID, WA, "wamid.O", "agent", "x", T0) is True
    assert await timeline.add_outbound(PNID, WA, "wamid.O", "agent", "x", T0) is False
    assert [e.id for e in await timeline.list(PNID, WA)] == ["wamid.1", "wamid.O"]


async def test_ninth_digit_spellings_share_a_timeline(timeline: TimelineStore) -> None:
    await timeline.add_inbound(inbound("wamid.1", T0, wa_id="551187654321"))
    await timeline.add_inbound(inbound("wamid.2", T0 + timedelta(1), wa_id="5511987654321"))
    assert len(await timeline.list(PNID, "+55 11 8765-4321")) == 2


async def test_entries_older_than_90_days_before_the_newest_are_trimmed(
    timeline: TimelineStore, redis: aioredis.Redis
) -> None:
    await timeline.add_inbound(inbound("wamid.old", T0))
    await timeline.add_inbound(inbound("wamid.mid", T0 + timedelta(days=60)))
    await timeline.add_inbound(inbound("wamid.new", T0 + timedelta(days=91)))
    assert [e.id for e in await timeline.list(PNID, WA)] == ["wamid.mid", "wamid.new"]
    assert await redis.hexists(keys.timeline_entries(PNID, WA), "wamid.old") == 0
    # A late message already past the retention is not kept.
    assert await timeline.add_inbound(inbound("wamid.ancient", T0 - timedelta(days=1))) is False
    assert [e.id for e in await timeline.list(PNID, WA)] == ["wamid.mid", "wamid.new"]


async def test_a_bogus_future_timestamp_does_not_erase_the_timeline(
    timeline: TimelineStore,
) -> None:
    now = datetime.now(UTC)
    await timeline.add_inbound(inbound("wamid.today", now))
    await timeline.add_inbound(inbound("wamid.future", now + timedelta(days=400)))
    assert {e.id for e in await timeline.list(PNID, WA)} == {"wamid.today", "wamid.future"}


async def test_idle_timeline_expires_90_days_after_its_last_entry(
    timeline: TimelineStore, redis: aioredis.Redis
) -> None:
    await timeline.add_inbound(inbound("wamid.1", T0))
    for key in (keys.timeline(PNID, WA), keys.timeline_entries(PNID, WA)):
        ttl = await redis.ttl(key)
        assert keys.TIMELINE_TTL_S - 5 <= ttl <= keys.TIMELINE_TTL_S


async def test_list_since_and_limit_give_the_latest_entries_oldest_first(
    timeline: TimelineStore,
) -> None:
    for i in range(10):
        await timeline.add_inbound(inbound(f"wamid.{i}", T0 + timedelta(minutes=i)))
    latest = await timeline.list(PNID, WA, limit=3)
    assert [e.id for e in latest] == ["wamid.7", "wamid.8", "wamid.9"]
    since = await timeline.list(PNID, WA, since=T0 + timedelta(minutes=8))
    assert [e.id for e in since] == ["wamid.8", "wamid.9"]
    assert await timeline.list(PNID, "5511900000000") == []


async def test_entry_is_compact_and_text_is_capped(
    timeline: TimelineStore, redis: aioredis.Redis
) -> None:
    await timeline.add_inbound(inbound("wamid.long", T0, text="a" * 10_000))
    raw = await redis.hget(keys.timeline_entries(PNID, WA), "wamid.long")
    assert len(raw) < TEXT_MAX + 40
    await timeline.add_inbound(inbound("wamid.short", T0, text="oi"))
    short = await redis.hget(keys.timeline_entries(PNID, WA), "wamid.short")
    assert len(short) < 40  # no raw payload, no repeated ids


async def test_button_reply_id_is_kept(timeline: TimelineStore) -> None:
    message = {
        "from": WA,
        "id": "wamid.B",
        "timestamp": str(int(T0.timestamp())),
        "type": "interactive",
        "interactive": {
            "type": "button_reply",
            "button_reply": {"id": "notify_next_service_hour", "title": "Avise-me"},
        },
    }
    await timeline.add_inbound(
        InboundMessage.from_claim({"phone_number_id": PNID, "message": message})
    )
    [entry] = await timeline.list(PNID, WA)
    assert (entry.type, entry.text) == ("interactive", "Avise-me")
    assert entry.button_reply_id == "notify_next_service_hour"


async def test_message_without_sender_is_not_stored(timeline: TimelineStore) -> None:
    assert await timeline.add_inbound(inbound("wamid.X", T0, wa_id=None)) is False
