"""/api/v1/numbers over the real app and Redis: settings, merge patches, 422s, audit, hours."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient
from arq import func
from arq.worker import Worker

from bot.deps import open_deps
from bot.domain.clock import FixedClock
from bot.settings import Settings
from jobs import deps_from
from storage import Stores, keys
from tests.api.conftest import ADMIN, N1, N2, Desk, put_number, settings_body

URL = f"/api/v1/numbers/{N1}"


async def _get(client: TestClient[Any, Any], url: str = URL) -> dict[str, Any]:
    resp = await client.get(url, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


def _without(data: dict[str, Any], *paths: str) -> dict[str, Any]:
    """A deep copy of `data` without the dotted `paths` (and without the change metadata)."""
    out: dict[str, Any] = {k: v for k, v in data.items() if k not in ("version", "updated_at")}
    for path in paths:
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node[part] = dict(node[part])
            node = node[part]
        node.pop(leaf)
    return out


# --- create, read, replace -----------------------------------------------------------------


async def test_put_then_get_answers_full_settings_with_id_and_version(
    client: TestClient[Any, Any], clock: FixedClock, redis: aioredis.Redis
) -> None:
    resp = await client.put(URL, json={"timezone": "America/Sao_Paulo", "service_hours": {}},
                            headers=ADMIN)  # fmt: skip
    assert resp.status == 201
    data = await _get(client)
    assert data["phone_number_id"] == N1
    assert data["version"] == 1
    assert data["language"] == "pt-BR"
    assert data["auto_reply_cooldown_minutes"] == 1440
    assert data["after_hours"]["notify_next_service_hour"] is False
    assert "{next_opening}" in data["after_hours"]["message"]
    assert data["absence"] == {
        "enabled": False,
        "message": data["absence"]["message"],
        "starts_at": None,
        "ends_at": None,
        "suggested_agent": None,
        "skip_customers_in_service": True,
    }
    assert data["service_hours"]["weekly"] == {}
    assert data["updated_by"] == "@admin"
    assert datetime.fromisoformat(data["updated_at"]) == clock.now()
    assert await redis.sismember(keys.NUMBERS, N1)


async def test_api_md_example_round_trips(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1, settings_body())
    data = await _get(client)
    for field, value in settings_body().items():
        if field != "service_hours":
            assert data[field] == value, field
    assert data["service_hours"]["exceptions"][2]["label"] == "inventory"


async def test_default_message_follows_the_language(client: TestClient[Any, Any]) -> None:
    body = {"timezone": "Europe/Madrid", "language": "es", "service_hours": {}}
    await put_number(client, N1, body)
    spanish = (await _get(client))["after_hours"]["message"]
    resp = await client.patch(URL, json={"language": "en"}, headers=ADMIN)
    english = (await resp.json())["after_hours"]["message"]
    assert "Volvemos" in spanish
    assert "We are back" in english


async def test_same_put_again_changes_nothing(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1)
    resp = await client.put(URL, json=settings_body(), headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["version"] == 1
    audit = await (await client.get(f"{URL}/audit", headers=ADMIN)).json()
    assert len(audit["items"]) == 1


async def test_put_replaces_whole_settings(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1)
    resp = await client.put(URL, json={"timezone": "UTC", "service_hours": {"always_open": True}},
                            headers=ADMIN)  # fmt: skip
    data = await resp.json()
    assert data["version"] == 2
    assert data["display_name"] is None
    assert data["absence"]["suggested_agent"] is None


async def test_get_unknown_number_is_404(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/numbers/999", headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


# --- validation: 422 naming the field, nothing stored -----------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = body
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[leaf] = value

    return apply


INVALID: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("timezone", _set("timezone", "Mars/Olympus")),
    ("timezone", _set("timezone", None)),
    ("service_hours", _set("service_hours", None)),
    ("language", _set("language", "fr")),
    ("display_name", _set("display_name", "x" * 101)),
    ("service_hours.weekly.mon[0].end", _set("service_hours.weekly.mon.0.end", "25:00")),
    ("service_hours.weekly.mon[1].start", _set("service_hours.weekly.mon.1.start", "9h")),
    ("service_hours.weekly.mon[1]", _set("service_hours.weekly.mon.1.start", "11:00")),
    ("service_hours.weekly.fri", _set("service_hours.weekly.fri", "all day")),
    ("service_hours.exceptions[0].date", _set("service_hours.exceptions.0.date", "2026-02-30")),
    ("service_hours.holidays.country", _set("service_hours.holidays.country", "XX")),
    # 975 characters, but more than 1024 once {next_opening} is rendered (interactive body).
    ("after_hours.message", _set("after_hours.message", "x" * 960 + " {next_opening}")),
    ("after_hours.message", _set("after_hours.message", "back {when}")),
    ("after_hours.message", _set("after_hours.message", "   ")),
    ("after_hours.notify_next_service_hour", _set("after_hours.notify_next_service_hour", "yes")),
    ("after_hours.colour", _set("after_hours.colour", "blue")),
    ("absence.message", _set("absence.message", "x" * 4097)),
    ("absence.enabled", _set("absence.enabled", 1)),
    ("absence.starts_at", _set("absence.starts_at", "2026-01-01T10:00:00")),
    ("absence.ends_at", _set("absence.ends_at", "2025-12-31T10:00:00Z")),
    ("absence.suggested_agent.phone", _set("absence.suggested_agent.phone", "11 99999-0000")),
    ("absence.suggested_agent.name", _set("absence.suggested_agent.name", "")),
    ("auto_reply_cooldown_minutes", _set("auto_reply_cooldown_minutes", 0)),
    ("auto_reply_cooldown_minutes", _set("auto_reply_cooldown_minutes", "60")),
    ("notify_next_service_hour", _set("notify_next_service_hour", True)),
]


def _absence_range(body: dict[str, Any]) -> None:
    body["absence"]["starts_at"] = "2026-01-01T10:00:00Z"


@pytest.mark.parametrize(("field", "mutate"), INVALID, ids=[f for f, _ in INVALID])
async def test_invalid_put_is_422_naming_the_field_and_stores_nothing(
    client: TestClient[Any, Any], redis: aioredis.Redis, field: str, mutate: Callable[..., None]
) -> None:
    await put_number(client, N1)
    before = await _get(client)
    body = settings_body()
    if field == "absence.ends_at":
        _absence_range(body)
    mutate(body)
    resp = await client.put(URL, json=body, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == "invalid"
    assert error["field"] == field
    assert field in error["message"]
    assert await _get(client) == before
    # A refused creation does not make the number served either.
    resp = await client.put(f"/api/v1/numbers/{N2}", json=body, headers=ADMIN)
    assert resp.status == 422
    assert not await redis.sismember(keys.NUMBERS, N2)


@pytest.mark.parametrize(("field", "mutate"), INVALID, ids=[f for f, _ in INVALID])
async def test_invalid_patch_is_422_naming_the_field_and_stores_nothing(
    client: TestClient[Any, Any], field: str, mutate: Callable[..., None]
) -> None:
    """The same mistakes sent as a merge patch: the merged result is what is validated."""
    await put_number(client, N1)
    before = await _get(client)
    body = settings_body()
    if field == "absence.ends_at":
        _absence_range(body)
    mutate(body)
    resp = await client.patch(URL, json=body, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["field"] == field
    assert await _get(client) == before
    audit = await (await client.get(f"{URL}/audit", headers=ADMIN)).json()
    assert [e["action"] for e in audit["items"]] == ["create"]


async def test_body_that_is_not_json_is_400(client: TestClient[Any, Any]) -> None:
    resp = await client.put(URL, data=b"{nope", headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "bad_request"


async def test_body_that_is_not_an_object_is_422(client: TestClient[Any, Any]) -> None:
    resp = await client.put(URL, json=[1, 2], headers=ADMIN)
    assert resp.status == 422
    await put_number(client, N1)
    resp = await client.patch(URL, json="absence", headers=ADMIN)
    assert resp.status == 422


async def test_invalid_phone_number_id_is_422(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/numbers/a:b", headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "phone_number_id"


# --- merge patch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "path", "value"),
    [
        ({"absence": {"enabled": True}}, "absence.enabled", True),
        (
            {"after_hours": {"notify_next_service_hour": False}},
            "after_hours.notify_next_service_hour",
            False,
        ),
    ],
)
async def test_patch_toggles_one_setting_and_keeps_everything_else(
    client: TestClient[Any, Any], desk: Desk, patch: dict[str, Any], path: str, value: Any
) -> None:
    before = await _get(client)
    resp = await client.patch(URL, json=patch, headers=desk.headers("mara"))
    assert resp.status == 200, await resp.text()
    after = await resp.json()
    section, leaf = path.split(".")
    assert after[section][leaf] == value
    assert after["version"] == before["version"] + 1
    assert _without(after, path, "updated_by") == _without(before, path, "updated_by")
    assert after == await _get(client)
    # The absence message and suggested agent survive switching absence on.
    assert after["absence"]["suggested_agent"] == {"name": "João", "phone": "+5511999990000"}
    assert after["absence"]["message"] == "Ana is on vacation."

    resp = await client.get(f"{URL}/audit", headers=desk.headers("mara"))
    newest = (await resp.json())["items"][0]
    assert newest["actor"] == "mara"
    assert newest["action"] == "patch"
    assert newest["version"] == after["version"]
    assert newest["changes"] == {path: {"before": before[section][leaf], "after": value}}


async def test_patch_null_removes_a_field_back_to_its_default(
    client: TestClient[Any, Any],
) -> None:
    await put_number(client, N1)
    resp = await client.patch(URL, json={"after_hours": {"message": None}}, headers=ADMIN)
    data = await resp.json()
    assert data["after_hours"]["message"].startswith("Olá!")
    assert data["after_hours"]["notify_next_service_hour"] is True
    resp = await client.patch(URL, json={"absence": {"suggested_agent": None}}, headers=ADMIN)
    assert (await resp.json())["absence"]["suggested_agent"] is None


async def test_patch_replaces_arrays_whole(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1)
    patch = {"service_hours": {"weekly": {"mon": [{"start": "10:00", "end": "11:00"}]}}}
    data = await (await client.patch(URL, json=patch, headers=ADMIN)).json()
    assert data["service_hours"]["weekly"]["mon"] == [{"start": "10:00", "end": "11:00"}]
    assert data["service_hours"]["weekly"]["sat"] == [{"start": "22:00", "end": "02:00"}]
    assert len(data["service_hours"]["exceptions"]) == 3


async def test_patch_that_changes_nothing_keeps_the_version(
    client: TestClient[Any, Any],
) -> None:
    await put_number(client, N1)
    resp = await client.patch(URL, json={"absence": {"enabled": False}}, headers=ADMIN)
    assert (await resp.json())["version"] == 1


async def test_patch_of_unknown_number_is_404(client: TestClient[Any, Any]) -> None:
    resp = await client.patch(URL, json={"absence": {"enabled": True}}, headers=ADMIN)
    assert resp.status == 404


async def test_concurrent_patches_of_different_fields_all_land(
    client: TestClient[Any, Any],
) -> None:
    await put_number(client, N1)
    patches: list[dict[str, Any]] = [
        {"display_name": "Loja Nova"},
        {"auto_reply_cooldown_minutes": 60},
        {"absence": {"enabled": True}},
        {"absence": {"message": "Back on Monday."}},
        {"after_hours": {"notify_next_service_hour": False}},
        {"after_hours": {"message": "Closed, back {next_opening}."}},
        {"service_hours": {"always_open": True}},
        {"absence": {"ends_at": "2030-01-01T00:00:00Z"}},
        {"language": "en"},
    ]
    responses = await asyncio.gather(*(client.patch(URL, json=p, headers=ADMIN) for p in patches))
    assert [r.status for r in responses] == [200] * len(patches)
    data = await _get(client)
    assert data["version"] == 1 + len(patches)
    assert data["display_name"] == "Loja Nova"
    assert data["auto_reply_cooldown_minutes"] == 60
    assert data["absence"]["enabled"] is True
    assert data["absence"]["message"] == "Back on Monday."
    assert data["after_hours"] == {
        "message": "Closed, back {next_opening}.",
        "notify_next_service_hour": False,
    }
    assert data["service_hours"]["always_open"] is True
    assert data["absence"]["ends_at"] == "2030-01-01T00:00:00Z"
    assert data["language"] == "en"
    audit = await (await client.get(f"{URL}/audit", headers=ADMIN)).json()
    assert [e["version"] for e in audit["items"]] == list(range(len(patches) + 1, 0, -1))


# --- delete --------------------------------------------------------------------------------


async def test_delete_stops_serving_and_keeps_version_and_audit(
    client: TestClient[Any, Any], redis: aioredis.Redis
) -> None:
    await put_number(client, N1)
    assert (await client.delete(URL, headers=ADMIN)).status == 204
    assert not await redis.sismember(keys.NUMBERS, N1)
    assert (await client.get(URL, headers=ADMIN)).status == 404
    assert (await client.delete(URL, headers=ADMIN)).status == 404
    audit = await (await client.get(f"{URL}/audit", headers=ADMIN)).json()
    assert [e["action"] for e in audit["items"]] == ["delete", "create"]
    assert audit["items"][0]["changes"]["timezone"] == {
        "before": "America/Sao_Paulo",
        "after": None,
    }
    # Created again, it continues the version sequence: a version is never reused.
    data = await put_number(client, N1)
    assert data["version"] == 3
    assert await redis.sismember(keys.NUMBERS, N1)


# --- audit ---------------------------------------------------------------------------------


async def test_audit_is_newest_first_and_bounded_by_limit(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1)
    for minutes in (10, 20, 30):
        patch = {"auto_reply_cooldown_minutes": minutes}
        await client.patch(URL, json=patch, headers=ADMIN)
    resp = await client.get(f"{URL}/audit", params={"limit": "2"}, headers=ADMIN)
    items = (await resp.json())["items"]
    assert [i["changes"]["auto_reply_cooldown_minutes"]["after"] for i in items] == [30, 20]
    assert (await client.get(f"{URL}/audit?limit=0", headers=ADMIN)).status == 422
    assert (await client.get(f"{URL}/audit?limit=x", headers=ADMIN)).status == 422


# --- changes seen by other processes ---------------------------------------------------------


async def test_change_is_seen_through_another_connection(
    client: TestClient[Any, Any], redis_url: str
) -> None:
    await put_number(client, N1)
    other = aioredis.Redis.from_url(redis_url)
    try:
        stores = Stores.on(other)
        assert (await stores.numbers.get(N1)).version == 1  # type: ignore[union-attr]
        await client.patch(URL, json={"absence": {"enabled": True}}, headers=ADMIN)
        stored = await stores.numbers.get(N1)
        assert stored is not None
        assert stored.version == 2
        assert stored.config.absence.enabled is True
    finally:
        await other.aclose()


async def test_running_worker_sees_a_change_without_restart(
    client: TestClient[Any, Any], make_worker: Callable[..., Worker], settings: Settings
) -> None:
    """One job of a live worker reads the settings, waits while the API changes them, and
    reads them again through the same `deps.stores`: it sees the new version."""
    await put_number(client, N1)
    first_read, changed = asyncio.Event(), asyncio.Event()
    seen: list[tuple[int, bool]] = []

    async def read_twice(ctx: dict[str, Any]) -> None:
        numbers = deps_from(ctx).stores.numbers
        for _ in range(2):
            stored = await numbers.get(N1)
            assert stored is not None
            seen.append((stored.version, stored.config.absence.enabled))
            first_read.set()
            if len(seen) == 1:
                await changed.wait()

    worker = make_worker(functions=[func(read_twice, name="read_twice")])
    async with open_deps(settings) as deps:
        await deps.redis.enqueue_job("read_twice")
    run = asyncio.create_task(worker.run_check())
    await asyncio.wait_for(first_read.wait(), 10)
    resp = await client.patch(URL, json={"absence": {"enabled": True}}, headers=ADMIN)
    assert resp.status == 200
    changed.set()
    await asyncio.wait_for(run, 10)
    assert seen == [(1, False), (2, True)]


# --- service hours ---------------------------------------------------------------------------

# Monday 2026-01-05; São Paulo is UTC-3 all year (no daylight saving since 2019).
MONDAY_10_LOCAL = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)


async def test_hours_open_answers_next_opening_equal_to_at(
    client: TestClient[Any, Any],
) -> None:
    await put_number(client, N1)
    resp = await client.get(f"{URL}/hours", params={"at": "2026-01-05T13:00:00Z"}, headers=ADMIN)
    assert resp.status == 200
    data = await resp.json()
    assert data["open"] is True
    assert data["reason"] == "weekly"
    opening = datetime.fromisoformat(data["next_opening"])
    assert opening == MONDAY_10_LOCAL
    assert data["next_opening"].endswith("-03:00")
    assert data["next_opening"] == data["at"]


async def test_hours_closed_answers_next_opening_in_the_numbers_offset(
    client: TestClient[Any, Any],
) -> None:
    await put_number(client, N1)
    # Monday 12:30 local: the lunch break.
    resp = await client.get(
        f"{URL}/hours", params={"at": "2026-01-05T12:30:00-03:00"}, headers=ADMIN
    )
    data = await resp.json()
    assert data["open"] is False
    assert data["next_opening"] == "2026-01-05T13:00:00-03:00"


async def test_hours_unencoded_plus_offset_is_understood(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1)
    resp = await client.get(f"{URL}/hours?at=2026-01-05T13:00:00+00:00", headers=ADMIN)
    assert resp.status == 200
    assert (await resp.json())["open"] is True


@pytest.mark.parametrize("at", ["2026-01-05T10:00:00", "yesterday", "", "0001-01-01T00:00:00Z"])
async def test_hours_refuses_naive_or_malformed_at(client: TestClient[Any, Any], at: str) -> None:
    await put_number(client, N1)
    resp = await client.get(f"{URL}/hours", params={"at": at}, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == "at"


async def test_hours_default_at_is_the_apps_clock(
    client: TestClient[Any, Any], clock: FixedClock
) -> None:
    await put_number(client, N1)
    clock.at = MONDAY_10_LOCAL
    data = await (await client.get(f"{URL}/hours", headers=ADMIN)).json()
    assert data["open"] is True
    assert datetime.fromisoformat(data["at"]) == MONDAY_10_LOCAL


async def test_hours_never_opening_answers_null(client: TestClient[Any, Any]) -> None:
    await put_number(client, N1, {"timezone": "UTC", "service_hours": {"weekly": {}}})
    data = await (await client.get(f"{URL}/hours", headers=ADMIN)).json()
    assert data["open"] is False
    assert data["next_opening"] is None


@pytest.mark.parametrize("depth", [40, 50_000])
async def test_absurdly_nested_body_is_400_not_500(
    client: TestClient[Any, Any], depth: int
) -> None:
    await put_number(client, N1)
    body = "[" * depth + "]" * depth
    resp = await client.patch(URL, data=io.BytesIO(body.encode()), headers=ADMIN)
    assert resp.status == 400
    patch = '{"absence":' * depth + "1" + "}" * depth
    resp = await client.patch(URL, data=io.BytesIO(patch.encode()), headers=ADMIN)
    assert resp.status == 400
    assert (await _get(client))["version"] == 1
