"""/api/v1 contacts: search across numbers, listing, CSV import, timeline; permissions."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from arq.worker import Worker

from bot.domain.clock import FixedClock
from bot.domain.contacts_import import MAX_BYTES
from bot.domain.models import InboundMessage
from bot.simulate import build_payload
from storage import keys
from storage.contacts import ContactsStore
from storage.timeline import TimelineStore
from tests.api.conftest import ADMIN, N1, N2, Desk
from tests.webhooks import post_webhook

_ids = itertools.count()
CSV = {"Content-Type": "text/csv"}


async def seed(
    redis: aioredis.Redis,
    wa_id: str,
    name: str | None,
    at: datetime,
    *,
    number: str = N1,
    text: str = "oi",
) -> str:
    """A customer's message, stored as the inbound job stores it: timeline, then contact."""
    wamid = f"wamid.S{next(_ids)}"
    contact: dict[str, Any] = {"wa_id": wa_id}
    if name is not None:
        contact["profile"] = {"name": name}
    item = {
        "phone_number_id": number,
        "contact": contact,
        "message": {
            "id": wamid,
            "from": wa_id,
            "timestamp": str(int(at.timestamp())),
            "type": "text",
            "text": {"body": text},
        },
    }
    msg = InboundMessage.from_claim(item)
    await TimelineStore(redis).add_inbound(msg)
    await ContactsStore(redis).upsert_from_inbound(msg)
    return wamid


async def search(
    client: TestClient[Any, Any],
    q: str,
    who: str = "admin",
    desk: Desk | None = None,
    **params: Any,
) -> dict[str, Any]:
    headers = desk.headers(who) if desk is not None else ADMIN
    resp = await client.get("/api/v1/contacts", params={"q": q, **params}, headers=headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def names(page: dict[str, Any]) -> list[str]:
    return [hit["contact"]["name"] for hit in page["items"]]


async def import_csv(
    client: TestClient[Any, Any], text: str | bytes, number: str = N1, **params: str
) -> dict[str, Any]:
    data = text.encode() if isinstance(text, str) else text
    resp = await client.post(
        f"/api/v1/numbers/{number}/contacts/import", data=data, headers={**ADMIN, **CSV},
        params=params,
    )  # fmt: skip
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


# --- search -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q",
    ["joao", "João", "JOAO", "sil", "SILVA", "joão sil", "silva jo", "  joao   silva  "],
)
async def test_search_by_name_ignores_accents_case_and_finds_any_word_prefix(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock, q: str
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now())
    await seed(redis, "5511912345678", "Maria Souza", clock.now())
    page = await search(client, q)
    assert names(page) == ["João Silva"]
    assert page["items"][0]["number"] == N1


@pytest.mark.parametrize("q", ["oao", "silvana", "joao x", "maria joao", "souza silva"])
async def test_search_by_name_needs_every_word_to_start_a_word(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock, q: str
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now())
    await seed(redis, "5511912345678", "Maria Souza", clock.now())
    assert (await search(client, q))["items"] == []


@pytest.mark.parametrize(
    "q",
    [
        "11 98765-4321",
        "(11) 98765-4321",
        "+55 11 98765-4321",
        "5511987654321",
        "+55 11 8765-4321",  # without the ninth digit
        "551187654321",
        "11 8765-4321",
        "(011) 98765-4321",
        "987654321",
        "8765-4321",
        "98765-43",  # the start of the subscriber number
    ],
)
async def test_search_by_phone_in_any_spelling(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock, q: str
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now())
    await seed(redis, "5521912345678", "Maria Souza", clock.now())
    page = await search(client, q)
    assert names(page) == ["João Silva"]
    assert page["items"][0]["contact"]["phone"] == "+5511987654321"


@pytest.mark.parametrize("q", ["11 98765-4322", "21 98765-4321", "+1 415 555 0100"])
async def test_search_by_phone_does_not_match_other_numbers(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock, q: str
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now())
    assert (await search(client, q))["items"] == []


async def test_a_contact_who_wrote_without_the_ninth_digit_is_found_with_it(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    await seed(redis, "551187654321", "Ana", clock.now())  # the pre-2016 form WhatsApp reports
    for q in ("11 98765-4321", "+55 11 8765-4321", "ana"):
        [hit] = (await search(client, q))["items"]
        assert hit["contact"]["phone"] == "+5511987654321"


async def test_search_covers_only_the_numbers_the_caller_is_attached_to(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now(), number=N1)
    await seed(redis, "5511987654321", "João Silva", clock.now(), number=N2)
    await seed(redis, "5521912345678", "João Pedro", clock.now(), number=N2)

    def numbers(page: dict[str, Any]) -> list[tuple[str, str]]:
        return [(h["number"], h["contact"]["name"]) for h in page["items"]]

    assert numbers(await search(client, "joao", "ana", desk)) == [(N1, "João Silva")]
    assert numbers(await search(client, "joao", "mara", desk)) == [(N1, "João Silva")]
    assert sorted(numbers(await search(client, "joao", "bob", desk))) == [
        (N2, "João Pedro"),
        (N2, "João Silva"),
    ]
    assert len((await search(client, "joao"))["items"]) == 3  # the admin sees every number
    assert len((await search(client, "987654321", "ana", desk))["items"]) == 1
    assert (await search(client, "21 91234-5678", "ana", desk))["items"] == []
    # Asking for a number explicitly: 403 outside the caller's numbers, filtered inside.
    resp = await client.get(
        "/api/v1/contacts", params={"q": "joao", "number": N2}, headers=desk.headers("ana")
    )
    assert resp.status == 403
    assert numbers(await search(client, "joao", "bob", desk, number=N2))[0][0] == N2
    assert numbers(await search(client, "joao", number=N1)) == [(N1, "João Silva")]


async def test_hit_says_history_window_and_who_serves(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    now = clock.now()
    await seed(redis, "5511900000001", "Ana Hoje", now - timedelta(hours=1))
    await seed(redis, "5511900000002", "Ana Mes", now - timedelta(days=30))
    await seed(redis, "5511900000003", "Ana Antiga", now - timedelta(days=100))
    await import_csv(client, "name,phone\nAna Importada,+55 11 90000-0004\n")
    page = await search(client, "ana")
    state = {
        h["contact"]["name"]: (h["has_history"], h["window_open"], h["served_by"])
        for h in page["items"]
    }
    assert state == {
        "Ana Hoje": (True, True, None),
        "Ana Mes": (True, False, None),
        "Ana Antiga": (False, False, None),
        "Ana Importada": (False, False, None),
    }
    # Latest interaction first; the imported contact never interacted: last.
    assert names(page) == ["Ana Hoje", "Ana Mes", "Ana Antiga", "Ana Importada"]


async def test_search_is_bounded_and_says_when_there_is_more(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    for i in range(5):
        await seed(redis, f"55119000000{i:02d}", f"Carla {i}", clock.now() - timedelta(hours=i))
    page = await search(client, "carla", limit=3)
    assert names(page) == ["Carla 0", "Carla 1", "Carla 2"]
    assert page["truncated"] is True
    page = await search(client, "carla", limit=5)
    assert len(page["items"]) == 5
    assert page["truncated"] is False


async def test_a_new_name_replaces_the_old_one_in_the_index(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    await seed(redis, "5511987654321", "Maria", clock.now() - timedelta(hours=2))
    await seed(redis, "5511987654321", "Joana Prado", clock.now() - timedelta(hours=1))
    # A late, older message does not bring the old name back.
    await seed(redis, "5511987654321", "Maria", clock.now() - timedelta(hours=3))
    assert (await search(client, "maria"))["items"] == []
    assert names(await search(client, "prado")) == ["Joana Prado"]


async def test_a_webhook_message_makes_the_contact_searchable(
    client: TestClient[Any, Any],
    desk: Desk,
    clock: FixedClock,
    make_worker: Callable[..., Worker],
) -> None:
    payload = build_payload(
        phone_number_id=N1,
        wa_id="551187654321",
        name="Joaquim Barbosa",
        text="Olá",
        message_id="wamid.E2E",
        timestamp=int(clock.now().timestamp()),
    )
    assert (await post_webhook(client, payload)).status == 200
    await make_worker().run_check()
    [hit] = (await search(client, "barb", "ana", desk))["items"]
    assert hit["contact"]["wa_id"] == "551187654321"
    assert hit["window_open"] is True
    assert (await search(client, "joaquim", "bob", desk))["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "!!!"}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "ana", "limit": "0"}, "limit"),
        ({"q": "ana", "limit": "many"}, "limit"),
        ({"q": "ana", "number": "no/such"}, "number"),
    ],
)
async def test_bad_search_is_422_naming_the_field(
    client: TestClient[Any, Any], desk: Desk, params: dict[str, str], field: str
) -> None:
    resp = await client.get("/api/v1/contacts", params=params, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == field


async def test_contacts_need_a_token(client: TestClient[Any, Any], desk: Desk) -> None:
    for path in ("/api/v1/contacts?q=ana", f"/api/v1/numbers/{N1}/contacts"):
        assert (await client.get(path)).status == 401


# --- listing ----------------------------------------------------------------------------------


async def list_page(
    client: TestClient[Any, Any], number: str = N1, who: str = "admin", desk: Desk | None = None,
    **params: Any,
) -> dict[str, Any]:  # fmt: skip
    headers = desk.headers(who) if desk is not None else ADMIN
    resp = await client.get(f"/api/v1/numbers/{number}/contacts", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_listing_pages_through_every_contact_latest_interaction_first(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    now = clock.now()
    for i in range(7):
        await seed(redis, f"55119100000{i:02d}", f"Cliente {i}", now - timedelta(minutes=i))
    # Two imported contacts share score 0: the cursor must not lose nor repeat them.
    await import_csv(client, "phone,name\n5511920000001,Imp A\n5511920000002,Imp B\n")
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await list_page(client, **params)
        seen += names(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[:7] == [f"Cliente {i}" for i in range(7)]
    assert sorted(seen[7:]) == ["Imp A", "Imp B"]
    assert pages == 5


async def test_listing_filters(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    now = clock.now()
    await seed(redis, "5511987654321", "João Silva", now - timedelta(days=1))
    await seed(redis, "5521912345678", "Maria Souza", now - timedelta(days=10))
    await seed(redis, "5531955554444", "Pedro Álvares", now - timedelta(days=40))
    await import_csv(
        client,
        "phone,email,city,document\n"
        "5511987654321,joao@example.com,São Paulo,123.456.789-00\n"
        "5521912345678,maria@example.org,Rio de Janeiro,987.654.321-00\n",
    )

    async def filtered(**params: str) -> list[str]:
        return names(await list_page(client, **params))

    assert await filtered(name="jo") == ["João Silva"]
    assert await filtered(name="ALVARES") == ["Pedro Álvares"]
    assert await filtered(phone="21 9123-45678") == ["Maria Souza"]
    assert await filtered(phone="(31) 95555-4444") == ["Pedro Álvares"]
    assert await filtered(email="EXAMPLE.ORG") == ["Maria Souza"]
    assert await filtered(city="sao paulo") == ["João Silva"]
    assert await filtered(document="987.654") == ["Maria Souza"]
    assert await filtered(id="5511987654321") == ["João Silva"]
    assert await filtered(id="+55 11 8765-4321") == ["João Silva"]
    assert await filtered(id="5511900000000") == []
    since = (now - timedelta(days=15)).isoformat()
    until = (now - timedelta(days=5)).isoformat()
    assert await filtered(**{"from": since}) == ["João Silva", "Maria Souza"]
    assert await filtered(**{"from": since, "to": until}) == ["Maria Souza"]
    assert await filtered(to=until) == ["Maria Souza", "Pedro Álvares"]
    assert await filtered(name="maria", city="rio") == ["Maria Souza"]
    assert await filtered(name="maria", city="paulo") == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "nope"}, "cursor"),
        ({"limit": "201"}, "limit"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-01-05T10:00:00"}, "to"),  # naive
        ({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"phone": "12"}, "phone"),
        ({"name": "--"}, "name"),
    ],
)
async def test_bad_listing_is_422_naming_the_field(
    client: TestClient[Any, Any], desk: Desk, params: dict[str, str], field: str
) -> None:
    resp = await client.get(f"/api/v1/numbers/{N1}/contacts", params=params, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["field"] == field


async def test_per_number_endpoints_refuse_other_numbers(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now(), number=N2)
    base = f"/api/v1/numbers/{N2}/contacts"
    for path in (base, f"{base}/5511987654321", f"{base}/5511987654321/timeline"):
        assert (await client.get(path, headers=desk.headers("ana"))).status == 403
        assert (await client.get(path, headers=desk.headers("mara"))).status == 403
        assert (await client.get(path, headers=desk.headers("bob"))).status == 200
    resp = await client.post(f"{base}/import", data=b"phone\n5511987654321\n",
                             headers={**desk.headers("ana"), **CSV})  # fmt: skip
    assert resp.status == 403
    resp = await client.post(
        "/api/v1/contacts/import", params={"number": N2}, data=b"phone\n5511987654321\n",
        headers={**desk.headers("ana"), **CSV},
    )  # fmt: skip
    assert resp.status == 403
    # Nothing was imported by the refused calls.
    assert (await list_page(client, N2))["items"][0]["contact"].get("email") is None


async def test_get_contact_by_any_spelling(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    await seed(redis, "5511987654321", "João Silva", clock.now())
    resp = await client.get(f"/api/v1/numbers/{N1}/contacts/551187654321", headers=ADMIN)
    assert resp.status == 200
    hit = await resp.json()
    assert (hit["number"], hit["contact"]["key"], hit["window_open"]) == (
        N1,
        "5511987654321",
        True,
    )
    resp = await client.get(f"/api/v1/numbers/{N1}/contacts/5511900000000", headers=ADMIN)
    assert resp.status == 404


# --- import -----------------------------------------------------------------------------------

GOOD_AND_BAD = (
    "Nome,Telefone,E-mail,Cidade,CPF,Plano\n"
    "João Silva,+55 11 98765-4321,joao@example.com,São Paulo,123,ouro\n"  # row 2
    "Sem Telefone,,x@example.com,,,\n"  # row 3
    "Número Ruim,12ab,,,,\n"  # row 4
    "Email Ruim,+55 21 91234-5678,not-an-email,,,\n"  # row 5
    "\n"  # blank: skipped, still counted as a record by spreadsheets
    "Maria Souza,+55 21 9123-45678,,Rio,,prata\n"  # row 7
    "João de Novo,+55 11 8765-4321,,,,\n"  # row 8: João again, without the ninth digit
)


async def test_import_stores_valid_rows_and_reports_bad_ones(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    report = await import_csv(client, GOOD_AND_BAD)
    assert (report["imported"], report["updated"], report["unchanged"]) == (2, 0, 0)
    assert report["error_count"] == 4
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (3, "Telefone"),
        (4, "Telefone"),
        (5, "E-mail"),
        (8, "Telefone"),
    ]
    assert "row 2" in report["errors"][3]["message"]
    [hit] = (await search(client, "joao"))["items"]
    contact = hit["contact"]
    assert (contact["name"], contact["phone"], contact["email"]) == (
        "João Silva",
        "+5511987654321",
        "joao@example.com",
    )
    assert (contact["city"], contact["document"], contact["extra"]) == (
        "São Paulo",
        "123",
        {"Plano": "ouro"},
    )
    assert (hit["window_open"], hit["has_history"]) == (False, False)
    assert (contact["last_inbound_at"], contact["last_interaction_at"]) == (None, None)
    assert names(await search(client, "21 91234-5678")) == ["Maria Souza"]


async def test_importing_the_same_file_twice_changes_nothing(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    await seed(redis, "5511987654321", "Joao WhatsApp", clock.now() - timedelta(hours=1))
    first = await import_csv(client, GOOD_AND_BAD)
    assert (first["imported"], first["updated"], first["unchanged"]) == (1, 1, 0)
    stored = {k: await redis.hgetall(k) async for k in redis.scan_iter("dl:ct:*")}
    index = await redis.zrange(keys.contact_index(N1), 0, -1)
    recent = await redis.zrange(keys.contacts_recent(N1), 0, -1, withscores=True)
    clock.advance(timedelta(hours=1))
    second = await import_csv(client, GOOD_AND_BAD)
    assert (second["imported"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert second["error_count"] == 4
    assert {k: await redis.hgetall(k) async for k in redis.scan_iter("dl:ct:*")} == stored
    assert await redis.zrange(keys.contact_index(N1), 0, -1) == index
    assert await redis.zrange(keys.contacts_recent(N1), 0, -1, withscores=True) == recent
    # A changed cell is an update, and only that contact changes.
    changed = GOOD_AND_BAD.replace("Rio,,prata", "Niterói,,prata")
    third = await import_csv(client, changed)
    assert (third["imported"], third["updated"], third["unchanged"]) == (0, 1, 1)
    # The window the customer opened stays open: an import is not a message.
    [hit] = (await search(client, "joao"))["items"]
    assert hit["window_open"] is True
    assert hit["contact"]["name"] == "João Silva"


async def test_import_reads_semicolons_windows_1252_and_national_numbers(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    text = "nome;telefone;cidade\r\nJoão Ção;(011) 98765-4321;São Paulo\r\n"
    report = await import_csv(client, text.encode("cp1252"), country="55")
    assert report["imported"] == 1, report
    [hit] = (await search(client, "cao"))["items"]
    assert (hit["contact"]["phone"], hit["contact"]["city"]) == ("+5511987654321", "São Paulo")


async def test_import_by_the_api_md_path_and_as_a_multipart_form(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    resp = await client.post(
        "/api/v1/contacts/import", params={"number": N1}, headers={**desk.headers("ana"), **CSV},
        data=b"phone,name\n+5511987654321,Ana Form\n",
    )  # fmt: skip
    assert resp.status == 200
    assert (await resp.json())["imported"] == 1
    form = FormData()
    form.add_field(
        "file", b"phone,name\n+5521912345678,Bia Form\n", filename="c.csv", content_type="text/csv"
    )
    resp = await client.post(
        f"/api/v1/numbers/{N1}/contacts/import", data=form, headers=desk.headers("mara")
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["imported"] == 1
    assert sorted(names(await search(client, "form"))) == ["Ana Form", "Bia Form"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        (f"/api/v1/numbers/{N1}/contacts/import", b"", 422, "file"),
        (f"/api/v1/numbers/{N1}/contacts/import", b"name,email\nAna,a@b.co\n", 422, "phone"),
        (f"/api/v1/numbers/{N1}/contacts/import", b"phone\n\x00\x01", 422, "file"),
        (f"/api/v1/numbers/{N1}/contacts/import", b"\xff\xfe\x81\x8d", 422, "file"),
        (f"/api/v1/numbers/{N1}/contacts/import?country=5x", b"phone\n1\n", 422, "country"),
        ("/api/v1/contacts/import", b"phone\n5511987654321\n", 422, "number"),
        ("/api/v1/numbers/999/contacts/import", b"phone\n5511987654321\n", 404, None),
        ("/api/v1/contacts/import?number=999", b"phone\n5511987654321\n", 404, None),
    ],
)
async def test_unusable_imports_are_refused_whole(
    client: TestClient[Any, Any],
    redis: aioredis.Redis,
    desk: Desk,
    path: str,
    body: bytes,
    status: int,
    field: str | None,
) -> None:
    resp = await client.post(path, data=body, headers={**ADMIN, **CSV})
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"].get("field") == field
    assert [k async for k in redis.scan_iter("dl:ct:*")] == []


async def test_import_above_the_size_limit_is_413(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk
) -> None:
    row = b"+5511987654321,Someone With A Long Name\n"
    body = b"phone,name\n" + row * (MAX_BYTES // len(row) + 1)
    resp = await client.post(
        f"/api/v1/numbers/{N1}/contacts/import", data=io.BytesIO(body), headers={**ADMIN, **CSV}
    )
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"
    assert [k async for k in redis.scan_iter("dl:ct:*")] == []


# --- timeline ---------------------------------------------------------------------------------


async def timeline(
    client: TestClient[Any, Any], wa_id: str = "5511987654321", **params: Any
) -> dict[str, Any]:
    resp = await client.get(
        f"/api/v1/numbers/{N1}/contacts/{wa_id}/timeline", params=params, headers=ADMIN
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_timeline_lists_messages_in_and_out_newest_first(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    now = clock.now()
    first = await seed(redis, "5511987654321", "Ana", now - timedelta(hours=3), text="Oi")
    await TimelineStore(redis).add_outbound(
        N1, "5511987654321", "wamid.OUT", "agent", "Olá, em que posso ajudar?",
        now - timedelta(hours=2),
    )  # fmt: skip
    last = await seed(redis, "5511987654321", "Ana", now - timedelta(hours=1), text="Meu pedido")
    page = await timeline(client, "551187654321")  # any spelling of the number
    assert [(i["id"], i["direction"]) for i in page["items"]] == [
        (last, "in"),
        ("wamid.OUT", "out"),
        (first, "in"),
    ]
    assert (page["order"], page["window_open"], page["next_cursor"]) == ("desc", True, None)
    assert page["contact"]["name"] == "Ana"
    page = await timeline(client, order="asc")
    assert [i["id"] for i in page["items"]] == [first, "wamid.OUT", last]


async def test_timeline_search_within_one_contact(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    now = clock.now()
    await seed(redis, "5511987654321", "Ana", now - timedelta(hours=5), text="Quero o PEDIDO 42")
    await seed(redis, "5511987654321", "Ana", now - timedelta(hours=4), text="obrigada")
    await seed(redis, "5521912345678", "Bia", now - timedelta(hours=3), text="pedido 43")
    await TimelineStore(redis).add_outbound(
        N1, "5511987654321", "wamid.OUT", "agent", "Seu pedido saiu para entrega",
        now - timedelta(hours=2),
    )  # fmt: skip
    page = await timeline(client, q="pedído")
    assert [i["text"] for i in page["items"]] == [
        "Seu pedido saiu para entrega",
        "Quero o PEDIDO 42",
    ]
    assert (await timeline(client, q="43"))["items"] == []


async def test_timeline_pages_with_a_cursor_and_keeps_90_days(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, clock: FixedClock
) -> None:
    now = clock.now()
    ids = [
        await seed(redis, "5511987654321", "Ana", now - timedelta(minutes=10 - i), text=f"m{i}")
        for i in range(5)
    ]
    page = await timeline(client, limit=2)
    got = [i["id"] for i in page["items"]]
    while page["next_cursor"] is not None:
        page = await timeline(client, limit=2, cursor=page["next_cursor"])
        got += [i["id"] for i in page["items"]]
    assert got == ids[::-1]
    page = await timeline(client, limit=1, q="m")
    assert [i["text"] for i in page["items"]] == ["m4"]
    assert page["next_cursor"] is not None
    # 91 days later the messages are past the timeline's horizon; the contact stays.
    clock.advance(timedelta(days=91))
    page = await timeline(client)
    assert page["items"] == []
    assert page["contact"]["name"] == "Ana"


async def test_timeline_of_an_unknown_contact_is_404_and_bad_input_422(
    client: TestClient[Any, Any], desk: Desk
) -> None:
    base = f"/api/v1/numbers/{N1}/contacts"
    assert (await client.get(f"{base}/5511900000000/timeline", headers=ADMIN)).status == 404
    for params, field in (
        ({"order": "up"}, "order"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "x"}, "cursor"),
    ):
        resp = await client.get(f"{base}/5511900000000/timeline", params=params, headers=ADMIN)
        assert resp.status == 422
        assert (await resp.json())["error"]["field"] == field
