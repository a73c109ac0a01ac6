"""Active messages from the after-hours list: templates from the Graph API (FakeGraphAPI),
variables checked, sent through the outbox, `message_sent` flipped, once per 24 hours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.settings import Settings
from tests.after_hours.conftest import (
    ADMIN,
    CONTACTS_URL,
    CUSTOMER,
    MON_20,
    OTHER_PNID,
    customer_writes,
    put_agent,
    rows,
    setup_number,
)
from tests.graph_fake import FakeGraphAPI

Work = Callable[[], Awaitable[int]]
WABA = "waba-1"
FOLLOW_UP = {
    "name": "follow_up",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Loja Centro"},
        {"type": "BODY", "text": "Olá {{1}}, vimos sua mensagem de {{2}}. Podemos ajudar?"},
    ],
}
PENDING = {
    "name": "promo",
    "language": "pt_BR",
    "status": "PENDING",
    "components": [{"type": "BODY", "text": "Promo!"}],
}
WITH_HEADER_PARAMETER = {
    "name": "order_ready",
    "language": "pt_BR",
    "status": "APPROVED",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
        {"type": "BODY", "text": "Seu pedido está pronto."},
    ],
}


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP, PENDING, WITH_HEADER_PARAMETER]
    return make_settings(waba_id=WABA)


@pytest.fixture(name="row")
async def fixture_row(client: TestClient[Any, Any], clock: FixedClock, work: Work) -> str:
    """A contact who wrote on Monday night; the row's id."""
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.AM1")
    await work()
    [item] = await rows(client)
    row_id: str = item["id"]
    return row_id


def _url(row_id: str) -> str:
    return f"{CONTACTS_URL}/{row_id}/active-message"


def _template_gets(graph: FakeGraphAPI) -> int:
    return sum(1 for r in graph.requests if r.path.endswith("/message_templates"))


async def send(
    client: TestClient[Any, Any], row_id: str, headers: dict[str, str] | None = None, **body: Any
) -> Any:
    payload = {"template": "follow_up", "language": "pt_BR", "variables": ["Ana", "ontem"]}
    payload.update(body)
    return await client.post(_url(row_id), json=payload, headers=headers or ADMIN)


async def test_active_message_sends_the_template_and_flips_message_sent(
    client: TestClient[Any, Any], graph: FakeGraphAPI, work: Work, row: str
) -> None:
    sent_before = len(graph.messages)
    resp = await send(client, row)
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert answer["id"] == row
    assert answer["message_sent"] is True
    assert answer["active_message"]["status"] == "queued"
    [listed] = await rows(client)
    assert listed["message_sent"] is True
    await work()
    [body] = graph.messages[sent_before:]
    assert body["to"] == "+" + CUSTOMER
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "follow_up",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "ontem"}],
            }
        ],
    }
    [listed] = await rows(client, message_sent="true")
    assert listed["active_message"]["template"] == "follow_up"
    assert listed["active_message"]["status"] == "sent"
    assert await rows(client, message_sent="false") == []


async def test_same_template_within_24_hours_is_refused_unless_forced(
    client: TestClient[Any, Any], graph: FakeGraphAPI, work: Work, row: str
) -> None:
    sent_before = len(graph.messages)
    assert (await send(client, row)).status == 202
    again = await send(client, row)
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "already_sent"
    forced = await send(client, row, force=True)
    assert forced.status == 202
    await work()
    assert [m["type"] for m in graph.messages[sent_before:]] == ["template", "template"]


async def test_the_24_hours_are_per_contact_not_per_row(
    client: TestClient[Any, Any], clock: FixedClock, work: Work, row: str
) -> None:
    assert (await send(client, row)).status == 202
    tue_20 = MON_20 + timedelta(days=1)
    clock.at = tue_20 + timedelta(seconds=5)
    await customer_writes(client, tue_20, wamid="wamid.AM2")
    await work()
    newest, _monday = await rows(client)
    assert newest["id"] != row
    assert (await send(client, newest["id"])).status == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variables": ["Ana"]}, "variables"),
        ({"variables": ["Ana", "ontem", "hoje"]}, "variables"),
        ({"variables": ["Ana", "  "]}, "variables[1]"),
        ({"variables": ["Ana", "line\nbreak"]}, "variables[1]"),
        ({"template": "nope"}, "template"),
        ({"language": "en_US"}, "template"),
        ({"template": "promo", "variables": []}, "template"),
        ({"template": "order_ready", "variables": []}, "template"),
        ({"template": "Not A Name"}, "template"),
        ({"variables": "Ana"}, "variables"),
        ({"force": "yes"}, "force"),
    ],
)
async def test_bad_requests_name_the_field(
    client: TestClient[Any, Any], graph: FakeGraphAPI, row: str, body: dict[str, Any], field: str
) -> None:
    resp = await send(client, row, **body)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["field"] == field
    [listed] = await rows(client)
    assert listed["message_sent"] is False


async def test_unknown_contact_is_404(client: TestClient[Any, Any], row: str) -> None:
    for other in ("0" * 20, "not-an-id"):
        resp = await send(client, other)
        assert resp.status == 404


async def test_templates_are_read_once_and_cached(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Work, row: str
) -> None:
    assert (await send(client, row)).status == 202
    assert (await send(client, row, force=True)).status == 202
    assert _template_gets(graph) == 1
    # An unknown name re-reads the list (it may have just been approved), at most once a minute.
    assert (await send(client, row, template="nope")).status == 422
    assert (await send(client, row, template="nope")).status == 422
    assert _template_gets(graph) == 1
    clock.advance(timedelta(minutes=2))
    assert (await send(client, row, template="nope")).status == 422
    assert _template_gets(graph) == 2
    # Past an hour the copy is stale and read again.
    clock.advance(timedelta(hours=1))
    assert (await send(client, row, force=True)).status == 202
    assert _template_gets(graph) == 3


async def test_a_cached_copy_serves_while_the_graph_api_is_down(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, row: str
) -> None:
    resp = await client.get("/api/v1/templates", headers=ADMIN)
    assert resp.status == 200
    clock.advance(timedelta(hours=2))
    graph.fail_next(500, times=5)
    assert (await send(client, row)).status == 202
    refresh = await client.post("/api/v1/templates/refresh", headers=ADMIN)
    assert refresh.status == 502


async def test_refresh_reads_new_templates(
    client: TestClient[Any, Any], graph: FakeGraphAPI, row: str
) -> None:
    listed = await (await client.get("/api/v1/templates", headers=ADMIN)).json()
    assert {t["name"]: t["variables"] for t in listed["items"]} == {
        "follow_up": 2,
        "promo": 0,
        "order_ready": 0,
    }
    graph.templates[WABA] = [*graph.templates[WABA], {**FOLLOW_UP, "name": "thanks"}]
    resp = await client.post("/api/v1/templates/refresh", headers=ADMIN)
    assert resp.status == 200
    assert "thanks" in {t["name"] for t in (await resp.json())["items"]}
    assert (await send(client, row, template="thanks")).status == 202


async def test_agents_of_other_numbers_cannot_send(
    client: TestClient[Any, Any], graph: FakeGraphAPI, work: Work, row: str
) -> None:
    await setup_number(client, OTHER_PNID)
    ana = await put_agent(client, "ana", ["1000"])
    bob = await put_agent(client, "bob", [OTHER_PNID])
    forbidden = await send(client, row, headers=bob)
    assert forbidden.status == 403
    [listed] = await rows(client)
    assert listed["message_sent"] is False
    assert (await client.post("/api/v1/templates/refresh", headers=ana)).status == 403
    allowed = await send(client, row, headers=ana)
    assert allowed.status == 202
    assert (await allowed.json())["active_message"]["by"] == "ana"


async def test_every_page_of_templates_is_read(
    client: TestClient[Any, Any], graph: FakeGraphAPI
) -> None:
    graph.template_page_size = 1
    resp = await client.post("/api/v1/templates/refresh", headers=ADMIN)
    assert resp.status == 200
    names = [t["name"] for t in (await resp.json())["items"]]
    assert names == ["follow_up", "promo", "order_ready"]
    gets = [r for r in graph.requests if r.path.endswith("/message_templates")]
    assert [r.json.get("after") for r in gets] == [None, "1", "2"]
    assert all(r.path == f"/v24.0/{WABA}/message_templates" for r in gets)
    assert all("components" in r.json["fields"] for r in gets)
