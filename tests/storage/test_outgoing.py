"""OutgoingStore: the one-way delivery state machine of the messages deskline sent."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.models import StatusUpdate
from storage import keys
from storage.outgoing import OutgoingStore

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}


def status(message_id: str, name: str, at: datetime = T0, **extra: Any) -> StatusUpdate:
    raw = {"id": message_id, "status": name, "timestamp": str(int(at.timestamp())), **extra}
    return StatusUpdate.from_claim({"phone_number_id": "1", "status": raw})


async def record(outgoing: OutgoingStore, message_id: str, at: datetime = T0) -> None:
    await outgoing.record_sent(
        message_id,
        phone_number_id="1",
        wa_id="5511987654321",
        kind="after_hours",
        natural_key=f"wamid.IN:{message_id}",
        body_type="interactive",
        sent_at=at,
    )


@pytest.fixture(name="outgoing")
def fixture_outgoing(redis: aioredis.Redis) -> OutgoingStore:
    return OutgoingStore(redis)


async def test_record_then_statuses_move_forward(outgoing: OutgoingStore) -> None:
    await record(outgoing, "m1")
    sent = await outgoing.get("m1")
    assert sent is not None
    assert sent.state == "accepted"
    assert sent.accepted_at == T0
    assert (sent.kind, sent.natural_key, sent.body_type) == (
        "after_hours",
        "wamid.IN:m1",
        "interactive",
    )
    for name, minute in (("sent", 1), ("delivered", 2), ("read", 3)):
        assert await outgoing.apply_status(status("m1", name, T0 + timedelta(minutes=minute))) == (
            "applied"
        )
    done = await outgoing.get("m1")
    assert done is not None
    assert done.state == "read"
    assert (done.sent_at, done.delivered_at, done.read_at) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=3),
    )


async def test_late_and_repeated_statuses_never_move_it_back(outgoing: OutgoingStore) -> None:
    await record(outgoing, "m1")
    await outgoing.apply_status(status("m1", "read", T0 + timedelta(minutes=3)))
    assert await outgoing.apply_status(status("m1", "delivered", T0 + timedelta(minutes=2))) == (
        "unchanged"
    )
    assert await outgoing.apply_status(status("m1", "sent", T0 + timedelta(minutes=1))) == (
        "unchanged"
    )
    assert await outgoing.apply_status(status("m1", "read", T0 + timedelta(minutes=9))) == (
        "unchanged"
    )
    msg = await outgoing.get("m1")
    assert msg is not None
    assert msg.state == "read"
    # The late `sent` still tells us when it was sent; `read` keeps its first time.
    assert msg.sent_at == T0 + timedelta(minutes=1)
    assert msg.read_at == T0 + timedelta(minutes=3)


async def test_read_implies_delivered_when_delivered_never_came(outgoing: OutgoingStore) -> None:
    await record(outgoing, "m1")
    await outgoing.apply_status(status("m1", "read", T0 + timedelta(minutes=3)))
    msg = await outgoing.get("m1")
    assert msg is not None
    assert msg.delivered_at == msg.read_at == T0 + timedelta(minutes=3)


async def test_failed_is_final_and_keeps_its_errors(outgoing: OutgoingStore) -> None:
    await record(outgoing, "m1")
    await outgoing.apply_status(status("m1", "sent"))
    errors = [
        {
            "code": 131047,
            "title": "Re-engagement message",
            "error_data": {"details": "24 hours passed"},
        }
    ]
    assert await outgoing.apply_status(status("m1", "failed", errors=errors)) == "applied"
    for name in ("delivered", "read", "failed"):
        assert await outgoing.apply_status(status("m1", name)) == "unchanged"
    msg = await outgoing.get("m1")
    assert msg is not None
    assert msg.state == "failed"
    assert msg.failed_at == T0
    assert [(e.code, e.title, e.details) for e in msg.errors] == [
        (131047, "Re-engagement message", "24 hours passed")
    ]


async def test_failed_after_delivered_is_ignored(outgoing: OutgoingStore) -> None:
    await record(outgoing, "m1")
    await outgoing.apply_status(status("m1", "delivered"))
    assert await outgoing.apply_status(status("m1", "failed")) == "unchanged"
    msg = await outgoing.get("m1")
    assert msg is not None
    assert msg.state == "delivered"
    assert msg.failed_at is None


async def test_status_before_the_record_is_kept_and_applies_when_it_comes(
    outgoing: OutgoingStore, redis: aioredis.Redis
) -> None:
    assert await outgoing.apply_status(status("m1", "delivered")) == "pending"
    assert await outgoing.get("m1") is None
    pending = await outgoing.get("m1", include_pending=True)
    assert pending is not None
    assert not pending.recorded
    assert pending.state == "delivered"
    assert await redis.ttl(keys.outgoing("m1")) <= keys.OUTGOING_PENDING_TTL_S
    await record(outgoing, "m1")
    msg = await outgoing.get("m1")
    assert msg is not None
    assert msg.recorded
    assert msg.state == "delivered"
    assert await redis.ttl(keys.outgoing("m1")) > keys.OUTGOING_PENDING_TTL_S


async def test_record_sent_is_idempotent(outgoing: OutgoingStore, redis: aioredis.Redis) -> None:
    await record(outgoing, "m1")
    snapshot = await redis.hgetall(keys.outgoing("m1"))
    await record(outgoing, "m1", at=T0 + timedelta(minutes=1))
    assert await redis.hgetall(keys.outgoing("m1")) == snapshot
    assert 0 < await redis.ttl(keys.outgoing("m1")) <= keys.OUTGOING_TTL_S


async def test_untracked_status_is_ignored(outgoing: OutgoingStore) -> None:
    assert await outgoing.apply_status(status("m1", "deleted")) == "ignored"
    assert await outgoing.get("m1", include_pending=True) is None


_statuses = st.lists(
    st.sampled_from(["sent", "delivered", "read", "played", "failed"]), min_size=1, max_size=8
)
_ids = itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=_statuses, record_at=st.integers(0, 8))
async def test_state_only_moves_forward_whatever_the_order(
    outgoing: OutgoingStore, sequence: list[str], record_at: int
) -> None:
    message_id = f"prop-{next(_ids)}"
    previous, failed = -1, False
    for i, name in enumerate(sequence):
        if i == record_at:
            await record(outgoing, message_id)
        await outgoing.apply_status(status(message_id, name, T0 + timedelta(seconds=i)))
        msg = await outgoing.get(message_id, include_pending=True)
        assert msg is not None
        if failed:
            assert msg.state == "failed"
        if msg.state == "failed":
            failed = True
        else:
            assert RANK[msg.state] >= previous
            previous = RANK[msg.state]
    await record(outgoing, message_id)
    final = await outgoing.get(message_id)
    assert final is not None
    if "failed" not in sequence:
        assert final.state == max(sequence, key=RANK.__getitem__)
    if {"delivered", "read", "played"} & set(sequence) and final.state != "failed":
        assert final.delivered_at is not None
