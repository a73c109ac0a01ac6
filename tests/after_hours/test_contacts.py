"""The after-hours list end to end: signed webhooks in, burst worker, `GET after-hours-contacts`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from arq.connections import ArqRedis

from bot.domain.actions import LogAfterHoursContact, Subject
from bot.domain.clock import FixedClock
from bot.domain.decide import NOTIFY_BUTTON_ID
from bot.runtime import queue
from storage import Stores
from storage.events import START
from tests.after_hours.conftest import (
    ADMIN,
    CONTACTS_URL,
    CUSTOMER,
    MON_20,
    OTHER_PNID,
    PNID,
    TUE_09,
    customer_writes,
    put_agent,
    rows,
    setup_number,
)

Work = Callable[[], Awaitable[int]]


async def test_three_messages_in_one_night_make_one_row(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    for minutes, wamid in ((0, "wamid.A"), (30, "wamid.B"), (240, "wamid.C")):
        at = MON_20 + timedelta(minutes=minutes)
        clock.at = at + timedelta(seconds=5)
        await customer_writes(client, at, wamid=wamid)
        await work()
    [row] = await rows(client)
    assert row["contacted_at"] == "2026-11-30T20:00:00-03:00"
    assert row["last_message_at"] == "2026-12-01T00:00:00-03:00"
    assert row["messages"] == 3
    assert row["name"] == "Ana"
    assert row["phone"] == "+" + CUSTOMER
    assert row["wa_id"] == CUSTOMER
    assert row["requested_return"] == "no"
    assert row["message_sent"] is False
    assert row["next_opening"] == "2026-12-01T09:00:00-03:00"
    assert len(row["id"]) == 20
    assert CUSTOMER not in row["id"]


async def test_the_next_night_is_a_new_row_newest_first(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.MON")
    await work()
    tue_20 = MON_20 + timedelta(days=1)
    clock.at = tue_20 + timedelta(seconds=5)
    await customer_writes(client, tue_20, wamid="wamid.TUE")
    await work()
    assert [r["contacted_at"] for r in await rows(client)] == [
        "2026-12-01T20:00:00-03:00",
        "2026-11-30T20:00:00-03:00",
    ]


async def test_notify_button_sets_yes(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.N1")
    await work()
    assert [r["requested_return"] for r in await rows(client)] == ["no"]
    tap = MON_20 + timedelta(minutes=2)
    clock.at = tap + timedelta(seconds=5)
    await customer_writes(client, tap, wamid="wamid.N2", text="Notify me", button=NOTIFY_BUTTON_ID)
    await work()
    [row] = await rows(client)
    assert row["requested_return"] == "yes"
    assert row["messages"] == 2
    assert row["callback_status"] == "scheduled"
    assert row["callback_at"] == "2026-12-01T09:00:00-03:00"
    # A later plain message of the same night does not take the "yes" back.
    later = MON_20 + timedelta(minutes=10)
    clock.at = later + timedelta(seconds=5)
    await customer_writes(client, later, wamid="wamid.N3")
    await work()
    assert [r["requested_return"] for r in await rows(client)] == ["yes"]


async def test_notify_option_off_is_not_available(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client, after_hours={"notify_next_service_hour": False})
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.OFF", name=None)
    await work()
    [row] = await rows(client)
    assert row["requested_return"] == "N/D"
    assert row["name"] == "(No name)"


async def test_a_row_disappears_after_seven_days(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.OLD")
    await work()
    clock.at = MON_20 + timedelta(days=7) - timedelta(minutes=1)
    assert len(await rows(client)) == 1
    clock.at = MON_20 + timedelta(days=8)
    assert await rows(client) == []


async def test_a_message_from_eight_days_ago_adds_no_row(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(days=8)
    await customer_writes(client, MON_20, wamid="wamid.LATE")
    await work()
    assert await rows(client) == []


async def test_service_hours_messages_make_no_row(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    clock.at = TUE_09 + timedelta(hours=1)
    await customer_writes(client, TUE_09 + timedelta(hours=1), wamid="wamid.OPEN")
    await work()
    assert await rows(client) == []


def _subject(wamid: str, at_offset: timedelta = timedelta(0)) -> Subject:
    return Subject(
        phone_number_id=PNID,
        wamid=wamid,
        contact=CUSTOMER,
        wa_id=CUSTOMER,
        name="Ana",
        at=MON_20 + at_offset,
    )


LOG = LogAfterHoursContact(period=TUE_09.isoformat(), next_opening=TUE_09, requested_return="no")


async def test_always_open_number_gets_no_row_even_if_asked(
    client: TestClient[Any, Any], clock: FixedClock, work: Work, arq: ArqRedis
) -> None:
    await setup_number(client, service_hours={"always_open": True})
    clock.at = MON_20 + timedelta(seconds=5)
    assert await queue.enqueue_log_after_hours(arq, _subject("wamid.AO"), LOG)
    await work()
    assert await rows(client) == []


async def test_a_redelivered_message_counts_once(
    client: TestClient[Any, Any], clock: FixedClock, work: Work, arq: ArqRedis
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    # The job id only dedups while the job is queued: after it ran, the same message may be
    # queued again (a redelivery past arq's memory), and the row must not count it twice.
    for _ in range(2):
        assert await queue.enqueue_log_after_hours(arq, _subject("wamid.R"), LOG)
        await work()
    assert await queue.enqueue_log_after_hours(arq, _subject("wamid.R2", timedelta(minutes=1)), LOG)
    await work()
    [row] = await rows(client)
    assert row["messages"] == 2


async def test_new_rows_are_announced_to_the_numbers_agents(
    client: TestClient[Any, Any], clock: FixedClock, work: Work, stores: Stores
) -> None:
    await setup_number(client)
    await setup_number(client, OTHER_PNID)
    await put_agent(client, "ana", [PNID])
    await put_agent(client, "bob", [OTHER_PNID])
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.E1")
    await customer_writes(client, MON_20 + timedelta(minutes=1), wamid="wamid.E2")
    await work()
    events = [e for e in await stores.events.read("ana", START) if e.type.startswith("after_")]
    [event] = events
    assert event.type == "after_hours.contact"
    [row] = await rows(client)
    assert event.data["id"] == row["id"]
    assert event.data["wa_id"] == CUSTOMER
    assert event.data["phone_number_id"] == PNID
    assert await stores.events.read("bob", START) == []


async def test_filters(client: TestClient[Any, Any], clock: FixedClock, work: Work) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(minutes=5)
    await customer_writes(client, MON_20, wamid="wamid.F1", wa_id="5511900000001")
    await customer_writes(client, MON_20, wamid="wamid.F2", wa_id="5511900000002")
    await customer_writes(
        client, MON_20, wamid="wamid.F3", wa_id="5511900000002", button=NOTIFY_BUTTON_ID
    )
    await work()
    assert {r["wa_id"] for r in await rows(client, requested_return="yes")} == {"5511900000002"}
    assert {r["wa_id"] for r in await rows(client, requested_return="no")} == {"5511900000001"}
    assert await rows(client, requested_return="N/D") == []
    assert len(await rows(client, message_sent="false")) == 2
    assert await rows(client, message_sent="true") == []
    for query, field in (
        ({"requested_return": "maybe"}, "requested_return"),
        ({"message_sent": "yes"}, "message_sent"),
    ):
        resp = await client.get(CONTACTS_URL, params=query, headers=ADMIN)
        assert resp.status == 422
        assert (await resp.json())["error"]["field"] == field


async def test_only_the_numbers_people_read_the_list(
    client: TestClient[Any, Any], clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    await setup_number(client, OTHER_PNID)
    ana = await put_agent(client, "ana", [PNID])
    bob = await put_agent(client, "bob", [OTHER_PNID])
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.P1")
    await work()
    assert len(await rows(client, headers=ana)) == 1
    resp = await client.get(CONTACTS_URL, headers=bob)
    assert resp.status == 403
    resp = await client.get(CONTACTS_URL)
    assert resp.status == 401
    resp = await client.get("/api/v1/numbers/9999/after-hours-contacts", headers=ADMIN)
    assert resp.status == 404
