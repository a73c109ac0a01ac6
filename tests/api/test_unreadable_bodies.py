"""Unreadable request bodies: a JSON number Python will not convert (more than 4,300 digits),
invalid UTF-8 and absurd nesting get a 400 naming `body` on every API write, never a 500,
and store nothing; the CSV imports and the console's numeric settings fields do not 500 on the
same garbage either.

The writes are enumerated from `OPERATIONS`, so a new operation is covered (or fails here,
asking for a path value or a listed exception) without anyone remembering this file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from handlers.api.operations import OPERATIONS
from handlers.api.spec import Operation
from handlers.console.forms import dom_id
from storage.after_hours import ContactInfo, row_id
from tests.api.conftest import ADMIN, N1, Desk
from tests.api.test_tickets import customer_writes, online, stores_of
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import HTMX, sign_in

# Python refuses to convert an integer literal of more than 4,300 digits (the default of
# sys.set_int_max_str_digits): json.loads then raises a plain ValueError, not a
# JSONDecodeError, which is how it once escaped as a 500.
HUGE: Final = "1" + "0" * 4999
JSON_HEADERS: Final = {**ADMIN, "Content-Type": "application/json"}
# The same unreadable number as an object member and as the whole document.
HUGE_BODIES: Final = {"member": f'{{"text": {HUGE}}}'.encode(), "bare": HUGE.encode()}

WRITES: Final = ("POST", "PUT", "PATCH")
JSON_WRITES: Final[tuple[Operation, ...]] = tuple(
    op for op in OPERATIONS if op.method in WRITES and op.body not in (None, "csv")
)
CSV_WRITES: Final[tuple[Operation, ...]] = tuple(
    op for op in OPERATIONS if op.method in WRITES and op.body == "csv"
)
BODYLESS_WRITES: Final[tuple[Operation, ...]] = tuple(
    op for op in OPERATIONS if op.method in WRITES and op.body is None
)

# Operations for which a 400 is impossible even for the admin on an existing resource,
# because the handler legitimately answers something else before it reads the body
# (operation_id -> why). Only "not 500" and "nothing stored" are asserted for them. None
# today: what handlers check first (path ids, 403 for the caller, 404 for the ticket or agent
# of the path) all passes for the admin on the world's resources, and the other writes read
# the body before anything that could refuse them (the row, the template, the reply's window).
NO_400: Final[dict[str, str]] = {}

# A console session remembers the number its last page was about (storage/keys.py): a page
# of N1 may write that, whether its form is saved or refused.
CONSOLE_SESSIONS: Final = "dl:console:session:"


@dataclass(frozen=True)
class World:
    """Something for every path placeholder of a write to name, all visible to the admin."""

    values: dict[str, str]

    def path(self, op: Operation) -> str:
        def value(match: re.Match[str]) -> str:
            name = match[1]
            assert name in self.values, f"{op.operation_id}: give the world a {{{name}}}"
            return self.values[name]

        return re.sub(r"\{([a-z_]+)\}", value, op.url)


@pytest.fixture(name="world")
async def fixture_world(client: TestClient[Any, Any], desk: Desk, clock: FixedClock) -> World:
    """The desk's numbers and agents, plus a ticket held by ana, a hand-registered template,
    the admin's own quick-reply category and reply, and an after-hours row on N1."""
    await online(client, "ana")
    ticket_id = await customer_writes(client, clock, 1)
    wa_id = "5511900000001"  # customer_writes' contact 1
    resp = await client.put(
        "/api/v1/templates/retorno/pt_BR", json={"body": "Oi {{1}}!"}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/api/v1/quick-replies/categories", json={"name": "Saudações"}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    category_id = (await resp.json())["id"]
    resp = await client.post(
        f"/api/v1/quick-replies/categories/{category_id}/replies",
        json={"title": "Bom dia", "text": "Bom dia!"},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()
    reply_id = (await resp.json())["id"]
    rid = row_id(N1, wa_id, "p1")
    now = clock.now()
    who = ContactInfo(contact=wa_id, wa_id=wa_id, user_id=None, name="Carla", phone=None)
    await stores_of(client).after_hours.record_contact(
        N1, rid, who, wamid="wamid.AH1", at=now, now=now, period="p1", next_opening=None,
        requested_return="yes",
    )  # fmt: skip
    return World(
        {
            "phone_number_id": N1,
            "agent_id": "ana",
            "ticket_id": ticket_id,
            "wa_id": wa_id,
            "id": rid,
            "name": "retorno",
            "language": "pt_BR",
            "category_id": category_id,
            "reply_id": reply_id,
            # Only bodyless writes (accept/decline a transfer request) name one, and they never
            # read a body: the 404 of an unknown request shows that as well as a real one would.
            "request_id": "no-such-request",
        }
    )


async def snapshot(redis: aioredis.Redis, ignore: str | None = None) -> dict[bytes, Any]:
    """Every key of the test database with its serialized value (DUMP): equal snapshots mean
    nothing was written. Keys starting with `ignore` are left out."""
    keys = [k async for k in redis.scan_iter(count=1000)]
    if ignore is not None:
        keys = [k for k in keys if not k.decode().startswith(ignore)]
    return {k: await redis.dump(k) for k in sorted(keys)}


async def assert_refused(resp: Any, op_id: str) -> None:
    """400 `bad_request` naming `body`, or (for a listed exception) at least not a 5xx."""
    text = await resp.text()
    assert resp.status < 500, f"{op_id}: {resp.status} {text}"
    if op_id in NO_400:
        return
    assert resp.status == 400, f"{op_id}: {resp.status} {text}"
    error = (await resp.json())["error"]
    assert (error["code"], error["field"]) == ("bad_request", "body"), error
    assert error["message"]


def test_the_writes_are_enumerated_from_the_table() -> None:
    """The parametrisation below is the table's, and the listed exceptions are real writes."""
    ids = {op.operation_id for op in JSON_WRITES}
    assert {"putNumber", "patchNumber", "putAgent", "replyToTicket", "putTicketTags"} <= ids
    assert set(NO_400) <= ids
    assert {op.operation_id for op in CSV_WRITES} == {"importContacts", "importContactsTo"}


@pytest.mark.parametrize("op", JSON_WRITES, ids=lambda op: op.operation_id)
async def test_a_number_too_long_to_convert_is_a_400_naming_body_and_stores_nothing(
    client: TestClient[Any, Any], redis: aioredis.Redis, world: World, op: Operation
) -> None:
    """The number as a member and as the whole body: 400 `bad_request` naming `body`, and the
    database (numbers, agents, tickets, the job queue) unchanged."""
    path = world.path(op)
    before = await snapshot(redis)
    for name, body in HUGE_BODIES.items():
        resp = await client.request(op.method, path, data=body, headers=JSON_HEADERS)
        await assert_refused(resp, f"{op.operation_id} ({name})")
    assert await snapshot(redis) == before, f"{op.operation_id} stored something"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b'{"display_name": "Loja \xff\xfe"}', "not valid JSON", id="invalid-utf8"),
        pytest.param(b"[" * 40 + b"]" * 40, "nests deeper", id="40-levels-array"),
        pytest.param(
            b'{"service_hours": ' + b'{"a": ' * 39 + b"1" + b"}" * 40,
            "nests deeper",
            id="40-levels-object",
        ),
    ],
)
async def test_invalid_utf8_and_deep_nesting_are_400s_naming_body(
    client: TestClient[Any, Any], redis: aioredis.Redis, world: World, body: bytes, message: str
) -> None:
    """Bytes that are not UTF-8, and 40 levels where MAX_DEPTH allows 32 (json.loads still
    parses them; read_json's own walk refuses them), on the number's PUT and PATCH."""
    before = await snapshot(redis)
    for method in ("PUT", "PATCH"):
        resp = await client.request(
            method, f"/api/v1/numbers/{N1}", data=body, headers=JSON_HEADERS
        )
        await assert_refused(resp, f"{method} number")
        assert message in (await resp.json())["error"]["message"]
    assert await snapshot(redis) == before


@pytest.mark.parametrize("op", CSV_WRITES, ids=lambda op: op.operation_id)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(HUGE.encode(), id="bare-number"),
        pytest.param(f"phone,name\n{HUGE},Carla\n".encode(), id="number-as-phone"),
        pytest.param(b"phone,name\n\xff\xfe\x00\x81,\xc3\x28\n", id="invalid-utf8"),
        pytest.param(b"[" * 40 + b"]" * 40, id="nested-json"),
    ],
)
async def test_a_csv_import_of_garbage_is_not_a_500_and_imports_nothing(
    client: TestClient[Any, Any], redis: aioredis.Redis, world: World, op: Operation, body: bytes
) -> None:
    """The imports read CSV, not JSON: garbage is a 422 naming `file`, or a report whose row
    errors name `phone`; either way no contact is stored."""
    headers = {**ADMIN, "Content-Type": "text/csv"}
    before = await snapshot(redis)
    resp = await client.post(world.path(op), data=body, params={"number": N1}, headers=headers)
    text = await resp.text()
    assert resp.status < 500, text
    if resp.status >= 400:
        assert resp.status == 422, text
        assert (await resp.json())["error"]["field"] == "file", text
    else:
        report = await resp.json()
        assert (report["imported"], report["updated"], report["error_count"]) == (0, 0, 1), text
        assert report["errors"][0]["field"] == "phone", text
    assert await snapshot(redis) == before


@pytest.mark.parametrize("op", BODYLESS_WRITES, ids=lambda op: op.operation_id)
async def test_a_write_without_a_body_ignores_an_unreadable_one(
    client: TestClient[Any, Any], world: World, op: Operation
) -> None:
    """Writes declared without a body (issue a token, refresh templates) never read one, so
    garbage sent along cannot make them fail: they answer as without it, never a 500."""
    resp = await client.request(
        op.method, world.path(op), data=HUGE_BODIES["member"], headers=JSON_HEADERS
    )
    assert resp.status < 500, await resp.text()


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("cooldown", "auto_reply_cooldown_minutes"),
        ("tickets", "tickets.reroute_after_minutes"),
        ("tickets", "tickets.lost_after_minutes"),
        ("tickets", "tickets.offline_grace_minutes"),
    ],
)
async def test_a_console_numeric_field_of_5000_digits_is_refused_next_to_it_not_a_500(
    client: TestClient[Any, Any], redis: aioredis.Redis, desk: Desk, section: str, field: str
) -> None:
    """The settings forms pass a number they will not convert on as text (forms._int_or_text),
    so the API's validation names the field: saving is a 422 showing the error at the field,
    the preview says the draft is not valid yet, and the number is unchanged."""
    csrf = await sign_in(client, ADMIN_TOKEN)
    before = await snapshot(redis, ignore=CONSOLE_SESSIONS)
    base = f"/console/numbers/{N1}"
    form = {"csrf": csrf, field: HUGE}
    saved = await client.post(f"{base}/settings/{section}", data=form, headers=HTMX)
    page = await saved.text()
    assert saved.status == 422, page
    assert re.search(f'id="{dom_id(field)}"[^>]*aria-invalid="true"', page), page
    preview = await client.post(f"{base}/preview/{section}", data=form, headers=HTMX)
    assert preview.status == 200, await preview.text()
    assert "Not valid yet" in await preview.text()
    assert await snapshot(redis, ignore=CONSOLE_SESSIONS) == before
