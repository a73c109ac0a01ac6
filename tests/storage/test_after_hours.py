"""AfterHoursStore against a real Redis: one row per contact and period, idempotent on the
wamid, whatever order the messages arrive in; 7 days and gone; callbacks opened once."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from storage import keys
from storage.after_hours import (
    AfterHoursStore,
    ContactInfo,
    RequestedReturn,
    row_id,
)

PNID = "1000"
T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
NEXT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PERIOD = NEXT.isoformat()
WHO = ContactInfo(
    contact="5511987654321",
    wa_id="5511987654321",
    user_id=None,
    name="Ana",
    phone="+5511987654321",
)
RID = row_id(PNID, WHO.contact, PERIOD)


@pytest.fixture(name="store")
def fixture_store(redis: aioredis.Redis) -> AfterHoursStore:
    return AfterHoursStore(redis)


async def record(
    store: AfterHoursStore,
    wamid: str,
    at: datetime,
    *,
    now: datetime | None = None,
    requested: RequestedReturn = "no",
    rid: str = RID,
    who: ContactInfo = WHO,
) -> bool:
    recorded = await store.record_contact(
        PNID,
        rid,
        who,
        wamid=wamid,
        at=at,
        now=now or at,
        period=PERIOD,
        next_opening=NEXT,
        requested_return=requested,
    )
    return recorded.stored


def test_row_ids_are_opaque_and_stable() -> None:
    assert row_id(PNID, WHO.contact, PERIOD) == RID
    assert row_id(PNID, WHO.contact, "never") != RID
    assert row_id("2000", WHO.contact, PERIOD) != RID
    assert WHO.contact not in RID


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
async def test_messages_in_any_order_make_one_row_spanning_them(
    store: AfterHoursStore, order: tuple[int, ...]
) -> None:
    times = [T0, T0 + timedelta(minutes=30), T0 + timedelta(hours=4)]
    for i in order:
        await record(store, f"wamid.{i}", times[i], now=times[-1])
    [row] = await store.rows(PNID, times[-1])
    assert row.messages == 3
    assert row.first_ms == int(times[0].timestamp() * 1000)
    assert row.last_ms == int(times[-1].timestamp() * 1000)


async def test_a_wamid_is_counted_once(store: AfterHoursStore) -> None:
    for _ in range(3):
        await record(store, "wamid.same", T0)
    row = await store.get(PNID, RID, T0)
    assert row is not None
    assert row.messages == 1


@pytest.mark.parametrize("sequence", list(itertools.product(("N/D", "no", "yes"), repeat=3)))
async def test_requested_return_only_rises(
    store: AfterHoursStore, sequence: tuple[RequestedReturn, ...]
) -> None:
    for i, requested in enumerate(sequence):
        await record(store, f"wamid.{i}", T0 + timedelta(minutes=i), requested=requested)
    row = await store.get(PNID, RID, T0 + timedelta(minutes=5))
    assert row is not None
    rank = ("N/D", "no", "yes")
    assert row.requested_return == max(sequence, key=rank.index)


async def test_the_latest_name_wins_and_an_absent_one_keeps_the_known(
    store: AfterHoursStore,
) -> None:
    nameless = ContactInfo(WHO.contact, WHO.wa_id, None, None, WHO.phone)
    await record(store, "wamid.1", T0, who=nameless)
    row = await store.get(PNID, RID, T0)
    assert row is not None
    assert row.view(UTC).name == "(No name)"
    await record(store, "wamid.2", T0 + timedelta(minutes=1), who=WHO)
    await record(store, "wamid.3", T0 + timedelta(minutes=2), who=nameless)
    row = await store.get(PNID, RID, T0 + timedelta(minutes=2))
    assert row is not None
    assert row.name == "Ana"


async def test_rows_live_seven_days(store: AfterHoursStore, redis: aioredis.Redis) -> None:
    assert await record(store, "wamid.1", T0)
    ttl_ms = await redis.pttl(keys.after_hours_row(PNID, RID))
    assert 0 < ttl_ms <= keys.AFTER_HOURS_KEEP_S * 1000
    assert await redis.pttl(keys.after_hours_seen(PNID, RID)) == pytest.approx(ttl_ms, abs=1000)
    just_before = T0 + timedelta(days=7) - timedelta(seconds=1)
    assert [r.id for r in await store.rows(PNID, just_before)] == [RID]
    eight_days = T0 + timedelta(days=8)
    assert await store.rows(PNID, eight_days) == []
    assert await store.get(PNID, RID, eight_days) is None


async def test_a_message_dated_eight_days_ago_stores_nothing(
    store: AfterHoursStore, redis: aioredis.Redis
) -> None:
    now = T0 + timedelta(days=8)
    assert not await record(store, "wamid.old", T0, now=now)
    assert await redis.exists(keys.after_hours_row(PNID, RID)) == 0
    assert await redis.exists(keys.after_hours_seen(PNID, RID)) == 0
    assert await store.rows(PNID, now) == []


async def test_writes_purge_expired_members_from_the_index(
    store: AfterHoursStore, redis: aioredis.Redis
) -> None:
    await record(store, "wamid.1", T0)
    later = T0 + timedelta(days=8)
    other = row_id(PNID, WHO.contact, "later")
    await record(store, "wamid.2", later, rid=other)
    assert await redis.zrange(keys.after_hours_rows(PNID), 0, -1) == [other.encode()]


async def test_a_callback_is_created_once_and_opened_once(store: AfterHoursStore) -> None:
    await record(store, "wamid.1", T0, requested="yes")
    assert await store.request_callback(PNID, RID, WHO, period=PERIOD, due=NEXT, now=T0)
    assert not await store.request_callback(
        PNID, RID, WHO, period=PERIOD, due=NEXT + timedelta(days=1), now=T0
    )
    callback = await store.callback(PNID, RID)
    assert callback is not None
    assert callback.due == NEXT
    assert callback.natural_key == f"callback:{PNID}:{WHO.contact}:{PERIOD}"
    assert await store.pending_callbacks(PNID) == [RID]
    assert await store.mark_callback_opened(PNID, RID, at=NEXT, ticket_id=None)
    assert not await store.mark_callback_opened(PNID, RID, at=NEXT, ticket_id=None)
    assert not await store.set_callback_due(PNID, RID, NEXT + timedelta(days=1), NEXT)
    assert await store.pending_callbacks(PNID) == []
    row = await store.get(PNID, RID, NEXT)
    assert row is not None
    assert row.callback == "opened"


async def test_a_callback_outliving_its_row_does_not_resurrect_it(
    store: AfterHoursStore, redis: aioredis.Redis
) -> None:
    # No row (expired): the callback is still recorded, and the row is not recreated without
    # a TTL by the mirror writes.
    assert await store.request_callback(PNID, RID, WHO, period=PERIOD, due=NEXT, now=T0)
    assert await store.mark_callback_opened(PNID, RID, at=NEXT, ticket_id="T1")
    assert await redis.exists(keys.after_hours_row(PNID, RID)) == 0
    await store.mark_announced(PNID, RID)
    assert await redis.exists(keys.after_hours_row(PNID, RID)) == 0


async def test_active_message_mark_is_per_contact_and_template(store: AfterHoursStore) -> None:
    assert await store.claim_active_message(PNID, WHO.contact, "t1", "k1", force=False)
    assert not await store.claim_active_message(PNID, WHO.contact, "t1", "k2", force=False)
    assert await store.claim_active_message(PNID, WHO.contact, "t2", "k3", force=False)
    assert await store.claim_active_message(PNID, WHO.contact, "t1", "k4", force=True)
    # Releasing someone else's claim does nothing; one's own frees the template.
    await store.release_active_message(PNID, WHO.contact, "t1", "k1")
    assert not await store.claim_active_message(PNID, WHO.contact, "t1", "k5", force=False)
    await store.release_active_message(PNID, WHO.contact, "t1", "k4")
    assert await store.claim_active_message(PNID, WHO.contact, "t1", "k6", force=False)
