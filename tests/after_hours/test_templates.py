"""Templates registered by admins (no WABA access), and what Meta's list entries become."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.domain.clock import FixedClock
from bot.domain.errors import InvalidInputError
from storage.templates import Template, from_graph
from tests.after_hours.conftest import (
    ADMIN,
    CONTACTS_URL,
    MON_20,
    PNID,
    customer_writes,
    put_agent,
    rows,
    setup_number,
)
from tests.graph_fake import FakeGraphAPI

Work = Callable[[], Awaitable[int]]
URL = "/api/v1/templates/retorno/pt_BR"


async def test_registered_template_is_sent_without_waba_access(
    client: TestClient[Any, Any], graph: FakeGraphAPI, clock: FixedClock, work: Work
) -> None:
    await setup_number(client)
    clock.at = MON_20 + timedelta(seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.T1")
    await work()
    [row] = await rows(client)
    body = {"template": "retorno", "language": "pt_BR", "variables": ["Ana"]}
    url = f"{CONTACTS_URL}/{row['id']}/active-message"
    unknown = await client.post(url, json=body, headers=ADMIN)
    assert unknown.status == 422
    assert (await unknown.json())["error"]["field"] == "template"
    put = await client.put(URL, json={"body": "Oi {{1}}, podemos falar?"}, headers=ADMIN)
    assert put.status == 201, await put.text()
    assert (await put.json())["variables"] == 1
    assert (await client.put(URL, json={"body": "Oi {{1}}!"}, headers=ADMIN)).status == 200
    resp = await client.post(url, json=body, headers=ADMIN)
    assert resp.status == 202, await resp.text()
    await work()
    template = graph.messages[-1]["template"]
    assert template["name"] == "retorno"
    assert template["components"][0]["parameters"] == [{"type": "text", "text": "Ana"}]
    assert not [r for r in graph.requests if r.path.endswith("/message_templates")]


async def test_only_admins_register_and_everybody_lists(client: TestClient[Any, Any]) -> None:
    await setup_number(client)
    ana = await put_agent(client, "ana", [PNID])
    mara = await put_agent(client, "mara", [PNID], role="manager")
    assert (await client.put(URL, json={"body": "Oi"}, headers=ana)).status == 403
    assert (await client.put(URL, json={"body": "Oi"}, headers=mara)).status == 403
    assert (await client.put(URL, json={"body": "Oi"}, headers=ADMIN)).status == 201
    listed = await client.get("/api/v1/templates", headers=ana)
    assert [t["name"] for t in (await listed.json())["items"]] == ["retorno"]
    assert (await client.delete(URL, headers=ana)).status == 403
    assert (await client.delete(URL, headers=ADMIN)).status == 204
    assert (await client.delete(URL, headers=ADMIN)).status == 404


async def test_refresh_without_waba_access_is_a_conflict(client: TestClient[Any, Any]) -> None:
    resp = await client.post("/api/v1/templates/refresh", headers=ADMIN)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "no_waba"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (URL, {"body": "Oi {{nome}}"}, "body"),
        (URL, {"body": ""}, "body"),
        (URL, {"body": "Oi", "extra": 1}, "extra"),
        ("/api/v1/templates/Retorno/pt_BR", {"body": "Oi"}, "name"),
        ("/api/v1/templates/retorno/portuguese", {"body": "Oi"}, "language"),
    ],
)
async def test_bad_registrations_name_the_field(
    client: TestClient[Any, Any], path: str, body: dict[str, Any], field: str
) -> None:
    resp = await client.put(path, json=body, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["field"] == field


def test_graph_entries_that_need_more_than_body_parameters_are_marked() -> None:
    media = from_graph(
        {
            "name": "catalog",
            "language": "en",
            "status": "APPROVED",
            "components": [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Hi"}],
        }
    )
    link = from_graph(
        {
            "name": "track",
            "language": "en",
            "status": "APPROVED",
            "components": [
                {"type": "BODY", "text": "Your order {{1}}"},
                {"type": "BUTTONS", "buttons": [{"type": "URL", "url": "https://x.y/{{1}}"}]},
            ],
        }
    )
    assert media is not None
    assert media.unsupported == "header parameters"
    assert link is not None
    assert link.unsupported == "button parameters"
    assert link.variables == 1
    assert from_graph({"language": "en"}) is None
    with pytest.raises(InvalidInputError) as raised:
        link.check(["1"])
    assert raised.value.field == "template"


def test_placeholders_count_once_each() -> None:
    template = Template(
        name="t", language="en", body="{{1}} and {{ 2 }} and {{1}}", source="registered"
    )
    assert template.variables == 2
    template.check(["a", "b"])
    with pytest.raises(InvalidInputError) as raised:
        template.check(["a", "b     c"])
    assert raised.value.field == "variables[1]"
