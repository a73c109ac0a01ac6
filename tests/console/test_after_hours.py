"""The after-hours contacts page: the 7-day table, its filters, and the active-message
dialog, which sends exactly as the API does (same 422 fields, same 409, same job)."""

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
    MON_20,
    OTHER_PNID,
    PNID,
    customer_writes,
    put_agent,
    rows,
    setup_number,
)
from tests.console.conftest import HTMX, sign_in
from tests.graph_fake import FakeGraphAPI

Work = Callable[[], Awaitable[int]]
WABA = "waba-1"
FOLLOW_UP = {
    "name": "follow_up",
    "language": "pt_BR",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Olá {{1}}, vimos sua mensagem de {{2}}."}],
}
PENDING = {
    "name": "promo",
    "language": "pt_BR",
    "status": "PENDING",
    "components": [{"type": "BODY", "text": "Promo!"}],
}
PAGE = f"/console/numbers/{PNID}/after-hours"


@pytest.fixture(name="settings")
def fixture_settings(make_settings: Callable[..., Settings], graph: FakeGraphAPI) -> Settings:
    graph.templates[WABA] = [FOLLOW_UP, PENDING]
    return make_settings(waba_id=WABA)


@pytest.fixture(name="row")
async def fixture_row(client: TestClient[Any, Any], clock: FixedClock, work: Work) -> str:
    """Ana wrote on Monday night, Bia an hour later and tapped nothing; Ana's row id."""
    await setup_number(client)
    await setup_number(client, OTHER_PNID)
    clock.at = MON_20 + timedelta(hours=1, seconds=5)
    await customer_writes(client, MON_20, wamid="wamid.C1", name="Ana")
    await customer_writes(
        client, MON_20 + timedelta(hours=1), wamid="wamid.C2", name="Bia", wa_id="5511911112222"
    )
    await work()
    items = await rows(client)
    assert [i["name"] for i in items] == ["Bia", "Ana"]
    row_id: str = items[1]["id"]
    return row_id


def _message_url(row_id: str) -> str:
    return f"{PAGE}/{row_id}/message"


async def test_the_table_shows_the_api_s_rows_and_columns(
    client: TestClient[Any, Any], row: str
) -> None:
    await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    html = await (await client.get(PAGE)).text()
    assert html.index("Bia") < html.index("Ana")  # newest first
    for label in ("Contacted at", "Name", "Phone", "Asked for a call back", "Message sent"):
        assert f'data-label="{label}"' in html
    assert "Mon 30 Nov 2026, 20:00" in html  # contacted_at in the number's zone
    assert "+5511987654321" in html
    assert html.count('data-sent="no"') == 2
    # Offered the "notify me" button, neither tapped it.
    assert "<abbr" not in html


async def test_the_filters_are_the_api_s(client: TestClient[Any, Any], row: str) -> None:
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    await _send(client, csrf, row, ["Ana", "ontem"])
    resp = await client.get(
        PAGE, params={"message_sent": "true"}, headers={**HTMX, "HX-Target": "ah-table"}
    )
    html = await resp.text()
    assert html.startswith('<div id="ah-table"')  # the table alone, for htmx
    assert "Ana" in html
    assert "Bia" not in html
    html = await (await client.get(PAGE, params={"message_sent": "false"})).text()
    assert "Bia" in html
    assert "Ana</td>" not in html
    html = await (await client.get(PAGE, params={"requested_return": "yes"})).text()
    assert "Nobody wrote after hours in the last 7 days with these filters" in html


async def _send(
    client: TestClient[Any, Any], csrf: str, row: str, variables: list[str], **extra: str
) -> Any:
    data = {"csrf": csrf, "template": "follow_up|pt_BR", **extra}
    data.update({f"variables[{i}]": v for i, v in enumerate(variables)})
    return await client.post(_message_url(row), data=data, headers=HTMX)


async def test_the_dialog_lists_templates_and_the_chosen_one_s_variables(
    client: TestClient[Any, Any], row: str
) -> None:
    await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    html = await (await client.get(_message_url(row), headers=HTMX)).text()
    assert 'value="follow_up|pt_BR"' in html
    assert 'value="promo|pt_BR" disabled' in html  # not approved: listed, not sendable
    assert 'name="variables[0]"' not in html
    html = await (
        await client.get(_message_url(row), params={"template": "follow_up|pt_BR"}, headers=HTMX)
    ).text()
    assert "Olá {{1}}, vimos sua mensagem de {{2}}." in html
    assert 'name="variables[0]"' in html
    assert 'name="variables[1]"' in html
    assert 'name="variables[2]"' not in html
    # Without JavaScript the dialog is a page of its own.
    page = await (await client.get(_message_url(row))).text()
    assert "<!doctype html>" in page
    assert "Active message to Ana" in page


async def test_sending_queues_the_template_and_flips_message_sent(
    client: TestClient[Any, Any], row: str, work: Work, graph: FakeGraphAPI
) -> None:
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    resp = await _send(client, csrf, row, ["Ana", "ontem"])
    html = await resp.text()
    assert resp.status == 200, html
    assert "Message sent" in html
    # The row comes back out of band, now saying "sent".
    assert f'<tr id="ah-row-{row}" hx-swap-oob="true">' in html
    assert 'data-sent="yes"' in html
    [item] = [i for i in await rows(client) if i["id"] == row]
    assert item["message_sent"] is True
    assert item["active_message"]["template"] == "follow_up"
    assert item["active_message"]["by"] == "@admin"
    before = len(graph.messages)
    await work()
    [body] = graph.messages[before:]
    assert body["type"] == "template"
    assert body["to"] == "+5511987654321"
    assert body["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Ana"},
        {"type": "text", "text": "ontem"},
    ]


@pytest.mark.parametrize(
    ("variables", "field"),
    [(["Ana"], "variables"), (["Ana", "  "], "variables[1]")],
)
async def test_wrong_variables_are_shown_next_to_the_field_the_api_names(
    client: TestClient[Any, Any], row: str, variables: list[str], field: str
) -> None:
    api = await client.post(
        f"/api/v1/numbers/{PNID}/after-hours-contacts/{row}/active-message",
        json={"template": "follow_up", "language": "pt_BR", "variables": variables},
        headers=ADMIN,
    )
    assert api.status == 422
    assert (await api.json())["error"]["field"] == field
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    resp = await _send(client, csrf, row, variables)
    html = await resp.text()
    assert resp.status == 422
    error_id = "am-err-variables" if field == "variables" else "am-err-1"
    assert f'id="{error_id}"' in html
    assert f'aria-describedby="{error_id}"' in html or field == "variables"
    assert all(i["message_sent"] is False for i in await rows(client))


async def test_a_second_send_within_24_hours_asks_before_sending_again(
    client: TestClient[Any, Any], row: str, work: Work, graph: FakeGraphAPI
) -> None:
    csrf = await sign_in(client, ADMIN["Authorization"].removeprefix("Bearer "))
    assert (await _send(client, csrf, row, ["Ana", "ontem"])).status == 200
    resp = await _send(client, csrf, row, ["Ana", "hoje"])
    html = await resp.text()
    assert resp.status == 409
    assert "already went to this contact within 24 hours" in html
    assert 'name="force"' in html
    resp = await _send(client, csrf, row, ["Ana", "hoje"], force="on")
    assert resp.status == 200
    before = len(graph.messages)
    await work()
    assert len(graph.messages) == before + 2


async def test_an_agent_of_another_number_cannot_open_the_list_or_send(
    client: TestClient[Any, Any], row: str
) -> None:
    headers = await put_agent(client, "bob", [OTHER_PNID])
    csrf = await sign_in(client, headers["Authorization"].removeprefix("Bearer "))
    assert (await client.get(PAGE)).status == 403
    resp = await _send(client, csrf, row, ["Ana", "ontem"])
    assert resp.status == 403
    assert all(i["message_sent"] is False for i in await rows(client))


async def test_an_agent_of_the_number_sends_and_is_named(
    client: TestClient[Any, Any], row: str
) -> None:
    headers = await put_agent(client, "ana", [PNID])
    csrf = await sign_in(client, headers["Authorization"].removeprefix("Bearer "))
    assert (await _send(client, csrf, row, ["Ana", "ontem"])).status == 200
    [item] = [i for i in await rows(client) if i["id"] == row]
    assert item["active_message"]["by"] == "ana"
